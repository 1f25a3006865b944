import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { XmlRpcValue, parseMethodResponse, serializeMethodCall } from "../lib/xmlrpc";
import { makeCa, makeCsr } from "../harness/pki";
import { BIN } from "../harness/paths";
import { RunningRegistry, startRegistry } from "./helpers/registry";
import { SmtpSink, startSmtpSink } from "../harness/smtp-sink";

interface HttpReply { status: number; body: string }

/** One request on a connection of its own: with several workers, any of them may answer. */
function post(host: string, port: number, path: string, body: string, method = "POST"): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path, method, agent: false, headers: { "Content-Type": "text/xml" } }, (res) => {
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
  const reply = await post(host, port, "/RPC2", serializeMethodCall(method, params));
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
