// vifibnet-setup against a real registry with no mail server anywhere
// (--mailhost 127.0.0.1:1): enrolment with a token minted by
// `vifibnet-registry token`, renewal with --renew (the prefix and key kept,
// SHA-1 moved to SHA-256), and every refusal as one line that changes nothing.

import assert from "node:assert/strict";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import { once } from "node:events";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { RegistryDb } from "../lib/registry/db";
import { signedWithSha1 } from "../lib/utils/x509";
import { BIN } from "../harness/paths";
import { legacyCertificate, makeCa, makeCsr } from "../harness/pki";
import { RunningRegistry, startRegistry } from "./helpers/registry";

interface Run { code: number | null; stdout: string; stderr: string }

function setup(args: string[], stdin?: string): Promise<Run> {
  const proc: ChildProcess = spawn(process.execPath, [BIN("vifibnet-setup"), ...args], { stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  proc.stdout!.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  proc.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  if (stdin !== undefined) proc.stdin!.end(stdin);
  const killer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
  return once(proc, "close").then(([code]) => {
    clearTimeout(killer);
    return { code: code as number | null, stdout, stderr };
  });
}

function oneLineError(r: Run, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.match(lines[0]!, /^vifibnet-setup: error: /);
  assert.match(lines[0]!, pattern);
}

/** Every file of `dir` and its content's hash: "unchanged" means equal snapshots. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    if (lstatSync(join(dir, name)).isFile()) out[name] = createHash("sha256").update(readFileSync(join(dir, name))).digest("hex");
  }
  return out;
}

describe("vifibnet-setup with minted tokens and --renew, no mail server anywhere", () => {
  const root = mkdtempSync(join(tmpdir(), "vifibnet-setup-lifecycle-"));
  const regDir = join(root, "registry");
  const db = join(regDir, "registry.db");
  const ca = makeCa();
  let reg: RunningRegistry;
  let n = 0;
  const fresh = (): string => join(root, `node${++n}`);
  const base = (dir: string): string[] => ["--server", "127.0.0.1", "--port", String(reg.port), "-d", dir, "--no-boot"];
  const registryCommand = (...args: string[]) => spawnSync(process.execPath, [BIN("vifibnet-registry"), ...args], { encoding: "utf8", timeout: 30_000 });
  const mint = (email: string): string => {
    const r = registryCommand("token", "--db", db, "--email", email);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^[a-z]{8}\n$/);
    return r.stdout.trim();
  };
  const cnOf = (dir: string): string => /CN=(\S+)/.exec(new X509Certificate(readFileSync(join(dir, "cert.crt"))).subject)![1]!;

  before(async () => {
    mkdirSync(regDir);
    reg = await startRegistry(regDir, ca, "127.0.0.1:1");
  });
  after(async () => {
    await reg?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test("a minted token enrols a node: given with --token, or asked for with --token alone (no email asked, no mail)", async () => {
    const a = fresh();
    let r = await setup([...base(a), "--token", mint("a@example.com")]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /email address/);
    assert.equal(cnOf(a), "0/16");
    const b = fresh();
    r = await setup([...base(b), "--token"], `${mint("b@example.com")}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Please enter your token : $/m);
    assert.doesNotMatch(r.stdout, /email address/);
    assert.equal(cnOf(b), "1/16");
    const rows = new RegistryDb(db);
    assert.deepEqual(rows.allocations().map((x) => x.email), ["a@example.com", "b@example.com"]);
    rows.close();
  });

  test("an expired token, minted or left by a legacy registry, fails in one line", async () => {
    const rows = new RegistryDb(db);
    rows.addToken({ token: "oldtoken", email: "late@example.com", prefix_len: 16, date: Math.floor(Date.now() / 1000) - 2 * 86_400 });
    rows.close();
    const dir = fresh();
    const r = await setup([...base(dir), "--token", "oldtoken"]);
    oneLineError(r, /the token expired on .* \(tokens are valid 1 day\): ask for a new one/);
    assert.equal(existsSync(join(dir, "cert.crt")), false);
  });

  test("--renew: same key, same prefix, a new certificate; cert.crt.old kept; the registry from vifibnet.conf", async () => {
    const dir = fresh();
    assert.equal((await setup([...base(dir), "--token", mint("renew@example.com")])).code, 0);
    const before = readFileSync(join(dir, "cert.crt"), "utf8");
    const key = readFileSync(join(dir, "cert.key"), "utf8");
    const r = await setup(["--renew", "-d", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /cert\.crt: renewed \(CN \d+\/16, same key\), valid until .*; the previous one is in cert\.crt\.old/);
    assert.equal(readFileSync(join(dir, "cert.crt.old"), "utf8"), before);
    assert.equal(readFileSync(join(dir, "cert.key"), "utf8"), key);
    const [old, now] = [new X509Certificate(before), new X509Certificate(readFileSync(join(dir, "cert.crt")))];
    assert.equal(now.subject, old.subject);
    assert.ok(now.publicKey.equals(old.publicKey));
    assert.notEqual(now.serialNumber, old.serialNumber);
    assert.equal(lstatSync(join(dir, "cert.crt")).mode & 0o777, 0o644);
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith(".")), [], "no temporary file left");
    const list = JSON.parse(registryCommand("list", "--db", db, "--json").stdout) as Array<{ cn: string; expires: string }>;
    assert.equal(list.find((e) => e.cn === /CN=(\S+)/.exec(now.subject)![1])!.expires, new Date(now.validTo).toISOString().replace(/\.\d{3}Z$/, "Z"));
  });

  test("--renew moves a legacy SHA-1 certificate to SHA-256, keeping its prefix", async () => {
    const node = makeCsr();
    const legacy = legacyCertificate(ca, node.keyPem, { cn: "65520/16", subject: [{ shortName: "O", value: "Vifib" }] });
    insertVpn(db, "1111111111110000", "legacy@example.com", legacy);
    const dir = fresh();
    mkdirSync(dir);
    writeFileSync(join(dir, "ca.pem"), ca.pem);
    writeFileSync(join(dir, "cert.key"), node.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, "cert.crt"), legacy);
    const r = await setup(["--renew", "-d", dir, "--server", "127.0.0.1", "--port", String(reg.port)]);
    assert.equal(r.code, 0, r.stderr);
    const now = new X509Certificate(readFileSync(join(dir, "cert.crt")));
    assert.equal(signedWithSha1(now), false);
    assert.equal(now.subject, "O=Vifib\nCN=65520/16");
    assert.equal(signedWithSha1(new X509Certificate(readFileSync(join(dir, "cert.crt.old")))), true);
  });

  test("--renew refusals are one line and change nothing: revoked, past the grace period, a foreign certificate, a mismatched key, no node", async () => {
    const revokedDir = fresh();
    assert.equal((await setup([...base(revokedDir), "--token", mint("lost@example.com")])).code, 0);
    const cn = cnOf(revokedDir);
    const rv = registryCommand("revoke", "--db", db, "--reason", "laptop lost", cn);
    assert.equal(rv.status, 0, rv.stderr);
    assert.match(rv.stdout, new RegExp(`^revoked ${cn.replace("/", "\\/")} \\(`));

    const expiredDir = fresh(), foreignDir = fresh(), mismatchDir = fresh();
    const node = makeCsr();
    const day = 86_400_000;
    const expired = legacyCertificate(ca, node.keyPem, { cn: "65521/16", notBefore: new Date(Date.now() - 500 * day) });
    insertVpn(db, "1111111111110001", "old@example.com", expired);
    for (const d of [expiredDir, foreignDir, mismatchDir]) {
      mkdirSync(d);
      writeFileSync(join(d, "ca.pem"), ca.pem);
      writeFileSync(join(d, "cert.key"), node.keyPem, { mode: 0o600 });
    }
    writeFileSync(join(expiredDir, "cert.crt"), expired);
    // Signed by the network's CA for an allocated prefix, but not the certificate the registry holds for it.
    writeFileSync(join(foreignDir, "cert.crt"), legacyCertificate(ca, node.keyPem, { cn: "0/16" }));
    writeFileSync(join(mismatchDir, "cert.crt"), readFileSync(join(revokedDir, "cert.crt")));
    const cases: Array<[string, RegExp]> = [
      [revokedDir, /renewCertificate: the registry refused: .*was revoked on .* \(laptop lost\): its certificate cannot be renewed; .*cert\.crt is unchanged/],
      [expiredDir, /more than 90 days ago \(--renew-grace\): enrol again with a new token; .*unchanged/],
      [foreignDir, /not the certificate the registry holds for 0\/16.*unchanged/],
      [mismatchDir, /cert\.key is not the key of .*cert\.crt/],
      [fresh(), /cannot read .*cert\.crt: no such file/],
    ];
    for (const [dir, why] of cases) {
      const before = existsSync(dir) ? snapshot(dir) : {};
      oneLineError(await setup(["--renew", "-d", dir, "--server", "127.0.0.1", "--port", String(reg.port)]), why);
      assert.deepEqual(existsSync(dir) ? snapshot(dir) : {}, before, dir);
    }
    const usage = await setup(["--renew", "-d", fresh()]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /error: argument --renew: give --server and --port \(.*vifibnet\.conf does not name them: no such file\)/);
  });

  test("setup warns when the CA has less than 30 days left", async () => {
    const shortDir = join(root, "short-registry");
    mkdirSync(shortDir);
    const short = await startRegistry(shortDir, makeCa("2001:db8:42::/48", "short CA", 10), "127.0.0.1:1");
    try {
      const r = await setup(["--server", "127.0.0.1", "--port", String(short.port), "-d", fresh(), "--ca-only"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^vifibnet-setup: warning: the registry's CA expires on .* \(in 9 days\): the network's CA must be renewed on the registry \(vifibnet-ca --renew\)$/m);
    } finally {
      await short.stop();
    }
  });

  test("a reply lost on the way: setup asks again, the registry answers the certificate already issued", async () => {
    // A proxy that cuts the first answer to requestCertificate, as a dropped connection would.
    let cut = 0;
    const proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const fwd = http.request({ host: "127.0.0.1", port: reg.port, path: req.url, method: "POST", agent: false, headers: { "Content-Type": "text/xml" } }, (up) => {
          const answer: Buffer[] = [];
          up.on("data", (c: Buffer) => answer.push(c));
          up.on("end", () => {
            if (body.includes("<methodName>requestCertificate</methodName>") && cut++ === 0) return req.socket.destroy();
            res.writeHead(up.statusCode ?? 502, { "Content-Type": "text/xml" });
            res.end(Buffer.concat(answer));
          });
        });
        fwd.end(body);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const dir = fresh();
      const r = await setup(["--server", "127.0.0.1", "--port", String((proxy.address() as AddressInfo).port), "-d", dir, "--no-boot", "--token", mint("retry@example.com")]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /requestCertificate: cannot reach the registry .*; trying again \(2\/3\)/);
      assert.equal(cut, 2);
      const rows = new RegistryDb(db);
      const mine = rows.allocations().filter((x) => x.email === "retry@example.com");
      rows.close();
      assert.equal(mine.length, 1, "one prefix for the token");
      assert.equal(mine[0]!.cert, readFileSync(join(dir, "cert.crt"), "utf8"));
    } finally {
      proxy.closeAllConnections();
      proxy.close();
    }
  });
});

/** A vpn row as the legacy registry writes it, in a file the registry serves. */
function insertVpn(path: string, prefix: string, email: string, cert: string): void {
  const raw = new Database(path);
  try {
    raw.prepare("INSERT INTO vpn VALUES (?, ?, ?)").run(prefix, email, cert);
  } finally {
    raw.close();
  }
}
