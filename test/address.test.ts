import assert from "node:assert/strict";
import { test } from "node:test";
import {
  bitsToIpv6, cnToPrefix, ipv6ToBits, networkFromSerial, nodeAddress, parseAddressList, parseIpv6Prefix,
  prefixToCn, serialFromNetwork,
} from "../lib/utils/address";

test("network prefix from the CA serial drops the leading 1 bit", () => {
  const net = networkFromSerial(0x120010db80042n);
  assert.equal(net.length, 48);
  assert.equal(bitsToIpv6(net), "2001:db8:42::");
  assert.equal(serialFromNetwork(net), 0x120010db80042n);
  assert.equal(networkFromSerial(1n), "");
  assert.throws(() => networkFromSerial(0n), /positive/);
});

test("CN is the prefix as decimal over its length, both ways", () => {
  assert.equal(prefixToCn("0000000000000101"), "5/16");
  assert.equal(prefixToCn("0000000000000000"), "0/16");
  assert.equal(prefixToCn("1111111111111111"), "65535/16");
  assert.equal(cnToPrefix("5/16"), "0000000000000101");
  assert.equal(cnToPrefix("65536/16"), null);
  assert.equal(cnToPrefix("x/16"), null);
});

test("IPv6 text to bits accepts every valid spelling", () => {
  const full = ipv6ToBits("2001:0db8:0042:0005:0000:0000:0000:0000");
  assert.equal(full, ipv6ToBits("2001:db8:42:5::"));
  assert.equal(ipv6ToBits("::")!, "0".repeat(128));
  assert.equal(ipv6ToBits("::ffff:1.2.3.4")!.slice(96), "00000001000000100000001100000100");
  assert.equal(ipv6ToBits("1.2.3.4"), null);
  assert.equal(ipv6ToBits("2001:db8::g"), null);
  assert.equal(ipv6ToBits("fe80::1%eth0"), ipv6ToBits("fe80::1"));
  assert.equal(ipv6ToBits("1:2:3:4:5:6:7::")!.slice(96), "0000000000000111" + "0".repeat(16));
  assert.equal(ipv6ToBits("::1.2.3.4"), ipv6ToBits("::102:304"));
  assert.equal(ipv6ToBits("1:2:3:4:5:6:1.2.3.4"), ipv6ToBits("1:2:3:4:5:6:102:304"));
  for (const bad of [":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "::ffff:1.2.3.256", "::1.2.3", "1.2.3.4::",
    ":1::", "1::2:", "%eth0", "::%", "g::", " ::1", "::01.2.3.4", "1:2:3:4:5:6:7:8::"]) {
    assert.equal(ipv6ToBits(bad), null, bad);
  }
});

test("the IPv6 parser agrees with Node's on every form it is given", async () => {
  const { isIPv6 } = await import("node:net");
  const samples = ["::", "::1", "1::", "2001:db8:42::5", "2001:0db8:0042:0005:0000:0000:0000:0000", "::ffff:10.0.0.1", "1:2:3:4:5:6:7:8",
    "1::8", "1:2::7:8", "fe80::1%2", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5::1.2.3.4", "abcd:ef01::", "ABCD::EF01", "::0:0:0:0:0:0:0",
    "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "::1.2.3.04", "x::", "1:2", "", ":", "1.2.3.4", "::1.2.3.4.5"];
  for (const s of samples) assert.equal(ipv6ToBits(s) !== null, isIPv6(s), s);
});

test("node address is network + prefix, zero padded", () => {
  const net = networkFromSerial(0x120010db80042n);
  assert.equal(nodeAddress(net, "0000000000000101"), "2001:db8:42:5::");
  assert.equal(nodeAddress(net, "1111111111111111"), "2001:db8:42:ffff::");
  assert.equal(bitsToIpv6("0".repeat(128)), "::");
  assert.equal(bitsToIpv6(ipv6ToBits("1:0:0:2:0:0:0:3")!), "1:0:0:2::3");
});

test("IPv6 prefixes parse only when the host bits are zero", () => {
  assert.equal(parseIpv6Prefix("2001:db8:42::/48")!.length, 48);
  assert.equal(parseIpv6Prefix("2001:db8:42::1/48"), null);
  assert.equal(parseIpv6Prefix("2001:db8:42::/129"), null);
  assert.equal(parseIpv6Prefix("2001:db8:42::"), null);
});

test("address lists: well-formed items only", () => {
  assert.deepEqual(parseAddressList("198.51.100.7,1194,udp;198.51.100.7,443,tcp-client"), [
    { ip: "198.51.100.7", port: 1194, proto: "udp" },
    { ip: "198.51.100.7", port: 443, proto: "tcp-client" },
  ]);
  assert.deepEqual(parseAddressList("2001:db8::1,1000,tcp-server"), [{ ip: "2001:db8::1", port: 1000, proto: "tcp-server" }]);
  for (const bad of [
    "", "198.51.100.7,1194,udp,--up", "198.51.100.7,1194", "198.51.100.7,11a4,udp", "198.51.100.7,0,udp",
    "198.51.100.7,65536,udp", "198.51.100.7,1194,tcp", "example.com,1194,udp", "--up,1194,udp",
    "198.51.100.7,1194,udp;", "198.51.100.7, 1194,udp", "198.51.100.7,+1194,udp",
    Array(17).fill("198.51.100.7,1194,udp").join(";"),
  ]) assert.equal(parseAddressList(bad), null, bad);
});

test("address lists: only addresses another host can reach", () => {
  for (const ip of ["0.0.0.0", "0.1.2.3", "127.0.0.1", "127.1.2.3", "169.254.1.1", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255", "::", "::1", "::127.0.0.1", "::ffff:127.0.0.1", "::ffff:0.0.0.0", "::ffff:224.0.0.1", "fe80::1", "febf::1",
    "ff02::1", "ff05::1:3"]) {
    assert.equal(parseAddressList(`${ip},1194,udp`), null, ip);
    assert.equal(parseAddressList(`198.51.100.7,1194,udp;${ip},22,tcp-client`), null, `${ip} after a good item`);
  }
  for (const ip of ["198.51.100.7", "10.0.0.1", "192.168.1.1", "172.16.0.1", "100.64.0.1", "2001:db8::1", "fd00::1", "fec0::1", "::ffff:198.51.100.7"])
    assert.notEqual(parseAddressList(`${ip},1194,udp`), null, ip);
});

