// The pieces of vifibnet-setup, one by one: DH group, key and request,
// XML-RPC client, peers DB, prompts, staged files, arguments.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createDiffieHellman, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { gzipSync } from "node:zlib";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import forge from "node-forge";
import { PEERS_SCHEMA, PeersDb, PeersDbError } from "../lib/db";
import { RegistryDb } from "../lib/registry/db";
import { RpcClient, RpcTransportError, XmlRpcFault, rpcUrl } from "../lib/rpc-client";
import { parseSetupArgs } from "../lib/setup/args";
import { NoAnswerError, Prompter } from "../lib/setup/prompt";
import { Staging, sweepStaleTemps } from "../lib/setup/stage";
import { checkRequest, checkSubjectAttribute, createCertificateRequest, generateRsaKey, issueCertificate, loadCa } from "../lib/utils/cert";
import { CertificateError, checkIssuedCertificate } from "../lib/utils/x509";
import { FFDHE2048_PEM } from "../lib/utils/dh";
import { parseMethodCall, serializeFault, serializeResponse } from "../lib/xmlrpc";
import { makeCa } from "../harness/pki";

const tmp = mkdtempSync(join(tmpdir(), "vifibnet-setup-units-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const newDir = (): string => mkdtempSync(join(tmp, `d${++seq}-`));

const hasOpenssl = spawnSync("openssl", ["version"]).error === undefined;

function derOf(pem: string): forge.asn1.Asn1 {
  const b64 = pem.replace(/-----[^-]+-----|\s/g, "");
  return forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(b64, "base64").toString("binary")));
}

describe("dh2048.pem: the RFC 7919 ffdhe2048 group", () => {
  test("its prime is the RFC's formula, 2^2048 - 2^1984 + (floor(2^1918 e) + 560316) 2^64 - 1, generator 2", () => {
    // floor(2^1918 * e) from e = sum 1/k!, in fixed point with 64 guard bits.
    const G = 64n, scale = 1n << (1918n + G);
    let sum = 0n, fact = 1n;
    for (let k = 0n; k < 400n; k++) {
      if (k > 0n) fact *= k;
      sum += scale / fact;
    }
    const p = (1n << 2048n) - (1n << 1984n) + ((sum >> G) + 560316n) * (1n << 64n) - 1n;
    const [pEl, gEl] = derOf(FFDHE2048_PEM).value as forge.asn1.Asn1[];
    assert.equal(BigInt("0x" + Buffer.from(pEl!.value as string, "binary").toString("hex")), p);
    assert.equal(Buffer.from(gEl!.value as string, "binary").toString("hex"), "02");
  });

  test("node's crypto accepts it as a safe-prime group", () => {
    const [pEl, gEl] = derOf(FFDHE2048_PEM).value as forge.asn1.Asn1[];
    const dh = createDiffieHellman(Buffer.from(pEl!.value as string, "binary"), Buffer.from(gEl!.value as string, "binary"));
    assert.equal(dh.verifyError, 0);
  });

  test("byte for byte what OpenSSL prints for group:ffdhe2048, and `openssl dhparam -check` passes", { skip: !hasOpenssl && "no openssl" }, () => {
    const gen = spawnSync("openssl", ["genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"], { encoding: "utf8" });
    assert.equal(gen.status, 0, gen.stderr);
    assert.equal(gen.stdout, FFDHE2048_PEM);
    const path = join(newDir(), "dh2048.pem");
    writeFileSync(path, FFDHE2048_PEM);
    const check = spawnSync("openssl", ["dhparam", "-in", path, "-check", "-noout"], { encoding: "utf8" });
    assert.equal(check.status, 0, check.stderr);
  });
});

describe("key and certificate request", () => {
  const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;

  test("generateRsaKey makes a 2048-bit RSA key", async () => {
    const k = await generateRsaKey();
    assert.equal(k.asymmetricKeyType, "rsa");
    assert.equal(k.asymmetricKeyDetails!.modulusLength, 2048);
    assert.equal(k.asymmetricKeyDetails!.publicExponent, 65537n);
  });

  test("the request verifies, is signed with SHA-256 and the registry accepts it", () => {
    const pem = createCertificateRequest(key, [{ name: "O", value: "Example" }, { name: "CN", value: "x" }]);
    const csr = forge.pki.certificationRequestFromPem(pem);
    assert.ok(csr.verify());
    assert.equal((csr as unknown as { signatureOid: string }).signatureOid, forge.pki.oids["sha256WithRSAEncryption"]);
    assert.equal(checkRequest(pem).subject.length, 2);
    if (hasOpenssl) {
      const r = spawnSync("openssl", ["req", "-verify", "-noout", "-subject", "-nameopt", "RFC2253"], { input: pem, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout + r.stderr, /subject=CN=x,O=Example/);
    }
  });

  test("string types as OpenSSL writes them: PrintableString for C, IA5String for emailAddress, UTF8String otherwise", () => {
    const pem = createCertificateRequest(key, [
      { name: "C", value: "FR" }, { name: "O", value: "Société Générale" }, { name: "emailAddress", value: "a@example.com" },
    ]);
    const info = (derOf(pem).value as forge.asn1.Asn1[])[0]!;
    const rdns = ((info.value as forge.asn1.Asn1[])[1]!.value as forge.asn1.Asn1[]).map((set) => ((set.value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[])[1]!);
    assert.deepEqual(rdns.map((v) => v.type), [forge.asn1.Type.PRINTABLESTRING, forge.asn1.Type.UTF8, forge.asn1.Type.IA5STRING]);
    assert.deepEqual(Buffer.from(rdns[1]!.value as string, "binary"), Buffer.from("Société Générale", "utf8"), "UTF-8 encoded once");
  });

  test("an empty subject is a valid request (the registry adds the CN)", () => {
    assert.ok(forge.pki.certificationRequestFromPem(createCertificateRequest(key, [])).verify());
  });

  test("subject attributes are checked as OpenSSL would", () => {
    assert.deepEqual(checkSubjectAttribute("organizationName", "X"), { name: "O", value: "X" });
    assert.deepEqual(checkSubjectAttribute("emailAddress", "a@b"), { name: "emailAddress", value: "a@b" });
    assert.throws(() => checkSubjectAttribute("C", "FRA"), /C must have exactly 2 characters/);
    assert.throws(() => checkSubjectAttribute("C", "é!"), CertificateError);
    assert.throws(() => checkSubjectAttribute("CN", "x".repeat(65)), /CN must have 1 to 64 characters, got 65/);
    assert.throws(() => checkSubjectAttribute("O", ""), /O must have 1 to 64/);
    assert.throws(() => checkSubjectAttribute("title", "x"), /unknown subject attribute 'title'/);
    assert.throws(() => checkSubjectAttribute("emailAddress", "é@x"), /must be ASCII/);
  });

  test("checkIssuedCertificate: our key and the CA's signature, or a clear refusal", () => {
    const ca = makeCa();
    const other = makeCa("2001:db8:43::/48");
    const authority = loadCa(ca.pem, ca.keyPem);
    const req = checkRequest(createCertificateRequest(key, [{ name: "O", value: "Example" }]));
    const cert = issueCertificate(authority, req, "5/16", new Date());
    assert.deepEqual(checkIssuedCertificate(cert, key, ca.pem), { prefix: "0000000000000101", commonName: "5/16", sha1: false });
    const otherKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    assert.throws(() => checkIssuedCertificate(cert, otherKey, ca.pem), /for another key/);
    assert.throws(() => checkIssuedCertificate(cert, key, other.pem), /its CA \(ca\.pem\) did not sign/);
    assert.throws(() => checkIssuedCertificate("garbage", key, ca.pem), /not a PEM certificate/);
  });
});

describe("XML-RPC client", () => {
  interface Seen { method?: string; url?: string; type?: string; body: string }
  async function server(answer: (res: http.ServerResponse, seen: Seen) => void): Promise<{ port: number; seen: Seen[]; close(): void }> {
    const seen: Seen[] = [];
    const s = http.createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => {
        const one: Seen = { method: req.method, url: req.url, type: req.headers["content-type"], body };
        seen.push(one);
        answer(res, one);
      });
    });
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    return { port: (s.address() as AddressInfo).port, seen, close: () => { s.closeAllConnections(); s.close(); } };
  }

  test("URLs put IPv6 addresses in brackets", () => {
    assert.equal(rpcUrl("127.0.0.1", 8000), "http://127.0.0.1:8000/RPC2");
    assert.equal(rpcUrl("2001:db8::1", 80), "http://[2001:db8::1]:80/RPC2");
    assert.equal(rpcUrl("registry.example", 80), "http://registry.example:80/RPC2");
  });

  test("POSTs the call to /RPC2 as text/xml and returns the value", async () => {
    const s = await server((res) => { res.writeHead(200, { "Content-Type": "text/xml" }); res.end(serializeResponse(["0101", "192.0.2.1,1194,udp"])); });
    try {
      const client = new RpcClient("127.0.0.1", s.port);
      assert.deepEqual(await client.call("getPeerList", [5, "2001:db8::1"]), ["0101", "192.0.2.1,1194,udp"]);
      assert.equal(s.seen[0]!.method, "POST");
      assert.equal(s.seen[0]!.url, "/RPC2");
      assert.equal(s.seen[0]!.type, "text/xml");
      assert.deepEqual(parseMethodCall(s.seen[0]!.body), { method: "getPeerList", params: [5, "2001:db8::1"] });
    } finally {
      s.close();
    }
  });

  test("a fault rejects with XmlRpcFault; its detail drops the Python class", async () => {
    for (const [faultString, detail] of [
      ["<class 'LookupError'>:unknown or already used token", "unknown or already used token"],
      ["<type 'exceptions.StopIteration'>:", "StopIteration"],
      ["plain text", "plain text"],
    ]) {
      const s = await server((res) => { res.writeHead(200); res.end(serializeFault({ faultCode: 1, faultString: faultString! })); });
      try {
        const err = await new RpcClient("127.0.0.1", s.port).call("requestCertificate", ["t", "c"]).catch((e: unknown) => e);
        assert.ok(err instanceof XmlRpcFault);
        assert.equal(err.faultString, faultString);
        assert.equal(err.detail, detail);
      } finally {
        s.close();
      }
    }
  });

  test("gzip answers are read", async () => {
    const s = await server((res) => { res.writeHead(200, { "Content-Encoding": "gzip" }); res.end(gzipSync(serializeResponse("x".repeat(5000)))); });
    try {
      assert.equal(await new RpcClient("127.0.0.1", s.port).call("getCa"), "x".repeat(5000));
    } finally {
      s.close();
    }
  });

  test("transport failures: refused, HTTP errors, not XML-RPC, timeout", async () => {
    const gone = await server(() => undefined);
    gone.close();
    await assert.rejects(new RpcClient("127.0.0.1", gone.port).call("getCa"), (e: Error) =>
      e instanceof RpcTransportError && /^getCa: cannot reach the registry at http:\/\/127\.0\.0\.1:\d+\/RPC2: connection refused/.test(e.message));
    const s500 = await server((res) => { res.writeHead(500, "Internal Server Error"); res.end(); });
    const junk = await server((res) => { res.writeHead(200); res.end("<html>hello</html>"); });
    const mute = await server(() => undefined);
    try {
      await assert.rejects(new RpcClient("127.0.0.1", s500.port).call("getCa"), /answered HTTP 500 Internal Server Error: is it a vifibnet registry\?/);
      await assert.rejects(new RpcClient("127.0.0.1", junk.port).call("getCa"), /is not XML-RPC \(expected <methodResponse>, found <html>\)/);
      await assert.rejects(new RpcClient("127.0.0.1", mute.port, { timeoutMs: 200 }).call("getCa"), /no answer within 0\.2 s/);
    } finally {
      s500.close();
      junk.close();
      mute.close();
    }
  });
});

describe("peers.db", () => {
  test("created with the legacy schema, journal mode delete", () => {
    const path = join(newDir(), "peers.db");
    assert.equal(PeersDb.inspect(path), "missing");
    const db = PeersDb.open(path, { create: true });
    db.addPeer("0101", "192.0.2.1,1194,udp");
    db.close();
    assert.equal(PeersDb.inspect(path), "ready");
    const raw = new Database(path, { readonly: true });
    assert.deepEqual((raw.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").pluck().all() as string[]), [PEERS_SCHEMA[1], PEERS_SCHEMA[0]]);
    assert.equal(raw.pragma("journal_mode", { simple: true }), "delete");
    raw.close();
  });

  test("addPeer updates an address and keeps the used state", () => {
    const path = join(newDir(), "peers.db");
    const db = PeersDb.open(path, { create: true });
    db.addPeer("0101", "192.0.2.1,1194,udp");
    new Database(path).prepare("UPDATE peers SET used = -1").run();
    db.addPeer("0101", "192.0.2.2,1194,udp");
    assert.deepEqual(db.peers().map((p) => [p.prefix, p.address, p.used]), [["0101", "192.0.2.2,1194,udp", -1]]);
    db.close();
  });

  test("inspect: no table, not a database, a registry's table", () => {
    const dir = newDir();
    const noTable = join(dir, "a.db");
    const d = new Database(noTable);
    d.exec("CREATE TABLE x (y)");
    d.close();
    assert.equal(PeersDb.inspect(noTable), "no-table");
    const copy = join(dir, "copy.db");
    PeersDb.copy(noTable, copy);
    PeersDb.open(copy, { create: true }).close();
    assert.equal(PeersDb.inspect(copy), "ready");
    assert.equal(PeersDb.inspect(noTable), "no-table", "the original is untouched");

    const junk = join(dir, "junk.db");
    writeFileSync(junk, "x".repeat(200));
    assert.throws(() => PeersDb.inspect(junk), /junk\.db exists but is not an SQLite database/);
    const reg = join(dir, "registry.db");
    new RegistryDb(reg).close();
    assert.throws(() => PeersDb.inspect(reg), (e: Error) => e instanceof PeersDbError && /without column\(s\) used/.test(e.message));
    assert.throws(() => PeersDb.open(join(dir, "none.db")), /does not exist; create it with vifibnet-setup/);
  });
});

describe("prompts", () => {
  test("answers arriving in one chunk are kept for the next question; blank lines are skipped", async () => {
    const input = new PassThrough(), output = new PassThrough();
    let shown = "";
    output.setEncoding("utf8").on("data", (c: string) => (shown += c));
    input.end("alice@example.com\r\n\n  abcdefgh  \n");
    const p = new Prompter(input, output);
    assert.equal(await p.ask("Q1 : "), "alice@example.com");
    assert.equal(await p.ask("Q2 : "), "abcdefgh");
    await assert.rejects(p.ask("Please enter your token : "), (e: Error) => e instanceof NoAnswerError && e.message === 'no answer to "Please enter your token": standard input ended');
    p.close();
    assert.equal(shown, "Q1 : \nQ2 : \nQ2 : \nPlease enter your token : \n");
  });

  test("waits for a line that comes later", async () => {
    const input = new PassThrough();
    const p = new Prompter(input, new PassThrough());
    const answer = p.ask("Q : ");
    setTimeout(() => input.write("late\n"), 20);
    assert.equal(await answer, "late");
    p.close();
  });
});

describe("staged files", () => {
  test("nothing appears before commit; commit moves all, in order; create never overwrites", () => {
    const dir = newDir();
    writeFileSync(join(dir, "dh2048.pem"), "mine");
    const s = new Staging(dir);
    s.write("ca.pem", "CA", 0o644);
    s.write("cert.key", "KEY", 0o600);
    s.write("dh2048.pem", "theirs", 0o644, "create");
    assert.deepEqual(readdirSync(dir).filter((n) => !n.startsWith(".")), ["dh2048.pem"]);
    assert.deepEqual(s.commit(), { written: ["ca.pem", "cert.key"], kept: ["dh2048.pem"] });
    assert.deepEqual(readdirSync(dir).sort(), ["ca.pem", "cert.key", "dh2048.pem"]);
    assert.equal(readFileSync(join(dir, "dh2048.pem"), "utf8"), "mine");
    assert.equal(statSync(join(dir, "cert.key")).mode & 0o777, 0o600);
  });

  test("abort removes every temporary file, SQLite journals included", () => {
    const dir = newDir();
    const s = new Staging(dir);
    s.write("ca.pem", "CA", 0o644);
    const tmpDb = s.reserve("peers.db", "create");
    writeFileSync(tmpDb, "db");
    writeFileSync(tmpDb + "-journal", "j");
    s.abort();
    s.abort();
    assert.deepEqual(readdirSync(dir), []);
  });

  test("sweep removes temporary files of dead runs only", async () => {
    const dir = newDir();
    const dead = spawnSync("true").pid!;
    const alive = spawn("sleep", ["30"]);
    try {
      const names = [`.cert.key.${dead}.tmp`, `.peers.db.${dead}.tmp-journal`, `.ca.pem.${alive.pid}.tmp`, `.other.${dead}.tmp`, ".cert.key"];
      for (const n of names) writeFileSync(join(dir, n), "x");
      assert.deepEqual(sweepStaleTemps(dir).sort(), [`.cert.key.${dead}.tmp`, `.peers.db.${dead}.tmp-journal`]);
      assert.deepEqual(readdirSync(dir).sort(), [`.ca.pem.${alive.pid}.tmp`, `.other.${dead}.tmp`, ".cert.key"].sort());
    } finally {
      alive.kill();
    }
    assert.equal(existsSync(join(dir, `.cert.key.${dead}.tmp`)), false);
  });
});

describe("arguments", () => {
  test("legacy flags, -r repeated (a name given again replaces its value), brackets around IPv6", () => {
    const o = parseSetupArgs(["--server", "[2001:db8::1]", "--port", "8000", "--req", "O", "A", "-r", "CN", "x", "-r", "O", "B", "--no-boot", "--email", " a@b.c "]);
    assert.equal(o.server, "2001:db8::1");
    assert.equal(o.port, 8000);
    assert.equal(o.dir, "/etc/vifib");
    assert.deepEqual(o.subject, [{ name: "CN", value: "x" }, { name: "O", value: "B" }]);
    assert.deepEqual([o.caOnly, o.dbOnly, o.noBoot, o.email, o.token], [false, false, true, "a@b.c", undefined]);
    const p = parseSetupArgs(["--server", "localhost", "--port", "1", "-d", "/x", "--ca-only", "--db-only", "--token", "t"]);
    assert.deepEqual([p.server, p.dir, p.caOnly, p.dbOnly, p.subject, p.token], ["localhost", "/x", true, true, [], "t"]);
  });

  test("vifibnet-setup writes vifibnet.conf; the legacy launcher (VIFIBNET_PROG set) only the legacy files", () => {
    const argv = ["--server", "localhost", "--port", "1"];
    assert.equal(parseSetupArgs(argv, {}).nodeConfig, true);
    assert.equal(parseSetupArgs(argv, { VIFIBNET_PROG: "setup.py" }).nodeConfig, false);
  });
});
