import assert from "node:assert/strict";
import { test } from "node:test";
import { checkPrefixLength, parsePrefixArgument, planAllocation } from "../lib/registry/prefix";
import { parseIpv6Prefix } from "../lib/utils/address";

/** Applies plans to a model of the vpn table, as the database does. */
function allocateMany(count: number, length: number): { allocated: string[]; free: Set<string> } {
  const free = new Set([""]);
  const allocated: string[] = [];
  for (let i = 0; i < count; i++) {
    const plan = planAllocation([...free], length);
    assert.ok(plan, `allocation ${i} failed`);
    for (const p of plan.splits) {
      free.delete(p);
      free.add(p + "1");
      free.add(p + "0");
    }
    free.delete(plan.prefix);
    allocated.push(plan.prefix);
  }
  return { allocated, free };
}

test("the first three /16 allocations are 0…000, 0…001, 0…010", () => {
  const { allocated } = allocateMany(3, 16);
  assert.deepEqual(allocated, ["0000000000000000", "0000000000000001", "0000000000000010"]);
});

test("allocation splits the longest free prefix and leaves one free row per length", () => {
  const plan = planAllocation([""], 16)!;
  assert.equal(plan.from, "");
  assert.equal(plan.splits.length, 16);
  assert.equal(plan.prefix, "0".repeat(16));
  const { free } = allocateMany(1, 16);
  assert.deepEqual([...free].map((p) => p.length).sort((a, b) => a - b), [...Array(16).keys()].map((i) => i + 1));
});

test("allocations never overlap and fill the space in order", () => {
  const { allocated } = allocateMany(256, 8);
  assert.equal(new Set(allocated).size, 256);
  assert.deepEqual(allocated, [...allocated].sort());
  assert.equal(planAllocation([], 8), null, "exhausted space gives null");
});

test("free prefixes longer than asked are skipped; ties take the smallest", () => {
  assert.equal(planAllocation(["0000000000000000001"], 16), null);
  assert.equal(planAllocation(["11", "01"], 2)!.prefix, "01");
  assert.equal(planAllocation(["1", "01"], 2)!.prefix, "01");
});

test("prefix length must fit the network", () => {
  assert.equal(checkPrefixLength(16, 48), null);
  assert.equal(checkPrefixLength(16, 112), null);
  assert.match(checkPrefixLength(16, 113)!, /does not fit/);
  assert.match(checkPrefixLength(0, 48)!, /positive/);
});

test("an operator's prefix: the CN, the bit string, or an IPv6 address or subnet of the node (with the network)", () => {
  const network = parseIpv6Prefix("2001:db8:42::/48")!;
  assert.deepEqual(parsePrefixArgument("5/16", null), { prefix: "0000000000000101" });
  assert.deepEqual(parsePrefixArgument("0000000000000101", null), { prefix: "0000000000000101" });
  const inside = (text: string) => parsePrefixArgument(text, network) as { inside: string; length: number };
  assert.equal(inside("2001:db8:42:5::").inside.slice(0, 16), "0000000000000101");
  assert.equal(inside("2001:db8:42:5::/64").length, 16);
  assert.equal(inside("2001:0db8:0042:0005:0000:0000:0000:0001").length, 80, "any spelling, any address of the subnet");
  assert.match(parsePrefixArgument("2001:db8:42:5::", null) as string, /needs the network: give --ca/);
  assert.match(parsePrefixArgument("2001:db8:43:5::/64", network) as string, /not inside the network/);
  assert.match(parsePrefixArgument("2001:db8:42::/40", network) as string, /not inside the network/);
  assert.match(parsePrefixArgument("70000/16", null) as string, /not a node's CN/);
  assert.match(parsePrefixArgument("0/0", null) as string, /not a node's CN/);
  assert.match(parsePrefixArgument("node5", null) as string, /not a prefix: give the CN/);
  assert.match(parsePrefixArgument("2001:db8:zz::", network) as string, /not an IPv6 address or subnet/);
});
