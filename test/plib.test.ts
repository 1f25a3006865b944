import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { RETIRING_RXCOST, babelRestoreLines, babelRetireLines } from "../lib/babel-control";
import { OpenvpnCommon, babeldArgv, openvpnClientArgv, openvpnServerArgv } from "../lib/plib";
import { networkFromSerial } from "../lib/utils/address";
import { BIN } from "../harness/paths";

const c: OpenvpnCommon = {
  hello: 15, verbose: 3, ca: "/etc/vifib/ca.pem", cert: "/etc/vifib/cert.crt", openvpnArgs: ["--key", "/etc/vifib/cert.key"],
  hookDir: "/opt/vifibnet/bin", eventFd: 3, legacy: true,
};

/** The value following `flag` in argv. */
const after = (argv: string[], flag: string): string | undefined => argv[argv.indexOf(flag) + 1];

test("common OpenVPN options are the legacy's, then the legacy peers' allowances, user arguments before --ca/--cert", () => {
  const argv = openvpnClientArgv(c, "client1", "0000000000000101", []);
  assert.deepEqual(argv.slice(0, 25), [
    "--dev-type", "tap", "--persist-tun", "--persist-key", "--script-security", "2", "--user", "nobody", "--group", "nogroup", "--ping-exit", "60", "--verb", "3",
    "--tls-cert-profile", "insecure", "--tls-version-min", "1.0", "--data-ciphers", "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305:?BF-CBC",
    "--providers", "legacy", "default", "--key", "/etc/vifib/cert.key",
  ]);
  assert.equal(after(argv, "--ca"), "/etc/vifib/ca.pem");
  assert.equal(after(argv, "--cert"), "/etc/vifib/cert.crt");
  // What a tunnel negotiated is logged from --verb 2: never below, whatever -v.
  for (const [verbose, verb] of [[0, "2"], [1, "2"], [2, "2"], [5, "5"]] as const)
    assert.equal(after(openvpnClientArgv({ ...c, verbose }, "client1", "0000000000000101", []), "--verb"), verb, `-v ${verbose}`);
  // The user's profile comes last, so it wins over the one accepting SHA-1 peers.
  const strict = openvpnClientArgv({ ...c, openvpnArgs: ["--tls-cert-profile", "preferred"] }, "client1", "0000000000000101", []);
  assert.equal(strict[strict.lastIndexOf("--tls-cert-profile") + 1], "preferred");
});

test("--no-legacy: none of the allowances, OpenVPN's defaults", () => {
  const server = openvpnServerArgv({ ...c, legacy: false }, { dev: "vifibnet", port: 1194, proto: "udp", dh: "/d", maxClients: 2, address: "2001:db8:42:5::/64", revokedFile: null });
  const client = openvpnClientArgv({ ...c, legacy: false }, "client1", "0000000000000101", []);
  for (const argv of [server, client])
    for (const flag of ["--tls-cert-profile", "--tls-version-min", "--data-ciphers", "--providers"]) assert.ok(!argv.includes(flag), flag);
});

test("server: tls-server mode with its hooks, port and proto", () => {
  const argv = openvpnServerArgv(c, { dev: "vifibnet", port: 1194, proto: "udp", dh: "/etc/vifib/dh2048.pem", maxClients: 20, address: "2001:db8:42:5::/64", revokedFile: null });
  assert.ok(argv.includes("--tls-server"));
  assert.equal(after(argv, "--mode"), "server");
  assert.equal(after(argv, "--dev"), "vifibnet");
  assert.equal(after(argv, "--max-clients"), "20");
  assert.equal(after(argv, "--port"), "1194");
  assert.equal(after(argv, "--proto"), "udp6", "dual-stack: IPv6 and IPv4 clients");
  assert.equal(after(argv, "--up"), "/opt/vifibnet/bin/ovpn-server 3 2001:db8:42:5::/64");
  assert.equal(after(argv, "--client-connect"), "/opt/vifibnet/bin/ovpn-server 3");
  assert.equal(after(argv, "--client-disconnect"), "/opt/vifibnet/bin/ovpn-server 3");
  assert.ok(argv.includes("--explicit-exit-notify"), "its UDP clients reconnect at once when it restarts");
  assert.ok(!argv.includes("--setenv"), "no revocation list");
  const enforcing = openvpnServerArgv(c, { dev: "vifibnet", port: 1194, proto: "udp", dh: "/d", maxClients: 2, address: "2001:db8:42:5::/64", revokedFile: "/var/lib/vifibnet/vifibnet.revoked" });
  assert.deepEqual(enforcing.slice(enforcing.indexOf("--setenv")), ["--setenv", "vifibnet_revoked", "/var/lib/vifibnet/vifibnet.revoked"]);
});

test("client: one --remote per address, tcp-server dialled as tcp-client", () => {
  const argv = openvpnClientArgv(c, "client4", "0000000000000101", [
    { ip: "198.51.100.7", port: 1194, proto: "udp" },
    { ip: "198.51.100.7", port: 1000, proto: "tcp-server" },
    { ip: "198.51.100.8", port: 443, proto: "tcp-client" },
  ]);
  assert.deepEqual(argv.slice(argv.indexOf("--remote")), [
    "--remote", "198.51.100.7", "1194", "udp", "--remote", "198.51.100.7", "1000", "tcp-client", "--remote", "198.51.100.8", "443", "tcp-client",
  ]);
  assert.ok(argv.includes("--nobind") && argv.includes("--client"));
  assert.equal(after(argv, "--dev"), "client4");
  assert.equal(after(argv, "--route-up"), "/opt/vifibnet/bin/ovpn-client 3");
});

test("server: a tcp-server listens dual-stack too", () => {
  const argv = openvpnServerArgv(c, { dev: "vifibnet1", port: 443, proto: "tcp-server", dh: "/d", maxClients: 2, address: "2001:db8:42:5::/64", revokedFile: null });
  assert.equal(after(argv, "--proto"), "tcp6-server");
  assert.ok(!argv.includes("--explicit-exit-notify"), "OpenVPN takes it for UDP only");
});

test("client: only the node it was meant for, by the CN of its prefix, whatever the user passes", () => {
  const argv = openvpnClientArgv({ ...c, openvpnArgs: ["--verify-x509-name", "x", "name"] }, "client1", "0000000000000101", []);
  const at = argv.lastIndexOf("--verify-x509-name");
  assert.deepEqual(argv.slice(at, at + 3), ["--verify-x509-name", "5/16", "name"]);
  assert.ok(at > argv.indexOf("x"), "after the user's arguments");
  assert.deepEqual(after(openvpnClientArgv(c, "client1", "1".repeat(20), []), "--verify-x509-name"), "1048575/20");
});

test("babeld: legacy filters, own pid and state files, every interface", () => {
  const argv = babeldArgv({
    network: networkFromSerial(0x120010db80042n), address: "2001:db8:42:5::", interfaces: ["vifibnet", "client1", "eth1"],
    wireless: true, hello: 4, verbose: 2, stateFile: "/var/lib/vifibnet/vifibnet.babeld.state", pidFile: "/var/lib/vifibnet/babeld.pid",
    controlSocket: "/var/lib/vifibnet/vifibnet.babeld.sock", logFile: "/var/log/vifibnet.babeld.log",
  });
  assert.deepEqual(argv, [
    "-C", "redistribute local ip 2001:db8:42:5::", "-C", "redistribute local deny", "-C", "in ip 2001:db8:42::/48", "-C", "in deny",
    "-d", "2", "-h", "4", "-H", "4", "-S", "/var/lib/vifibnet/vifibnet.babeld.state", "-I", "/var/lib/vifibnet/babeld.pid",
    "-G", "/var/lib/vifibnet/vifibnet.babeld.sock", "-L", "/var/log/vifibnet.babeld.log", "-s", "-w", "vifibnet", "client1", "eth1",
  ]);
  const plain = babeldArgv({
    network: networkFromSerial(0x120010db80042n), address: "2001:db8:42:5::", interfaces: ["vifibnet"],
    wireless: false, hello: 4, verbose: 2, stateFile: "/s", pidFile: "/p", controlSocket: null,
  });
  assert.ok(!plain.includes("-G") && !plain.includes("-w") && !plain.includes("-L"));
});

test("babel requests: retiring a tunnel re-declares it costly, restoring gives the defaults back", () => {
  assert.deepEqual(babelRetireLines("client3"), ["flush interface client3", `interface client3 rxcost ${RETIRING_RXCOST} link-quality true`]);
  assert.deepEqual(babelRestoreLines("client3", false), ["interface client3 rxcost 96 link-quality false"]);
  assert.deepEqual(babelRestoreLines("client3", true), ["interface client3 rxcost 256 link-quality true"]);
});

/** Runs a hook as OpenVPN would, with the event socket on fd 3; returns what it wrote there. */
function runHook(name: string, env: Record<string, string>, args: string[]): Promise<{ code: number | null; events: string }> {
  return new Promise((resolve) => {
    const child = spawn(BIN(name), args, { env: { PATH: process.env["PATH"] ?? "", ...env }, stdio: ["ignore", "ignore", "ignore", "pipe"] });
    let events = "";
    const fd3 = child.stdio[3] as NodeJS.ReadableStream;
    fd3.setEncoding("utf8");
    fd3.on("data", (s: string) => (events += s));
    child.on("close", (code) => resolve({ code, events }));
  });
}

test("hooks report events on the daemon's socket and push the client its address", async () => {
  const dir = mkdtempSync(join(tmpdir(), "vifibnet-hooks-"));
  try {
    const pushFile = join(dir, "client-connect.conf");
    let r = await runHook("ovpn-server", { script_type: "up", dev: "vifibnet-none" }, ["3", "2001:db8:42:5::/64"]);
    assert.notEqual(r.code, 0, "no such interface: the up hook fails");
    r = await runHook("ovpn-server", { script_type: "client-connect", common_name: "5/16", trusted_ip: "198.51.100.9" }, ["3", pushFile]);
    assert.deepEqual(r, { code: 0, events: "client-connect 5/16 198.51.100.9\n" });
    assert.equal(readFileSync(pushFile, "utf8"), 'push "setenv-safe external_ip 198.51.100.9"\n');
    r = await runHook("ovpn-server", { script_type: "client-disconnect", common_name: "5/16", trusted_ip: "198.51.100.9" }, ["3"]);
    assert.deepEqual(r, { code: 0, events: "client-disconnect 5/16 198.51.100.9\n" });
    r = await runHook("ovpn-client", { script_type: "route-up", OPENVPN_external_ip: "198.51.100.3", trusted_ip: "198.51.100.9" }, ["3"]);
    assert.deepEqual(r, { code: 0, events: "route-up 198.51.100.3 198.51.100.9\n" });
    r = await runHook("ovpn-client", { script_type: "route-up", trusted_ip6: "2001:db8::9" }, ["3"]);
    assert.deepEqual(r, { code: 0, events: "route-up  2001:db8::9\n" }, "no external_ip pushed: an empty field");
    // An IPv6 client (OpenVPN sets trusted_ip6 instead) connects, and is told no address.
    rmSync(pushFile);
    r = await runHook("ovpn-server", { script_type: "client-connect", common_name: "6/16", trusted_ip6: "2001:db8:ffff::12" }, ["3", pushFile]);
    assert.deepEqual(r, { code: 0, events: "client-connect 6/16 2001:db8:ffff::12\n" });
    assert.equal(existsSync(pushFile), false, "nothing pushed");
    // A revoked peer: refused (OpenVPN drops a client whose client-connect fails), reported.
    const revoked = join(dir, "vifibnet.revoked");
    writeFileSync(revoked, "7/16\n5/16\n");
    r = await runHook("ovpn-server", { script_type: "client-connect", common_name: "5/16", trusted_ip: "198.51.100.9", vifibnet_revoked: revoked }, ["3", pushFile]);
    assert.deepEqual(r, { code: 1, events: "client-refused 5/16 198.51.100.9\n" });
    assert.equal(existsSync(pushFile), false, "nothing pushed to a revoked peer");
    r = await runHook("ovpn-server", { script_type: "client-connect", common_name: "5/1", trusted_ip: "198.51.100.9", vifibnet_revoked: revoked }, ["3", pushFile]);
    assert.deepEqual(r, { code: 0, events: "client-connect 5/1 198.51.100.9\n" }, "whole names only");
    r = await runHook("ovpn-server", { script_type: "client-connect", common_name: "6/16", trusted_ip: "198.51.100.9", vifibnet_revoked: join(dir, "none") }, ["3", pushFile]);
    assert.equal(r.code, 0, "no list (yet): everyone with a certificate of the CA");
    r = await runHook("ovpn-client", { script_type: "route-up" }, ["3;touch " + join(dir, "x")]);
    assert.equal(r.code, 1, "a descriptor that is not a number is refused");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
