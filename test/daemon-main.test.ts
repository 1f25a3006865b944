// The daemon's edges without a network: startup checks (each a one-line
// error, exit 1, before anything starts), naming of servers and logs, the
// advertised address for a learnt IP, and the child process wrapper.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import forge from "node-forge";
import { PeersDb } from "../lib/db";
import { parseDaemonArgsOrThrow } from "../lib/daemon/args";
import { Child, liveChildren } from "../lib/daemon/children";
import { StartupError, findProgram, startupChecks } from "../lib/daemon/host";
import { LogFile } from "../lib/daemon/logs";
import { serverDevice, serverLogName } from "../lib/daemon/servers";
import { addressesFor, parseIpv6Prefix, serialFromNetwork } from "../lib/utils/address";
import { checkRequest, issueCertificate, loadCa } from "../lib/utils/cert";
import { checkNodeCertificate } from "../lib/utils/x509";
import { makeCa, makeCsr } from "../harness/pki";
import { BIN } from "../harness/paths";

const tmp = mkdtempSync(join(tmpdir(), "vfb-main-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const ca = makeCa("2001:db8:42::/48");
const other = makeCa("2001:db8:43::/48", "other CA");
const { csr } = makeCsr();
const certPem = issueCertificate(loadCa(ca.pem, ca.keyPem), checkRequest(csr), "5/16", new Date());
const foreignPem = issueCertificate(loadCa(other.pem, other.keyPem), checkRequest(csr), "5/16", new Date());

function sha1Cert(): string {
  const caCert = forge.pki.certificateFromPem(ca.pem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });
  const c = forge.pki.createCertificate();
  c.publicKey = keys.publicKey;
  c.serialNumber = "01";
  c.validity.notBefore = new Date(Date.now() - 60_000);
  c.validity.notAfter = new Date(Date.now() + 86_400_000);
  c.setSubject([{ shortName: "CN", value: "7/16" }]);
  c.setIssuer(caCert.subject.attributes);
  c.sign(caKey, forge.md.sha1.create());
  return forge.pki.certificateToPem(c);
}

/** A CA (serial for 2001:db8:42::/48) made by hand, CA or not, and a node certificate 5/16 it signed. */
function forgeCa(opts: { cA: boolean; notAfter?: Date }): { ca: string; node: string } {
  const caKeys = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });
  const c = forge.pki.createCertificate();
  c.publicKey = caKeys.publicKey;
  c.serialNumber = serialFromNetwork(parseIpv6Prefix("2001:db8:42::/48")!).toString(16);
  c.validity.notBefore = new Date(Date.now() - 10 * 86_400_000);
  c.validity.notAfter = opts.notAfter ?? new Date(Date.now() + 86_400_000);
  c.setSubject([{ shortName: "CN", value: "hand-made CA" }]);
  c.setIssuer([{ shortName: "CN", value: "hand-made CA" }]);
  c.setExtensions([{ name: "basicConstraints", cA: opts.cA }]);
  c.sign(caKeys.privateKey, forge.md.sha256.create());
  const n = forge.pki.createCertificate();
  n.publicKey = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 }).publicKey;
  n.serialNumber = "02";
  n.validity.notBefore = c.validity.notBefore;
  n.validity.notAfter = new Date(Date.now() + 86_400_000);
  n.setSubject([{ shortName: "CN", value: "5/16" }]);
  n.setIssuer(c.subject.attributes);
  n.sign(caKeys.privateKey, forge.md.sha256.create());
  return { ca: forge.pki.certificateToPem(c), node: forge.pki.certificateToPem(n) };
}

function files(name: string, opts: { cert?: string; peersDb?: boolean } = {}): string[] {
  const dir = join(tmp, name);
  spawnSync("mkdir", ["-p", dir]);
  writeFileSync(join(dir, "ca.pem"), ca.pem);
  writeFileSync(join(dir, "cert.crt"), opts.cert ?? certPem);
  writeFileSync(join(dir, "dh.pem"), "dh");
  if (opts.peersDb ?? true) PeersDb.open(join(dir, "peers.db"), { create: true }).close();
  return ["--server", "198.51.100.1", "--server-port", "80", "-s", dir, "-l", dir,
    "--ca", join(dir, "ca.pem"), "--cert", join(dir, "cert.crt"), "--dh", join(dir, "dh.pem")];
}

const haveTools = findProgram("openvpn") !== null && findProgram("babeld") !== null;

describe("startup checks", () => {
  test("not root", () => {
    assert.throws(() => startupChecks(parseDaemonArgsOrThrow(files("a")), 1000), (e: Error) => e instanceof StartupError && /root/.test(e.message));
  });

  test("identity from the CA and the certificate", { skip: !haveTools && "openvpn/babeld not installed" }, () => {
    const id = startupChecks(parseDaemonArgsOrThrow(files("b")), 0);
    assert.equal(id.address, "2001:db8:42:5::");
    assert.equal(id.prefix, "0000000000000101");
    assert.equal(id.network.length, 48);
    assert.equal(id.sha1, false);
  });

  test("missing file, foreign certificate, no peers.db", { skip: !haveTools && "openvpn/babeld not installed" }, () => {
    const missing = parseDaemonArgsOrThrow(files("c"));
    missing.dh = join(tmp, "c", "nope.pem");
    assert.throws(() => startupChecks(missing, 0), /cannot read --dh .*no such file/);
    assert.throws(() => startupChecks(parseDaemonArgsOrThrow(files("d", { cert: foreignPem })), 0), /not issued by the given CA/);
    assert.throws(() => startupChecks(parseDaemonArgsOrThrow(files("e", { peersDb: false })), 0), /peers\.db does not exist: run vifibnet-setup first/);
  });

  test("SHA-1 certificates are detected", () => {
    const c = checkNodeCertificate(sha1Cert(), ca.pem);
    assert.equal(c.sha1, true);
    assert.equal(c.commonName, "7/16");
    assert.equal(checkNodeCertificate(certPem, ca.pem).sha1, false);
  });

  test("--no-legacy with the node's own certificate signed with SHA-1: refused, OpenVPN would not load it", { skip: !haveTools && "openvpn/babeld not installed" }, () => {
    const args = files("n", { cert: sha1Cert() });
    assert.equal(startupChecks(parseDaemonArgsOrThrow(args), 0).sha1, true, "accepted without --no-legacy");
    assert.throws(() => startupChecks(parseDaemonArgsOrThrow([...args, "--no-legacy"]), 0),
      (e: Error) => e instanceof StartupError && /cert\.crt is signed with SHA-1, which --no-legacy refuses/.test(e.message));
  });

  test("an expired certificate, a CA certificate that is no CA or has expired: refused", { skip: !haveTools && "openvpn/babeld not installed" }, () => {
    const day = 86_400_000;
    const expired = issueCertificate(loadCa(ca.pem, ca.keyPem), checkRequest(csr), "5/16", new Date(Date.now() - 400 * day), 365);
    assert.throws(() => startupChecks(parseDaemonArgsOrThrow(files("g", { cert: expired })), 0), /--cert .*: the certificate expired on .*: peers refuse it/);
    const notCa = forgeCa({ cA: false });
    const args = files("h", { cert: notCa.node });
    writeFileSync(join(tmp, "h", "ca.pem"), notCa.ca);
    assert.throws(() => startupChecks(parseDaemonArgsOrThrow(args), 0), /the CA certificate is not a CA certificate/);
    const old = forgeCa({ cA: true, notAfter: new Date(Date.now() - day) });
    const oldArgs = files("i", { cert: old.node });
    writeFileSync(join(tmp, "i", "ca.pem"), old.ca);
    assert.throws(() => startupChecks(parseDaemonArgsOrThrow(oldArgs), 0), /the CA certificate expired on/);
    const good = forgeCa({ cA: true });
    const goodArgs = files("j", { cert: good.node });
    writeFileSync(join(tmp, "j", "ca.pem"), good.ca);
    assert.equal(startupChecks(parseDaemonArgsOrThrow(goodArgs), 0).prefix, "0000000000000101", "the same made as a CA is accepted");
  });

  test("--log where no directory can be made (/proc/x): one line, status 1, at once", { skip: !haveTools && "openvpn/babeld not installed" }, () => {
    const args = files("k");
    const r = spawnSync(process.execPath, [BIN("vifibnet"), ...args, "-l", "/proc/x"], { encoding: "utf8", timeout: 30_000, killSignal: "SIGKILL" });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, "vifibnet: error: cannot create directory /proc/x: the file system does not allow it there\n");
  });

  test("the program: one line on stderr, status 1, nothing started", () => {
    const args = files("f", { peersDb: false });
    const r = spawnSync(process.execPath, [BIN("vifibnet"), ...args], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /^vifibnet: error: /);
  });
});

describe("naming", () => {
  test("server devices and logs", () => {
    assert.deepEqual([0, 1, 2].map(serverDevice), ["vifibnet", "vifibnet1", "vifibnet2"]);
    const pp = [{ port: 1194, proto: "udp" as const }, { port: 443, proto: "tcp-server" as const }, { port: 1195, proto: "udp" as const }];
    assert.deepEqual(pp.map((_, i) => serverLogName(pp, i)), ["vifibnet.server.udp.1194.log", "vifibnet.server.tcp-server.log", "vifibnet.server.udp.1195.log"]);
    assert.equal(serverLogName([pp[0]!], 0), "vifibnet.server.udp.log");
  });

  test("advertised addresses: one per server, tcp-server dialled as tcp-client", () => {
    assert.deepEqual(addressesFor("203.0.113.9", [{ port: 1194, proto: "udp" }, { port: 443, proto: "tcp-server" }]), [
      { ip: "203.0.113.9", port: 1194, proto: "udp" }, { ip: "203.0.113.9", port: 443, proto: "tcp-client" },
    ]);
  });
});

describe("children", () => {
  test("output to the log file, reopened elsewhere on request", async () => {
    const path = join(tmp, "out.log");
    const log = new LogFile(path);
    let ended: () => void = () => {};
    const done = new Promise<void>((r) => (ended = r));
    const c = new Child("talker", "/bin/sh", ["-c", "echo one; sleep 0.3; echo two >&2"], { log, onOutputEnd: () => ended() });
    await new Promise((r) => setTimeout(r, 150));
    renameSync(path, path + ".1"); // logrotate moves it away
    log.reopen();
    await c.exited;
    await done;
    log.close();
    assert.equal(readFileSync(path + ".1", "utf8"), "one\n");
    assert.equal(readFileSync(path, "utf8"), "two\n", "written to the new file after the reopen");
  });

  test("events on fd 3, stop with SIGTERM, SIGKILL when ignored", async () => {
    const events: string[] = [];
    const log = new LogFile(join(tmp, "child.log"));
    const c = new Child("echo", "/bin/sh", ["-c", "printf 'route-up 203.0.113.9\\nclient-connect 5/16\\n' >&3; trap '' TERM; sleep 30"], {
      log, onEvent: (type, arg) => events.push(`${type}|${arg}`),
    });
    for (let i = 0; i < 50 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(events, ["route-up|203.0.113.9", "client-connect|5/16"]);
    assert.ok(liveChildren().includes(c));
    const s = await c.stop(300);
    assert.equal(s.signal, "SIGKILL");
    assert.equal(c.running(), false);
    assert.ok(!liveChildren().includes(c));
  });

  test("a program that does not exist is an exit with an error", async () => {
    let ended = false;
    const c = new Child("none", join(tmp, "no-such-program"), [], { log: new LogFile(join(tmp, "child.log")), onOutputEnd: () => (ended = true) });
    const s = await c.exited;
    assert.ok(s.error);
    await new Promise((r) => setImmediate(r));
    assert.ok(ended, "no output will come: the log may be closed");
  });
});
