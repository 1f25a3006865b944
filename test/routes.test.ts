// /proc/net/ipv6_route reading: routes per tunnel, LAN peers (SPEC section 6),
// on a sample recorded from the kernel (fixtures/proc/README.md).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ipv6ToBits, parseIpv6Prefix } from "../lib/utils/address";
import { RTF_GATEWAY, RTF_LOCAL, countRoutes, lanPeers, parseIpv6Routes } from "../lib/utils/routes";

const SAMPLE = readFileSync(join(__dirname, "..", "..", "fixtures", "proc", "ipv6_route-node5.txt"), "utf8");
const NETWORK = parseIpv6Prefix("2001:db8:42::/48")!;
const OWN = "0000000000000101";
const p16 = (n: number): string => n.toString(2).padStart(16, "0");
const TUNNELS = Array.from({ length: 12 }, (_, i) => `client${i + 1}`);

test("parses every line of the kernel's format", () => {
  const routes = parseIpv6Routes(SAMPLE);
  assert.equal(routes.length, SAMPLE.trim().split("\n").length);
  const r = routes.find((x) => x.iface === "client1" && x.destLen === 64)!;
  assert.equal(r.dest, ipv6ToBits("2001:db8:42:a::"));
  assert.equal(r.nextHop, "fe80000000000000fcbf59fffebfdba0");
  assert.equal(r.metric, 1024);
  assert.equal(r.flags & RTF_GATEWAY, RTF_GATEWAY);
  const local = routes.find((x) => x.iface === "lo" && x.destLen === 128)!;
  assert.equal(local.dest, ipv6ToBits("::1"));
  assert.equal(local.flags >>> 0, 0x80200001);
  assert.ok((local.flags & RTF_LOCAL) !== 0);
  const unreachable = routes.filter((x) => x.destLen === 0 && x.iface === "lo");
  assert.equal(unreachable.length, 1);
  assert.equal(unreachable[0]!.metric, 0xffffffff);
});

test("skips lines that are not routes instead of failing", () => {
  const text = [
    "garbage",
    "",
    "20010db800420007000000000000000 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000003  client1", // 31 hex digits
    "20010db8004200070000000000000000 81 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000003  client1", // length 129
    "20010db8004200070000000000000000 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000003",
    "20010db8004200070000000000000000 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000003 client1",
  ].join("\n");
  assert.deepEqual(parseIpv6Routes(text).map((r) => r.iface), ["client1"]);
});

test("counts babel routes inside the network per tunnel interface", () => {
  const counts = countRoutes(SAMPLE, NETWORK, TUNNELS);
  assert.equal(counts.get("client1"), 3, "7::/128, 9::/128, a::/64; not 2001:db8:43::/48 nor fe80/ff00");
  assert.equal(counts.get("client2"), 2);
  assert.equal(counts.get("client3"), 1);
  assert.equal(counts.get("client4"), 0, "every interface asked for is in the map");
  assert.equal(counts.size, 12);
  assert.equal(counts.has("vifibnet"), false, "only the interfaces asked for");
  assert.equal(countRoutes(SAMPLE, NETWORK, ["vifibnet"]).get("vifibnet"), 2, "our /64 and our address");
  assert.equal(countRoutes(SAMPLE, NETWORK, []).size, 0);
});

test("a route shorter than the network, or cloned, is not a route inside it", () => {
  const line = (dest: string, len: string, flags: string, iface: string): string =>
    `${dest} ${len} ${"0".repeat(32)} 00 ${"0".repeat(32)} 00000400 00000001 00000000 ${flags} ${iface}`;
  const text = [
    line("20010db8004200000000000000000000", "20", "00000003", "client1"), // 2001:db8:42::/32: bits match, too short
    line("00000000000000000000000000000000", "00", "00000003", "client1"), // default route through a tunnel
    line("20010db8004200070000000000000001", "80", "01000003", "client1"), // RTF_CACHE clone
    line("20010db8004200070000000000000000", "30", "00000003", "client2"), // the network itself
  ].join("\n");
  const counts = countRoutes(text, NETWORK, ["client1", "client2"]);
  assert.deepEqual([...counts], [["client1", 0], ["client2", 1]]);
});

test("peers reached over a LAN interface are LAN peers", () => {
  assert.deepEqual(lanPeers(SAMPLE, NETWORK, ["eth0"], OWN), [p16(0x12), p16(0x13)]);
  assert.deepEqual(lanPeers(SAMPLE, NETWORK, [], OWN), [], "no -i: no LAN");
  assert.deepEqual(lanPeers(SAMPLE, NETWORK, ["eth1"], OWN), []);
  // Routes through tunnels are not LAN routes; our own /64 on vifibnet neither.
  assert.deepEqual(lanPeers(SAMPLE, NETWORK, ["client1", "vifibnet"], OWN), [p16(7), p16(9), p16(0xa)].sort());
});

test("LAN: our own prefix, local routes, hosts and the network route are not peers", () => {
  const line = (dest: string, len: string, flags: string): string =>
    `${dest} ${len} ${"0".repeat(32)} 00 fe800000000000000000000000000001 00000400 00000001 00000000 ${flags}     eth0`;
  const text = [
    line("20010db8004200050000000000000000", "40", "00000003"), // our own /64 seen back on the LAN
    line("20010db8004200050000000000000000", "80", "00000003"), // our own address
    line("20010db8004200200000000000000000", "80", "80200001"), // a local address of ours
    line("20010db8004200210000000000000001", "80", "00000003"), // a host, not a node address
    line("20010db8004200000000000000000000", "30", "00000003"), // the whole network
    line("20010db8004200220000000000000000", "80", "00000201"), // rejected
    line("20010db8004200230000000000000000", "80", "00000003"), // a node: 23
    line("20010db8004200230000000000000000", "40", "00000003"), // same node, its /64: once
  ].join("\n");
  assert.deepEqual(lanPeers(text, NETWORK, ["eth0"], OWN), [p16(0x23)]);
});
