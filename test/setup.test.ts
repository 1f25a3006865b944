// vifibnet-setup end to end: the program as a process against
// bin/vifibnet-registry (a process) with a real SMTP server receiving the
// token mail. Every failure must leave the directory exactly as it was.

import assert from "node:assert/strict";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { X509Certificate, createDiffieHellman, createHash, createPrivateKey } from "node:crypto";
import { once } from "node:events";
import {
  chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync,
} from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import forge from "node-forge";
import { parseDaemonArgsOrThrow } from "../lib/daemon/args";
import { RegistryDb } from "../lib/registry/db";
import { RpcClient } from "../lib/rpc-client";
import { FFDHE2048_PEM } from "../lib/utils/dh";
import { serializeFault } from "../lib/xmlrpc";
import { TestCa, makeCa } from "../harness/pki";
import { BIN, ROOT } from "../harness/paths";
import { RunningRegistry, startRegistry } from "./helpers/registry";
import { SmtpSink, startSmtpSink } from "../harness/smtp-sink";

const BOOT_PREFIX = "0000000000000111";
const BOOT_ADDRESS = "198.51.100.7,1194,udp;198.51.100.7,443,tcp-client";
const FILES = ["ca.pem", "cert.crt", "cert.key", "dh2048.pem", "peers.db", "vifibnet.conf"];

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Running {
  proc: ChildProcess;
  result: Promise<Run>;
  /** Resolves once stdout contains `text`. */
  waitFor(text: string): Promise<void>;
}

function start(args: string[], opts: { stdin?: "pipe" | "ignore"; uid?: number; gid?: number; launcher?: string[] } = {}): Running {
  const cmd = opts.launcher ?? [process.execPath, BIN("vifibnet-setup")];
  const proc = spawn(cmd[0]!, [...cmd.slice(1), ...args], {
    stdio: [opts.stdin ?? "ignore", "pipe", "pipe"],
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}),
  });
  let stdout = "", stderr = "";
  const watchers: Array<() => void> = [];
  proc.stdout!.setEncoding("utf8").on("data", (c: string) => { stdout += c; watchers.forEach((w) => w()); });
  proc.stderr!.setEncoding("utf8").on("data", (c: string) => { stderr += c; });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
  const result = once(proc, "close").then(([code, signal]) => {
    clearTimeout(killer);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr };
  });
  const waitFor = (text: string): Promise<void> => new Promise((resolve, reject) => {
    const check = (): void => { if (stdout.includes(text)) resolve(); };
    watchers.push(check);
    check();
    void result.then(() => reject(new Error(`exited before printing ${JSON.stringify(text)}: ${stdout} ${stderr}`)));
  });
  return { proc, result, waitFor };
}

const run = (args: string[]): Promise<Run> => start(args).result;

/** Every entry of `dir` (dot files included): content hash and mode, to compare "as it was". */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const st = lstatSync(join(dir, name));
    out[name] = st.isFile() ? `${(st.mode & 0o7777).toString(8)} ${createHash("sha256").update(readFileSync(join(dir, name))).digest("hex")}` : "dir";
  }
  return out;
}

function assertOneLineError(r: Run, pattern: RegExp, code = 1): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0]!, /^vifibnet-setup: error: /);
  assert.match(lines[0]!, pattern);
}

function tokenOf(raw: string): string {
  const token = /^Your token : ([a-z]{8})\r?$/m.exec(raw)?.[1];
  assert.ok(token, raw);
  return token;
}

/** Checks the five legacy files of a complete setup and vifibnet.conf; returns the certificate. */
function checkComplete(dir: string, ca: TestCa, boot: boolean, server = "127.0.0.1"): X509Certificate {
  assert.deepEqual(readdirSync(dir).sort(), FILES, "exactly the five legacy files and vifibnet.conf, no temporary left");
  assert.equal(readFileSync(join(dir, "ca.pem"), "utf8"), ca.pem, "ca.pem is the registry's CA");

  const key = createPrivateKey(readFileSync(join(dir, "cert.key")));
  assert.equal(key.asymmetricKeyType, "rsa");
  assert.ok(key.asymmetricKeyDetails!.modulusLength! >= 2048);
  assert.equal(lstatSync(join(dir, "cert.key")).mode & 0o777, 0o600, "cert.key is 0600");

  const cert = new X509Certificate(readFileSync(join(dir, "cert.crt")));
  const caCert = new X509Certificate(ca.pem);
  assert.ok(cert.checkPrivateKey(key), "the certificate holds the key");
  assert.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey), "signed by the CA");
  assert.match(cert.subject, /(^|\n)CN=\d+\/16(\n|$)/);

  assert.equal(readFileSync(join(dir, "dh2048.pem"), "utf8"), FFDHE2048_PEM);
  checkDhFile(join(dir, "dh2048.pem"));

  const db = new Database(join(dir, "peers.db"), { readonly: true });
  try {
    const sql = (db.prepare("SELECT name, sql FROM sqlite_master ORDER BY name").all() as Array<{ name: string; sql: string | null }>);
    const table = sql.find((r) => r.name === "peers")!.sql!.replace(/\s+/g, " ");
    assert.equal(table, "CREATE TABLE peers ( prefix TEXT PRIMARY KEY, address TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0, date INTEGER DEFAULT (strftime('%s','now')))");
    assert.equal(sql.find((r) => r.name === "_peers_used")!.sql, "CREATE INDEX _peers_used ON peers(used)");
    const rows = db.prepare("SELECT prefix, address, used, date FROM peers").all() as Array<{ prefix: string; address: string; used: number; date: number }>;
    if (boot) {
      assert.equal(rows.length, 1);
      assert.deepEqual([rows[0]!.prefix, rows[0]!.address, rows[0]!.used], [BOOT_PREFIX, BOOT_ADDRESS, 0]);
      assert.ok(Math.abs(rows[0]!.date - Date.now() / 1000) < 600, "date set by the column default");
    } else {
      assert.equal(rows.length, 0);
    }
    assert.equal(db.pragma("journal_mode", { simple: true }), "delete", "no WAL: the legacy daemon opens it too");
  } finally {
    db.close();
  }
  checkNodeConfig(dir, server);
  return cert;
}

/** vifibnet.conf is what the daemon runs as is: the registry, the files of `dir` (absolute), and --key for OpenVPN. */
function checkNodeConfig(dir: string, server: string): void {
  const path = join(dir, "vifibnet.conf");
  assert.equal(lstatSync(path).mode & 0o777, 0o644);
  const cfg = parseDaemonArgsOrThrow([`@${path}`], {}, "/");
  const at = (name: string): string => join(resolve(dir), name);
  assert.deepEqual(
    [cfg.server, cfg.ca, cfg.cert, cfg.dh, cfg.state, cfg.openvpnArgs],
    [server, at("ca.pem"), at("cert.crt"), at("dh2048.pem"), resolve(dir), ["--key", at("cert.key")]],
  );
  assert.ok(cfg.serverPort > 0);
}

/** Valid 2048-bit DH parameters: by node's crypto, and by OpenSSL when installed. */
function checkDhFile(path: string): void {
  const pem = readFileSync(path, "utf8");
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
  const asn = forge.asn1.fromDer(forge.util.createBuffer(der.toString("binary")));
  const [p, g] = (asn.value as forge.asn1.Asn1[]).map((v) => Buffer.from(v.value as string, "binary"));
  const dh = createDiffieHellman(p!, g!);
  assert.equal(dh.verifyError, 0, "a safe prime with a suitable generator");
  assert.equal(BigInt("0x" + p!.toString("hex")).toString(2).length, 2048);
  const openssl = spawnSync("openssl", ["dhparam", "-in", path, "-check", "-noout"], { encoding: "utf8" });
  if (openssl.error === undefined) {
    assert.equal(openssl.status, 0, openssl.stderr);
    assert.match(openssl.stdout + openssl.stderr, /DH parameters appear to be ok/);
  }
}

/** A registry's directory with its database seeded (or not) with one peer. */
async function registryWith(root: string, name: string, ca: TestCa, sink: SmtpSink, peer: boolean): Promise<RunningRegistry> {
  const dir = join(root, name);
  mkdirSync(dir);
  if (peer) {
    const db = new RegistryDb(join(dir, "registry.db"));
    db.upsertPeer(BOOT_PREFIX, BOOT_ADDRESS, Math.floor(Date.now() / 1000));
    db.close();
  }
  return startRegistry(dir, ca, `127.0.0.1:${sink.port}`);
}

/**
 * An XML-RPC server in front of the real registry: passes every call through
 * but answers requestCertificate its own way, to play a registry that refuses
 * a request or misbehaves.
 */
async function startStub(target: number, requestCertificate: (res: http.ServerResponse, body: string) => void): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      if (body.includes("<methodName>requestCertificate</methodName>")) return requestCertificate(res, body);
      const fwd = http.request({ host: "127.0.0.1", port: target, path: req.url, method: "POST", headers: { "Content-Type": "text/xml" } }, (up) => {
        res.writeHead(up.statusCode ?? 502, { "Content-Type": "text/xml" });
        up.pipe(res);
      });
      fwd.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

describe("vifibnet-setup", () => {
  const root = mkdtempSync(join(tmpdir(), "vifibnet-setup-"));
  chmodSync(root, 0o755); // the unwritable-directory test runs one setup as nobody
  const ca = makeCa();
  let sink: SmtpSink;
  let reg: RunningRegistry; // knows one peer
  let empty: RunningRegistry; // knows none
  let n = 0;
  const fresh = (): string => join(root, `node${++n}`);
  const base = (port: number, dir: string): string[] => ["--server", "127.0.0.1", "--port", String(port), "-d", dir];

  /** Asks the registry for a token for `email` and returns it, as a user reading mail would. */
  async function mailedToken(email: string, port = reg.port): Promise<string> {
    const client = new RpcClient("127.0.0.1", port);
    await client.call("requestToken", [email]);
    return tokenFromMail(email);
  }
  async function tokenFromMail(email: string): Promise<string> {
    for (;;) {
      const mail = await sink.next(15_000);
      if (mail.to.includes(email)) return tokenOf(mail.raw);
    }
  }

  before(async () => {
    sink = await startSmtpSink();
    reg = await registryWith(root, "registry", ca, sink, true);
    empty = await registryWith(root, "empty-registry", ca, sink, false);
  });
  after(async () => {
    await reg?.stop();
    await empty?.stop();
    await sink?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test("interactive, answers piped on standard input: the five files", async () => {
    const dir = fresh();
    mkdirSync(dir);
    const subject = [["C", "FR"], ["ST", "Nord"], ["L", "Lille"], ["O", "Example"], ["OU", "Lab"], ["CN", "replaced by the registry"], ["emailAddress", "node@example.com"]];
    const p = start([...base(reg.port, dir), ...subject.flatMap(([k, v]) => ["-r", k!, v!])], { stdin: "pipe" });
    await p.waitFor("Please enter your email address : ");
    p.proc.stdin!.write("alice@example.com\n");
    const token = await tokenFromMail("alice@example.com");
    await p.waitFor("Please enter your token : ");
    p.proc.stdin!.end(token + "\n");
    const r = await p.result;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.ok(r.stdout.indexOf("Please enter your email address : ") < r.stdout.indexOf("Please enter your token : "));
    assert.match(r.stdout, /Certificate setup complete\./);
    const cert = checkComplete(dir, ca, true);
    for (const attr of ["C=FR", "ST=Nord", "L=Lille", "O=Example", "OU=Lab", "emailAddress=node@example.com"])
      assert.match(cert.subject, new RegExp(`(^|\\n)${attr}(\\n|$)`), `${attr} in ${cert.subject}`);
    assert.doesNotMatch(cert.subject, /replaced by the registry/);
    assert.match(r.stdout, /node address 2001:db8:42:[0-9a-f:]*\)/);
  });

  test("vifibnet.conf: the daemon's options, the start command printed; an existing one is kept", async () => {
    const dir = fresh();
    const r = await run([...base(reg.port, dir), "--token", await mailedToken("conf@example.com")]);
    assert.equal(r.code, 0, r.stderr);
    checkComplete(dir, ca, true);
    assert.equal(parseDaemonArgsOrThrow([`@${join(dir, "vifibnet.conf")}`], {}, "/").serverPort, reg.port);
    assert.match(r.stdout, /vifibnet\.conf: written \(the node's options\)/);
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.at(-1), `Start the node with: ${BIN("vifibnet")} @${join(dir, "vifibnet.conf")}`, "the exact command, last");
    writeFileSync(join(dir, "vifibnet.conf"), "# the admin's\n@/elsewhere.conf\n");
    const again = await run([...base(reg.port, dir), "--token", await mailedToken("conf2@example.com")]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /vifibnet\.conf: exists, kept/);
    assert.equal(readFileSync(join(dir, "vifibnet.conf"), "utf8"), "# the admin's\n@/elsewhere.conf\n");
  });

  test("a directory an @file cannot name (a blank in it): a warning, no vifibnet.conf, the rest as usual", async () => {
    const dir = join(root, `with blank ${++n}`);
    const r = await run([...base(reg.port, dir), "--token", await mailedToken("blank@example.com")]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /vifibnet\.conf not written: .* \(it contains a blank\); give vifibnet its options on the command line/);
    assert.deepEqual(readdirSync(dir).sort(), FILES.filter((f) => f !== "vifibnet.conf"));
  });

  test("both answers in one chunk before the first question is asked", async () => {
    const dir = fresh();
    const token = await mailedToken("early@example.com");
    // The email line gets a second token mailed; the piped token is the first one.
    const p = start(base(reg.port, dir), { stdin: "pipe" });
    p.proc.stdin!.end(`early@example.com\n${token}\n`);
    const r = await p.result;
    await tokenFromMail("early@example.com");
    assert.equal(r.code, 0, r.stderr);
    checkComplete(dir, ca, true);
  });

  test("unattended: --token alone skips the request step and reads nothing", async () => {
    const dir = fresh();
    const token = await mailedToken("bob@example.com");
    const mails = sink.mails.length;
    const r = await run([...base(reg.port, dir), "--token", token, "-r", "O", "Société Unattended"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /Please enter/);
    assert.equal(sink.mails.length, mails, "no token requested");
    assert.match(checkComplete(dir, ca, true).subject, /(^|\n)O=Société Unattended\n/, "UTF-8 subject intact");
  });

  test("unattended: --email requests the token, which comes with --token", async () => {
    const dir = fresh();
    const token = await mailedToken("carol@example.com");
    const r = await run([...base(reg.port, dir), "--email", "carol@example.com", "--token", token]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /Please enter/);
    await tokenFromMail("carol@example.com"); // the one --email asked for
    checkComplete(dir, ca, true);
  });

  test("--email with the token typed at the prompt", async () => {
    const dir = fresh();
    const p = start([...base(reg.port, dir), "--email", "dan@example.com"], { stdin: "pipe" });
    const token = await tokenFromMail("dan@example.com");
    await p.waitFor("Please enter your token : ");
    p.proc.stdin!.end(token + "\n");
    const r = await p.result;
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /email address :/);
    checkComplete(dir, ca, true);
  });

  for (const server of ["::1", "[::1]"]) {
    test(`IPv6 registry address ${server}`, async () => {
      const dir = fresh();
      const token = await mailedToken(`v6${server.length}@example.com`);
      const r = await run(["--server", server, "--port", String(reg.port), "-d", dir, "--token", token]);
      assert.equal(r.code, 0, r.stderr);
      checkComplete(dir, ca, true, "::1"); // vifibnet.conf names it without brackets
    });
  }

  test("--ca-only writes ca.pem and stops", async () => {
    const dir = fresh();
    const r = await run([...base(reg.port, dir), "--ca-only"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(dir), ["ca.pem"]);
    assert.equal(readFileSync(join(dir, "ca.pem"), "utf8"), ca.pem);
    const again = await run([...base(reg.port, dir), "--ca-only"]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /ca\.pem: unchanged/);
  });

  test("--db-only writes ca.pem and peers.db with the bootstrap peer, asks nothing", async () => {
    const dir = fresh();
    const r = await run([...base(reg.port, dir), "--db-only"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(dir).sort(), ["ca.pem", "peers.db"]);
    assert.doesNotMatch(r.stdout, /Please enter/);
    const db = new Database(join(dir, "peers.db"), { readonly: true });
    assert.deepEqual(db.prepare("SELECT prefix, address, used FROM peers").all(), [{ prefix: BOOT_PREFIX, address: BOOT_ADDRESS, used: 0 }]);
    db.close();
  });

  test("--no-boot: a registry with no peer is fine, peers.db is empty", async () => {
    const dir = fresh();
    const token = await mailedToken("eve@example.com", empty.port);
    const r = await run([...base(empty.port, dir), "--no-boot", "--token", token]);
    assert.equal(r.code, 0, r.stderr);
    checkComplete(dir, ca, false);
  });

  test("a registry with no peer yet: a clear message, nothing written", async () => {
    const dir = fresh();
    mkdirSync(dir);
    const r = await run([...base(empty.port, dir), "--db-only"]);
    assertOneLineError(r, /no bootstrap peer.*--no-boot/);
    assert.deepEqual(readdirSync(dir), []);
  });

  test("an existing peers table is kept, and the user told so (no bootstrap asked)", async () => {
    const dir = fresh();
    mkdirSync(dir);
    const db = new Database(join(dir, "peers.db"));
    db.exec("CREATE TABLE peers (prefix TEXT PRIMARY KEY, address TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0, date INTEGER DEFAULT (strftime('%s','now')))");
    db.prepare("INSERT INTO peers (prefix, address, used) VALUES ('0101', '192.0.2.1,1194,udp', 1)").run();
    db.close();
    const before = snapshot(dir)["peers.db"];
    const token = await mailedToken("frank@example.com", empty.port);
    const r = await run([...base(empty.port, dir), "--token", token]); // the empty registry: getBootstrapPeer would fail
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /table peers already exists, leaving it as it is/);
    assert.equal(snapshot(dir)["peers.db"], before, "peers.db untouched");
  });

  test("an SQLite peers.db without a peers table gets one; a registry's database is refused", async () => {
    const dir = fresh();
    mkdirSync(dir);
    const other = new Database(join(dir, "peers.db"));
    other.exec("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('kept')");
    other.close();
    let r = await run([...base(reg.port, dir), "--db-only"]);
    assert.equal(r.code, 0, r.stderr);
    const db = new Database(join(dir, "peers.db"), { readonly: true });
    assert.deepEqual(db.prepare("SELECT t FROM notes").all(), [{ t: "kept" }]);
    assert.equal((db.prepare("SELECT count(*) AS n FROM peers").get() as { n: number }).n, 1);
    db.close();

    const dir2 = fresh();
    mkdirSync(dir2);
    new RegistryDb(join(dir2, "peers.db")).close(); // peers table without `used`
    const state = snapshot(dir2);
    r = await run([...base(reg.port, dir2), "--db-only"]);
    assertOneLineError(r, /peers\.db has a peers table without column\(s\) used/);
    assert.deepEqual(snapshot(dir2), state);

    writeFileSync(join(dir2, "peers.db"), "not a database at all, but long enough to have a header .......................................................");
    const state2 = snapshot(dir2);
    r = await run([...base(reg.port, dir2), "--db-only"]);
    assertOneLineError(r, /not an SQLite database/);
    assert.deepEqual(snapshot(dir2), state2);
  });

  test("ca.pem holding another CA: the user is told, the old one is kept as ca.pem.old", async () => {
    const dir = fresh();
    mkdirSync(dir);
    const old = makeCa("2001:db8:99::/48", "old CA").pem;
    writeFileSync(join(dir, "ca.pem"), old);
    const r = await run([...base(reg.port, dir), "--ca-only"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /ca\.pem holds another CA than the registry's/);
    assert.equal(readFileSync(join(dir, "ca.pem"), "utf8"), ca.pem);
    assert.equal(readFileSync(join(dir, "ca.pem.old"), "utf8"), old);
  });

  test("an existing dh2048.pem is never overwritten", async () => {
    const dir = fresh();
    mkdirSync(dir);
    writeFileSync(join(dir, "dh2048.pem"), "my own parameters\n");
    const token = await mailedToken("grace@example.com");
    const r = await run([...base(reg.port, dir), "--token", token]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(dir, "dh2048.pem"), "utf8"), "my own parameters\n");
    assert.match(r.stdout, /dh2048\.pem: exists, kept/);
  });

  describe("failures leave the directory as it was", () => {
    let complete: string; // a directory holding a finished setup
    before(async () => {
      complete = fresh();
      const token = await mailedToken("setup@example.com");
      const r = await run([...base(reg.port, complete), "--token", token]);
      assert.equal(r.code, 0, r.stderr);
    });

    /** Runs `args` on an empty directory and on a complete one; both must be unchanged. */
    async function unchanged(args: (dir: string) => string[], pattern: RegExp, code = 1): Promise<void> {
      const dir = fresh();
      mkdirSync(dir);
      for (const d of [dir, complete]) {
        const state = snapshot(d);
        assertOneLineError(await run(args(d)), pattern, code);
        assert.deepEqual(snapshot(d), state, `${d} unchanged`);
      }
    }

    test("registry unreachable", async () => {
      const probe = http.createServer();
      await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
      const closed = (probe.address() as AddressInfo).port;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      await unchanged((d) => [...base(closed, d), "--token", "abcdefgh"], /getCa: cannot reach the registry at http:\/\/127\.0\.0\.1:\d+\/RPC2: connection refused/);
      await unchanged((d) => ["--server", "::1", "--port", String(closed), "-d", d], /cannot reach the registry at http:\/\/\[::1\]:\d+\/RPC2/);
    });

    test("wrong token, and a token used twice", async () => {
      await unchanged((d) => [...base(reg.port, d), "--token", "zzzzzzzz"], /requestCertificate: the registry refused the token or the request \(unknown or already used token\)/);
      const token = await mailedToken("once@example.com");
      const ok = await run([...base(reg.port, fresh()), "--token", token]);
      assert.equal(ok.code, 0, ok.stderr);
      await unchanged((d) => [...base(reg.port, d), "--token", token], /refused the token/);
    });

    test("a refused certificate request, and a certificate for another key", async () => {
      const refusing = await startStub(reg.port, (res) => {
        res.writeHead(200, { "Content-Type": "text/xml" });
        res.end(serializeFault({ faultCode: 1, faultString: "<class 'ValueError'>:certificate request refused: the request's RSA key has 1024 bits" }));
      });
      const foreign = await startStub(reg.port, (res) => {
        res.writeHead(200, { "Content-Type": "text/xml" });
        res.end(`<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><string>${ca.pem}</string></value>\n</param>\n</params>\n</methodResponse>\n`);
      });
      try {
        await unchanged((d) => [...base(refusing.port, d), "--token", "abcdefgh"], /refused the token or the request \(certificate request refused: the request's RSA key has 1024 bits\)/);
        await unchanged((d) => [...base(foreign.port, d), "--token", "abcdefgh"], /certificate for another key.*nothing was written/);
      } finally {
        await refusing.close();
        await foreign.close();
      }
    });

    test("a server that is not a registry", async () => {
      const web = http.createServer((_req, res) => { res.writeHead(404); res.end("no"); });
      await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve));
      try {
        await unchanged((d) => [...base((web.address() as AddressInfo).port, d), "--db-only"], /answered HTTP 404.*is it a vifibnet registry\?/);
      } finally {
        web.close();
      }
    });

    test("unwritable directory", async (t) => {
      const file = join(root, "a-file");
      writeFileSync(file, "x");
      let r = await run([...base(reg.port, join(file, "sub")), "--ca-only"]);
      assertOneLineError(r, /not a directory/);
      r = await run([...base(reg.port, file), "--ca-only"]);
      assertOneLineError(r, /a-file: not a directory/);

      const ro = fresh();
      mkdirSync(ro);
      writeFileSync(join(ro, "ca.pem"), "old\n");
      chmodSync(ro, 0o555);
      try {
        const state = snapshot(ro);
        // root writes anywhere: run as nobody to meet a permission it lacks
        const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
        const probe = spawnSync(process.execPath, [BIN("vifibnet-setup"), "--help"], { ...asNobody, stdio: "ignore" });
        if (probe.status !== 0) {
          t.diagnostic("read-only directory case skipped: uid 65534 cannot run the program from this checkout");
          return;
        }
        r = await start([...base(reg.port, ro), "--token", "abcdefgh"], asNobody).result;
        assertOneLineError(r, /cannot write to .*: permission denied/);
        assert.deepEqual(snapshot(ro), state);
      } finally {
        chmodSync(ro, 0o755);
      }
    });

    test("-d where no directory can be made (/proc/x): one line at once, and SIGTERM is never ignored", async () => {
      const setup = start([...base(reg.port, "/proc/x/vifib"), "--ca-only"]);
      // Before, Node's recursive mkdir spun at 100 % CPU there, deaf to signals.
      const timer = setTimeout(() => setup.proc.kill("SIGTERM"), 3_000);
      const r = await Promise.race([setup.result, new Promise<null>((resolve) => setTimeout(() => resolve(null), 8_000))]);
      clearTimeout(timer);
      if (r === null) setup.proc.kill("SIGKILL");
      assert.ok(r !== null, "still running 5 s after SIGTERM");
      assertOneLineError(r, /cannot create directory \/proc\/x\/vifib: the file system does not allow it there/);
    });

    test("a directory that does not exist is created, and removed again on failure", async () => {
      const dir = join(fresh(), "deeper");
      let r = await run([...base(reg.port, dir), "--token", "zzzzzzzz"]);
      assertOneLineError(r, /refused the token/);
      assert.equal(existsSync(join(dir, "..")), false, "nothing left behind");
      r = await run([...base(reg.port, dir), "--db-only"]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readdirSync(dir).sort(), ["ca.pem", "peers.db"]);
    });

    test("standard input ends before an answer", async () => {
      await unchanged((d) => base(reg.port, d), /no answer to "Please enter your email address": standard input ended.*--email and --token/);
      await unchanged((d) => [...base(reg.port, d), "--email", "nobody@example.com"], /no answer to "Please enter your token"/);
      await tokenFromMail("nobody@example.com");
      await tokenFromMail("nobody@example.com");
    });

    for (const [signal, code, at] of [["SIGINT", 130, "email address"], ["SIGINT", 130, "token"], ["SIGTERM", 143, "token"]] as const) {
      test(`interrupted (${signal}) at the ${at} prompt, then a re-run just works`, async () => {
        const email = `int-${signal}-${at.length}@example.com`;
        for (const dir of [fresh(), complete]) {
          mkdirSync(dir, { recursive: true });
          const state = snapshot(dir);
          const p = start(base(reg.port, dir), { stdin: "pipe" });
          await p.waitFor("Please enter your email address : ");
          if (at === "token") {
            p.proc.stdin!.write(email + "\n");
            await tokenFromMail(email);
            await p.waitFor("Please enter your token : ");
          }
          p.proc.kill(signal);
          const r = await p.result;
          assertOneLineError(r, new RegExp(`interrupted \\(${signal}\\): nothing was written to `), code);
          assert.deepEqual(snapshot(dir), state);
        }
        const dir = fresh();
        const token = await mailedToken(email);
        const r = await run([...base(reg.port, dir), "--token", token]);
        assert.equal(r.code, 0, r.stderr);
        checkComplete(dir, ca, true);
      });
    }

    test("after a crash between the renames (a key without its certificate) a re-run works and cleans up", async () => {
      const dir = fresh();
      mkdirSync(dir);
      const dead = spawnSync("true").pid!; // a pid no process has any more
      writeFileSync(join(dir, "cert.key"), readFileSync(join(complete, "cert.key")), { mode: 0o600 });
      writeFileSync(join(dir, `.cert.crt.${dead}.tmp`), readFileSync(join(complete, "cert.crt")));
      writeFileSync(join(dir, `.peers.db.${dead}.tmp-journal`), "x");
      const token = await mailedToken("crash@example.com");
      const r = await run([...base(reg.port, dir), "--token", token]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /removed 2 temporary file\(s\)/);
      assert.match(r.stderr, /cert\.key has no matching cert\.crt \(an interrupted setup\?\): both will be replaced/);
      checkComplete(dir, ca, true);
    });
  });

  test("usage errors exit 2 with argparse's messages", async () => {
    let r = await run([]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^usage: vifibnet-setup /m);
    assert.match(r.stderr, /the following arguments are required: --server, --port/);
    r = await run(["--server", "127.0.0.1", "--port", "1", "-r", "XX", "y"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /argument -r\/--req: unknown subject attribute 'XX' \(use one of C, ST, L, O, OU, CN, emailAddress\)/);
    r = await run(["--server", "127.0.0.1", "--port", "1", "-r", "C", "FRA"]);
    assert.match(r.stderr, /subject attribute C must have exactly 2 characters/);
    r = await run(["--server", "127.0.0.1", "--port", "1", "-r", "O"]);
    assert.match(r.stderr, /argument -r\/--req: expected 2 arguments/);
    r = await run(["--server", "2001:db8::zz", "--port", "1"]);
    assert.match(r.stderr, /argument --server: '2001:db8::zz' is not an IPv4 or IPv6 address/);
    r = await run(["--server", "127.0.0.1", "--port", "70000"]);
    assert.match(r.stderr, /argument --port: 70000 is not a port number/);
  });

  test("compat/setup.py runs it under the legacy name", async () => {
    const py = spawnSync("python3", ["--version"]);
    if (py.error) return; // no Python: the interop suite covers the launcher where it exists
    const r = await start(["--help"], { launcher: ["python3", join(ROOT, "compat", "setup.py")] }).result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage: setup\.py /);
    for (const flag of ["--server", "--port", "-d DIR, --dir DIR", "-r NAME VALUE, --req NAME VALUE", "--ca-only", "--db-only", "--no-boot", "--email", "--token"])
      assert.ok(r.stdout.includes(flag), `${flag} in --help`);
  });
});
