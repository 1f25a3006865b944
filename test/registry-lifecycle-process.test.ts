// The registry's lifecycle as a process with two workers and real files:
// the operator's commands work while it serves (each worker notices a
// revocation), renewal over XML-RPC, the CA re-read on SIGHUP, a token flood
// answered with faults (the primary holds the limiter), a retried
// requestCertificate answered again, and the legacy command line intact.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { verifyRevocationList } from "../lib/revocation";
import { renewCaCertificate } from "../lib/utils/cert";
import { nodeAddress } from "../lib/utils/address";
import { caNetwork, signedWithSha1 } from "../lib/utils/x509";
import { XmlRpcValue, parseMethodResponse, serializeMethodCall } from "../lib/xmlrpc";
import { BIN } from "../harness/paths";
import { legacyCertificate, makeCa, makeCsr } from "../harness/pki";
import { SmtpSink, startSmtpSink } from "../harness/smtp-sink";
import { RunningRegistry, startRegistry } from "./helpers/registry";

/** One call; on a connection of its own unless an agent is given. */
function call(port: number, method: string, params: XmlRpcValue[], agent: http.Agent | false = false): Promise<XmlRpcValue> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: "/RPC2", method: "POST", agent, headers: { "Content-Type": "text/xml" } }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => {
        const parsed = parseMethodResponse(body);
        if ("fault" in parsed) reject(new Error(parsed.fault.faultString));
        else resolve(parsed.result);
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(serializeMethodCall(method, params));
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    const v = await f();
    if (v !== undefined) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The bit string of a CN "N/16". */
const bitsOf = (cn: string): string => BigInt(cn.split("/")[0]!).toString(2).padStart(16, "0");

/** Enough calls on new connections that both workers answer some. */
const EVERY_WORKER = 8;

describe("the registry's lifecycle, two workers", () => {
  const dir = mkdtempSync(join(tmpdir(), "vifibnet-lifecycle-"));
  const db = join(dir, "registry.db");
  const ca = makeCa();
  let sink: SmtpSink;
  let reg: RunningRegistry;
  const command = (...args: string[]) => spawnSync(process.execPath, [BIN("vifibnet-registry"), ...args], { encoding: "utf8", timeout: 30_000 });
  const mint = (email: string): string => command("token", "--db", db, "--email", email).stdout.trim();
  /** A node enrolled with a minted token: its certificate, key and address. */
  const enrol = async (email: string) => {
    const node = makeCsr();
    const cert = (await call(reg.port, "requestCertificate", [mint(email), node.csr])) as string;
    const cn = /CN=(\d+)\/16/.exec(new X509Certificate(cert).subject)![1]!;
    return { ...node, cert, cn: `${cn}/16`, ip: nodeAddress(caNetwork(ca.pem), bitsOf(`${cn}/16`)) };
  };

  before(async () => {
    sink = await startSmtpSink();
    reg = await startRegistry(dir, ca, `127.0.0.1:${sink.port}`, ["--workers", "2", "--token-limit-client", "6", "-v", "1"]);
  });
  after(async () => {
    await reg?.stop();
    await sink?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a token flood gets faults that say when to retry, not mails; the limits hold across workers", async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => call(reg.port, "requestToken", ["victim@example.com"]).then(() => "mailed", (e: Error) => e.message)));
    assert.equal(answers.filter((a) => a === "mailed").length, 3, answers.join("\n"));
    for (const a of answers.filter((x) => x !== "mailed"))
      assert.match(a, /^<class 'RuntimeError'>:too many token requests for victim@example\.com or from 127\.0\.0\.1: retry after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in \d+ s\)$/);
    // 3 from this client so far: 3 more addresses, then the client's limit (6 an hour).
    const more = await Promise.all(Array.from({ length: 5 }, (_, i) => call(reg.port, "requestToken", [`flood${i}@example.com`]).then(() => "mailed", (e: Error) => e.message)));
    assert.equal(more.filter((a) => a === "mailed").length, 3, more.join("\n"));
    await new Promise((r) => setTimeout(r, 500)); // any mail sent would have arrived
    assert.equal(sink.mails.length, 6);
  });

  test("revoke while the registry runs: every worker stops listing it and refuses it; the signed list names it; unrevoke", async () => {
    const a = await enrol("a@example.com"), b = await enrol("b@example.com");
    assert.equal(await call(reg.port, "declare", [[a.ip, "198.51.100.1,1194,udp"]]), true);
    assert.equal(await call(reg.port, "declare", [[b.ip, "198.51.100.2,1194,udp"]]), true);
    const r = command("revoke", "--db", db, "--ca", join(dir, "ca.crt"), "--reason", "stolen", `${a.ip}/64`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `revoked ${a.cn} (${bitsOf(a.cn)}, ${a.ip}/64)\n`);
    const listed = async (): Promise<boolean> => {
      const lists = await Promise.all(Array.from({ length: EVERY_WORKER }, () => call(reg.port, "getPeerList", [999, b.ip]) as Promise<string[][]>));
      return lists.some((l) => l.some(([, addr]) => addr === "198.51.100.1,1194,udp"));
    };
    await until("no worker lists the revoked node", async () => ((await listed()) ? undefined : true));
    for (let i = 0; i < EVERY_WORKER; i++) {
      assert.equal(await call(reg.port, "declare", [[a.ip, "198.51.100.1,1194,udp"]]), false);
      await assert.rejects(call(reg.port, "getPeerList", [10, a.ip]), /PermissionError'>:prefix .* was revoked on .* \(stolen\): it is not given peers/);
    }
    assert.equal(await listed(), false, "declares refused on every worker: still not listed");
    await assert.rejects(call(reg.port, "renewCertificate", [a.cert, makeCsr({ keyPem: a.keyPem }).csr]), /its certificate cannot be renewed/);
    const list = verifyRevocationList(await call(reg.port, "getRevocationList", []), ca.pem);
    assert.deepEqual(list.revoked.map((x) => [x.cn, x.reason]), [[a.cn, "stolen"]]);
    const again = command("revoke", "--db", db, a.cn);
    assert.match(again.stdout, /was revoked already, on .*: nothing changed/);

    const inventory = JSON.parse(command("list", "--db", db, "--json").stdout) as Array<{ cn: string; revoked: { reason: string } | null; address: string | null }>;
    assert.deepEqual(inventory.find((e) => e.cn === a.cn)!.revoked!.reason, "stolen");
    assert.equal(inventory.find((e) => e.cn === a.cn)!.address, null, "dropped from peers");
    assert.equal(inventory.find((e) => e.cn === b.cn)!.address, "198.51.100.2,1194,udp");

    assert.equal(command("unrevoke", "--db", db, bitsOf(a.cn)).status, 0);
    await until("a worker takes the node's declaration again", async () => ((await call(reg.port, "declare", [[a.ip, "198.51.100.1,1194,udp"]])) ? true : undefined));
    await until("listed again", async () => ((await listed()) ? true : undefined));
  });

  test("the operator's commands: one line on a mistake, exit 1 (2 for usage)", () => {
    const cases: Array<[string[], number, RegExp]> = [
      [["revoke", "--db", db, "77/16"], 1, /^vifibnet-registry revoke: error: no certificate was issued for 77\/16 \(0000000001001101\): nothing to revoke\n$/],
      [["revoke", "--db", db, "2001:db8:42:1::"], 1, /an IPv6 address needs the network: give --ca/],
      [["revoke", "--db", db, "--ca", join(dir, "ca.crt"), "2001:db8:43::/64"], 1, /not inside the network/],
      [["revoke", "--db", db, "node7"], 1, /'node7' is not a prefix: give the CN \(5\/16\), the bit string/],
      [["unrevoke", "--db", db, "1/16"], 1, /1\/16 \(0000000000000001\) is not revoked/],
      [["list", "--db", join(dir, "nope.db")], 1, /nope\.db does not exist: give the registry's --db/],
      [["token", "--db", db, "--email", "not an address"], 2, /argument --email: not an email address/],
      [["token", "--db", db], 2, /the following arguments are required: --email/],
    ];
    for (const [args, status, why] of cases) {
      const r = command(...args);
      assert.equal(r.status, status, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, why);
      if (status === 1) assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    }
  });

  test("list: every allocated prefix, with its email, expiry, signature, revocation, last declare and address", () => {
    const r = command("list", "--db", db, "--ca", join(dir, "ca.crt"));
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^CN +SUBNET +EMAIL +EXPIRES +SIGNATURE +REVOKED +DECLARED +ADDRESS$/);
    assert.match(r.stdout, /^0\/16 +2001:db8:42::\/64 +a@example\.com +\d{4}-\d\d-\d\dT\S+Z +SHA-256 +no +\d{4}-\S+Z +198\.51\.100\.1,1194,udp$/m);
  });

  test("renewCertificate over XML-RPC: a legacy SHA-1 certificate to SHA-256; refused for another key, a foreign certificate, past the grace period", async () => {
    const node = makeCsr(), day = 86_400_000;
    const legacy = legacyCertificate(ca, node.keyPem, { cn: "65535/16", notBefore: new Date(Date.now() - 300 * day) });
    const expired = legacyCertificate(ca, node.keyPem, { cn: "65534/16", notBefore: new Date(Date.now() - 500 * day) });
    const raw = new Database(db);
    raw.prepare("INSERT INTO vpn VALUES (?, 'legacy@example.com', ?), (?, 'old@example.com', ?)").run("1".repeat(16), legacy, "1".repeat(15) + "0", expired);
    raw.close();
    const renewed = new X509Certificate((await call(reg.port, "renewCertificate", [legacy, makeCsr({ keyPem: node.keyPem }).csr])) as string);
    assert.equal(signedWithSha1(renewed), false);
    assert.match(renewed.subject, /CN=65535\/16$/);
    assert.ok(renewed.publicKey.equals(new X509Certificate(legacy).publicKey));
    await assert.rejects(call(reg.port, "renewCertificate", [renewed.toString(), makeCsr().csr]), /PermissionError'>:renewal refused: the request is not signed with the key/);
    await assert.rejects(call(reg.port, "renewCertificate", [legacyCertificate(makeCa(), node.keyPem, { cn: "65535/16" }), makeCsr({ keyPem: node.keyPem }).csr]), /not the certificate the registry holds for 65535\/16/);
    await assert.rejects(call(reg.port, "renewCertificate", [expired, makeCsr({ keyPem: node.keyPem }).csr]), /more than 90 days ago \(--renew-grace\)/);
  });

  test("a retried requestCertificate: on a new connection the certificate already issued; on the one that carried it, a used token", async () => {
    const node = makeCsr();
    const token = mint("retry@example.com");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const cert = await call(reg.port, "requestCertificate", [token, node.csr], agent);
      await assert.rejects(call(reg.port, "requestCertificate", [token, node.csr], agent), /LookupError'>:unknown or already used token/);
      // The other worker too (new connections go to either).
      for (let i = 0; i < EVERY_WORKER; i++) assert.equal(await call(reg.port, "requestCertificate", [token, node.csr]), cert);
      await assert.rejects(call(reg.port, "requestCertificate", [token, makeCsr().csr]), /unknown or already used token/);
    } finally {
      agent.destroy();
    }
  });

  test("SIGHUP: every worker serves the CA renewed with vifibnet-ca; a CA of another network is not taken", async () => {
    const renewed = renewCaCertificate(ca.pem, ca.keyPem, new Date(), 3650);
    writeFileSync(join(dir, "ca.crt"), renewed);
    reg.proc.kill("SIGHUP");
    await until("every worker serves the renewed CA", async () => {
      const served = await Promise.all(Array.from({ length: EVERY_WORKER }, () => call(reg.port, "getCa", [])));
      return served.every((pem) => pem === renewed) ? true : undefined;
    });
    assert.match(reg.log(), /SIGHUP: CA re-read, valid until /);
    // Certificates issued before still verify against it; new ones are signed by it.
    const node = await enrol("after@example.com");
    assert.ok(new X509Certificate(node.cert).verify(new X509Certificate(renewed).publicKey));

    const other = makeCa("2001:db8:99::/48");
    writeFileSync(join(dir, "ca.crt"), other.pem);
    writeFileSync(join(dir, "ca.key"), other.keyPem);
    reg.proc.kill("SIGHUP");
    await until("the refusal logged", async () => (/the CA was not re-read, still serving the previous one: .*another network/.test(reg.log()) ? true : undefined));
    for (let i = 0; i < EVERY_WORKER; i++) assert.equal(await call(reg.port, "getCa", []), renewed);
    assert.equal(reg.proc.exitCode, null, "still running");
    writeFileSync(join(dir, "ca.crt"), renewed);
    writeFileSync(join(dir, "ca.key"), ca.keyPem);
  });

  test("the legacy command line is unchanged: a port first, or an @FILE", () => {
    const r = command("--help");
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^usage: vifibnet-registry /);
    assert.match(r.stdout.replace(/\s+/g, " "), /vifibnet-registry \{token,revoke,unrevoke,list\} \.\.\./);
    const bad = command("tokens", "--db", db);
    assert.equal(bad.status, 2, "a word that is no command is read as the port, as before");
    assert.match(bad.stderr, /argument port: invalid 'int' value: 'tokens'/);
  });
});
