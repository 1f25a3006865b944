import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PeersDb } from "../lib/db";
import { refreshPeers } from "../lib/peers-refresh";
import { RpcClient } from "../lib/rpc-client";
import { silentLogger } from "../lib/utils/log";
import { XmlRpcValue, parseMethodResponse, serializeMethodCall } from "../lib/xmlrpc";
import { bigOdd, makeCa, makeCsr, rawCsr } from "../harness/pki";
import { BIN } from "../harness/paths";
import { RunningRegistry, startRegistry } from "./helpers/registry";
import { SmtpSink, startSmtpSink } from "../harness/smtp-sink";

interface HttpReply { status: number; body: string }

/** One request on a connection of its own: with several workers, any of them may answer. */
function post(host: string, port: number, path: string, body: string, method = "POST", localAddress?: string): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path, method, agent: false, localAddress, headers: { "Content-Type": "text/xml" } }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (data += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

async function call(host: string, port: number, method: string, ...params: XmlRpcValue[]): Promise<XmlRpcValue> {
  return callFrom(undefined, host, port, method, ...params);
}

/** call, from a chosen local address (127.0.0.2 is another client than 127.0.0.1). */
async function callFrom(localAddress: string | undefined, host: string, port: number, method: string, ...params: XmlRpcValue[]): Promise<XmlRpcValue> {
  const reply = await post(host, port, "/RPC2", serializeMethodCall(method, params), "POST", localAddress);
  assert.equal(reply.status, 200);
  const parsed = parseMethodResponse(reply.body);
  if ("fault" in parsed) throw new Error(parsed.fault.faultString);
  return parsed.result;
}

describe("vifibnet-registry as a process", () => {
  const dir = mkdtempSync(join(tmpdir(), "vifibnet-registry-"));
  const ca = makeCa();
  let sink: SmtpSink;
  let reg: RunningRegistry;

  before(async () => {
    sink = await startSmtpSink();
    reg = await startRegistry(dir, ca, `127.0.0.1:${sink.port}`, ["-v", "3", "--workers", "2"]);
  });
  after(async () => {
    await reg?.stop();
    await sink?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const host of ["127.0.0.1", "::1"]) {
    test(`token mail and certificate over ${host}`, async () => {
      assert.equal(await call(host, reg.port, "getCa"), ca.pem);
      assert.equal(await call(host, reg.port, "requestToken", "carol@example.com"), null);
      const mail = await sink.next();
      assert.equal(mail.from, "postmaster@vifibnet.com");
      assert.deepEqual(mail.to, ["carol@example.com"]);
      assert.match(mail.raw, /^Subject: \[Vifibnet\] Token Request\r?$/m);
      assert.match(mail.raw, /^From: postmaster@vifibnet\.com\r?$/m);
      const token = /^Your token : ([a-z]{8})\r?$/m.exec(mail.raw)?.[1];
      assert.ok(token, mail.raw);
      const cert = new X509Certificate((await call(host, reg.port, "requestCertificate", token, makeCsr().csr)) as string);
      assert.ok(cert.verify(new X509Certificate(ca.pem).publicKey));
      assert.match(cert.subject, /CN=\d+\/16$/);
    });
  }

  test("HTTP: only POST on / and /RPC2; bad bodies get faults or 4xx, and the server goes on", async () => {
    const getCa = serializeMethodCall("getCa", []);
    assert.equal((await post("127.0.0.1", reg.port, "/", getCa)).status, 200);
    assert.equal((await post("127.0.0.1", reg.port, "/other", getCa)).status, 404);
    assert.equal((await post("127.0.0.1", reg.port, "/RPC2", "", "GET")).status, 405);
    assert.equal((await post("127.0.0.1", reg.port, "/RPC2", "x".repeat(70_000))).status, 413);
    const malformed = await post("127.0.0.1", reg.port, "/RPC2", "<methodCall><methodName>getCa");
    assert.match((parseMethodResponse(malformed.body) as { fault: { faultString: string } }).fault.faultString, /ExpatError.*never closed/);
    assert.equal(await call("::1", reg.port, "getCa"), ca.pem);
  });

  test("concurrent certificate requests get distinct prefixes", async () => {
    const tokens: string[] = [];
    for (let i = 0; i < 6; i++) {
      await call("127.0.0.1", reg.port, "requestToken", `n${i}@example.com`);
      tokens.push(/Your token : ([a-z]{8})/.exec((await sink.next()).raw)![1]!);
    }
    const csr = makeCsr().csr;
    const certs = await Promise.all(tokens.map((t) => call("127.0.0.1", reg.port, "requestCertificate", t, csr)));
    const cns = certs.map((c) => /CN=(\S+)/.exec(new X509Certificate(c as string).subject)![1]);
    assert.equal(new Set(cns).size, 6);
  });

  test("once declare answers, every worker lists the peer", async () => {
    const node = "2001:db8:42:77::";
    for (let round = 0; round < 5; round++) {
      const address = `198.51.100.${70 + round},1194,udp`;
      assert.equal(await call("127.0.0.1", reg.port, "declare", [node, address]), true);
      const lists = await Promise.all(Array.from({ length: 6 }, () => call("::1", reg.port, "getPeerList", 999, node)));
      for (const [i, list] of lists.entries())
        assert.ok((list as string[][]).some((p) => p[1] === address), `round ${round}, request ${i} on a new connection missed ${address}`);
    }
  });

  test("CSRs with 16384-bit keys and exponents are answered at once and others are served meanwhile", async () => {
    const tokens = [await tokenFrom(sink, reg.port, "h1@example.com"), await tokenFrom(sink, reg.port, "h2@example.com")];
    const hostile = () => rawCsr({ rsa: { modulus: bigOdd(16384), exponent: bigOdd(16384) } });
    // Each post gives up after 10 s: before, one such request held a worker for minutes.
    const attacks = ["abcdefgh", "abcdefgi", ...tokens].map((t) =>
      call("127.0.0.1", reg.port, "requestCertificate", t, hostile()).then(() => "issued", (e: Error) => e.message));
    const legit = Array.from({ length: 8 }, () => call("::1", reg.port, "getCa"));
    assert.deepEqual(await Promise.all(legit), Array(8).fill(ca.pem));
    const answers = await Promise.all(attacks);
    assert.match(answers[0]!, /LookupError.*unknown or already used token/);
    assert.match(answers[2]!, /ValueError.*16384 bits; at most 4096/);
    const cert = await call("127.0.0.1", reg.port, "requestCertificate", tokens[0]!, makeCsr().csr);
    assert.match(new X509Certificate(cert as string).subject, /CN=\d+\/16$/, "the token survived the hostile request");
  });

  test("a client's mistake is a fault and at most one log line, never a stack trace", async () => {
    const t = await tokenFrom(sink, reg.port, "m@example.com");
    const before = reg.log().length;
    const badUtf8 = rawCsr({ attributes: [{ oid: "2.5.4.10", tag: 0x0c, bytes: Buffer.from([0x41, 0xc3, 0x28]) }] });
    const der = Buffer.from(/-----BEGIN CERTIFICATE REQUEST-----([\s\S]*?)-----END/.exec(makeCsr().csr)![1]!.replace(/\s/g, ""), "base64");
    der[der.length - 1] ^= 1;
    const badSignature = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    for (const [csr, why] of [[badUtf8, /not valid UTF-8/], [badSignature, /signature does not match/]] as const)
      await assert.rejects(call("127.0.0.1", reg.port, "requestCertificate", t, csr), why);
    await assert.rejects(call("127.0.0.1", reg.port, "toString"), /method "toString" is not supported/);
    const about = (): string[] => reg.log().slice(before).split("\n").filter((l) => /requestCertificate|toString|Error|^\s+at /.test(l));
    await until("the log lines", () => (about().length >= 3 ? true : undefined));
    await new Promise((r) => setTimeout(r, 200)); // anything more would have come by now
    const lines = about();
    assert.equal(lines.length, 3, lines.join("\n"));
    assert.ok(lines.every((l) => / (requestCertificate|toString) [\d.]+ ms fault /.test(l)), lines.join("\n"));
  });

  test("logs one line per request at -v 3", () => {
    assert.match(reg.log(), /127\.0\.0\.1 getCa [\d.]+ ms ok/);
    assert.match(reg.log(), /::1 requestCertificate [\d.]+ ms ok/);
    assert.match(reg.log(), /\? [\d.]+ ms fault .*ExpatError/);
  });
});

describe("vifibnet-registry start and stop", () => {
  const dir = mkdtempSync(join(tmpdir(), "vifibnet-registry-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("an unreachable mail host is a fault that says so", async () => {
    const reg = await startRegistry(dir, makeCa(), "127.0.0.1:1");
    try {
      await assert.rejects(call("127.0.0.1", reg.port, "requestToken", "dave@example.com"), /could not mail the token to dave@example\.com.*ECONNREFUSED/);
    } finally {
      assert.equal(await reg.stop("SIGINT"), 0, "SIGINT stops it cleanly");
    }
  });

  test("SIGTERM stops it cleanly, even with a keep-alive connection open", async () => {
    const reg = await startRegistry(dir, makeCa(), "127.0.0.1:1");
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve) => {
      http.request({ host: "127.0.0.1", port: reg.port, path: "/RPC2", method: "POST", agent }, (res) => { res.resume(); res.on("end", resolve); }).end(serializeMethodCall("getCa", []));
    });
    assert.equal(await reg.stop(), 0);
    agent.destroy();
  });

  test("arguments from an @FILE (the package's registry.conf): words per line, '#' comments; a missing file is one line", async () => {
    const ca = makeCa();
    writeFileSync(join(dir, "f-ca.crt"), ca.pem);
    writeFileSync(join(dir, "f-ca.key"), ca.keyPem, { mode: 0o600 });
    const conf = join(dir, "registry.conf");
    writeFileSync(conf, `# the port first\n0\n--db ${join(dir, "f.db")}   # created\n--ca ${join(dir, "f-ca.crt")} --key ${join(dir, "f-ca.key")}\n\n--mailhost 127.0.0.1:1\n`);
    const proc = spawn(process.execPath, [BIN("vifibnet-registry"), `@${conf}`, "--workers", "1"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    proc.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`not listening: ${err}`)), 15_000);
        proc.stderr!.on("data", () => {
          const m = /listening on 0\.0\.0\.0:(\d+)/.exec(err);
          if (m) { clearTimeout(t); resolve(Number(m[1])); }
        });
        proc.once("exit", (code) => { clearTimeout(t); reject(new Error(`exited ${code}: ${err}`)); });
      });
      assert.equal(new X509Certificate((await call("127.0.0.1", port, "getCa")) as string).raw.equals(new X509Certificate(ca.pem).raw), true);
    } finally {
      proc.kill("SIGTERM");
    }
    const r = spawnSync(process.execPath, [BIN("vifibnet-registry"), `@${join(dir, "none.conf")}`], { encoding: "utf8", timeout: 15_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr.trimEnd().split("\n").at(-1)!, /^vifibnet-registry: error: ENOENT: no such file or directory, open '.*none\.conf'$/);
  });

  test("bad arguments and files give a clear error before anything starts", () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [BIN("vifibnet-registry"), ...args], { encoding: "utf8", timeout: 15_000 });
    let r = run("8000");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /error: the following arguments are required: --db, --ca, --key, --mailhost/);
    r = run("notaport", "--db", "x", "--ca", "x", "--key", "x", "--mailhost", "x");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /argument port: invalid 'int' value: 'notaport'/);
    r = run("0", "--db", join(dir, "a.db"), "--ca", join(dir, "missing.crt"), "--key", "x", "--mailhost", "localhost");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read --ca .*missing\.crt: no such file/);
  });
});

/** The pids of a process's children (the registry's workers). */
function childPids(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    const v = await f();
    if (v !== undefined) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function tokenFrom(sink: SmtpSink, port: number, email: string): Promise<string> {
  await call("127.0.0.1", port, "requestToken", email);
  return /Your token : ([a-z]{8})/.exec((await sink.next()).raw)![1]!;
}

describe("vifibnet-registry against slow clients", () => {
  const dir = mkdtempSync(join(tmpdir(), "vifibnet-registry-"));
  let reg: RunningRegistry;
  const sockets: net.Socket[] = [];

  before(async () => {
    reg = await startRegistry(dir, makeCa(), "127.0.0.1:1", ["--workers", "1"]);
    // As a small server would have it: a flood that is not bounded runs out of file descriptors.
    execFileSync("prlimit", ["--pid", String(reg.proc.pid), "--nofile=512:512"]);
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a flood of slow connections from one client neither starves others nor lasts", async () => {
    const start = Date.now();
    const closed: number[] = [];
    const open = (local: string, partial: string) => new Promise<void>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port: reg.port, localAddress: local }, () => {
        s.write(partial);
        resolve();
      });
      s.on("error", () => resolve());
      s.on("close", () => closed.push(Date.now() - start));
      sockets.push(s);
    });
    await Promise.all(Array.from({ length: 700 }, () => open("127.0.0.2", "POST /RPC2 HTTP/1.1\r\nHost: registry\r\n")));
    await open("127.0.0.3", ""); // connects and says nothing
    assert.equal(await callFrom("127.0.0.1", "127.0.0.1", reg.port, "getCa").then(() => "served", (e: Error) => e.message), "served");
    await until("every slow connection closed by the registry", () => (closed.length === sockets.length ? true : undefined), 25_000);
    assert.ok(Math.max(...closed) < 20_000, `the last slow connection lasted ${Math.max(...closed)} ms`);
    assert.equal(await call("127.0.0.1", reg.port, "getCa").then(() => "served"), "served");
  });
});

describe("vifibnet-registry as a process that gives up", () => {
  const dir = mkdtempSync(join(tmpdir(), "vifibnet-registry-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const args = (port: number, ...extra: string[]) => [BIN("vifibnet-registry"), String(port), "--db", join(dir, "r.db"), "--ca", join(dir, "ca.crt"),
    "--key", join(dir, "ca.key"), "--mailhost", "127.0.0.1:1", ...extra];

  test("a port in use: one line, status 1, whatever the number of workers", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "0.0.0.0", resolve));
    const port = (taken.address() as net.AddressInfo).port;
    const reg = await startRegistry(dir, makeCa(), "127.0.0.1:1"); // writes ca.crt and ca.key
    await reg.stop();
    try {
      for (const workers of ["1", "3"]) {
        const r = spawnSync(process.execPath, args(port, "--workers", workers), { encoding: "utf8", timeout: 20_000 });
        assert.equal(r.status, 1, `--workers ${workers}: ${r.stderr}`);
        assert.equal(r.stderr, `vifibnet-registry: error: cannot listen on port ${port}: it is already in use (another registry?)\n`);
      }
    } finally {
      taken.close();
    }
  });

  test("a rare worker death is repaired; deaths in quick succession stop it with status 1", async () => {
    const reg = await startRegistry(dir, makeCa(), "127.0.0.1:1", ["--workers", "2"]);
    try {
      const pid = reg.proc.pid!;
      const first = await until("two workers", () => (childPids(pid).length === 2 ? childPids(pid) : undefined));
      process.kill(first[0]!, "SIGKILL");
      await until("a new worker", () => (childPids(pid).length === 2 && !childPids(pid).includes(first[0]!) ? true : undefined));
      assert.equal(await call("127.0.0.1", reg.port, "getCa").then(() => "served"), "served");
      const exited = once(reg.proc, "exit");
      const killed = new Set(first.slice(0, 1));
      for (let i = 0; i < 5 && reg.proc.exitCode === null; i++) {
        const victim = await until("a worker to kill", () => childPids(pid).find((p) => !killed.has(p)));
        killed.add(victim);
        process.kill(victim, "SIGKILL");
      }
      const [code] = (await Promise.race([exited, new Promise((r) => setTimeout(() => r(["still running"]), 15_000))])) as [number | string];
      assert.equal(code, 1);
      assert.match(reg.log(), /error: registry worker \d+ exited \(SIGKILL\): 6 workers died within 60 s; stopping/);
    } finally {
      await reg.stop();
    }
  });
});

describe("vifibnet-registry's strict modes", () => {
  const dir = mkdtempSync(join(tmpdir(), "vifibnet-registry-"));
  let sink: SmtpSink;
  before(async () => { sink = await startSmtpSink(); });
  after(async () => {
    await sink?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("--strict-source: declare only from the declared address itself, getPeerList only from inside", async () => {
    // In a network of ::/96, ::1 is a node address: a caller inside the network on loopback.
    const reg = await startRegistry(dir, makeCa("::/96"), `127.0.0.1:${sink.port}`, ["--strict-source"]);
    try {
      assert.match(reg.log(), /listening on .* \(--strict-source\)/);
      assert.equal(await call("127.0.0.1", reg.port, "declare", ["::1", "198.51.100.1,1194,udp"]), false);
      assert.equal(await call("::1", reg.port, "declare", ["::1", "198.51.100.1,1194,udp"]), true);
      await assert.rejects(call("127.0.0.1", reg.port, "getPeerList", 5, "::1"), /only to callers inside the network/);
      assert.deepEqual(await call("::1", reg.port, "getPeerList", 5, "::1"), [["", "198.51.100.1,1194,udp"]]);
    } finally {
      await reg.stop();
    }
  });

  test("--strict-signed: a legacy declare is refused; a vifibnet node declares signed and is listed", async () => {
    const ca = makeCa();
    const reg = await startRegistry(dir, ca, `127.0.0.1:${sink.port}`, ["--strict-signed", "--workers", "2", "--db", join(dir, "signed.db")]);
    const rpc = new RpcClient("127.0.0.1", reg.port);
    const db = PeersDb.open(join(dir, "peers.db"), { create: true });
    try {
      const node = makeCsr();
      await call("127.0.0.1", reg.port, "requestCertificate", await tokenFrom(sink, reg.port, "s@example.com"), node.csr); // 0/16
      const nodeIp = "2001:db8:42::";
      assert.equal(await call("127.0.0.1", reg.port, "declare", [nodeIp, "198.51.100.1,1194,udp"]), false);
      const deps = { rpc, db, nodeIp, ownPrefix: "0000000000000000", address: "198.51.100.2,1194,udp", refreshInterval: 60, now: Date.now, logger: silentLogger };
      assert.equal((await refreshPeers({ ...deps, key: null })).declared, false, "without its key, the node is refused");
      assert.equal((await refreshPeers({ ...deps, key: createPrivateKey(node.keyPem) })).declared, true);
      assert.deepEqual(await call("::1", reg.port, "getPeerList", 5, nodeIp), [["0000000000000000", "198.51.100.2,1194,udp"]]);
    } finally {
      rpc.close();
      db.close();
      await reg.stop();
    }
  });
});

