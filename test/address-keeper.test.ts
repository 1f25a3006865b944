// Self-healing of the node address (lib/daemon/address-keeper.ts): what to
// repair from /proc/net/if_inet6 and the interfaces' up flags, and the
// service that runs `ip` every quarter hello.

import assert from "node:assert/strict";
import { test } from "node:test";
import { AddressKeeper, parseIfInet6, repairs } from "../lib/daemon/address-keeper";
import { ipv6ToBits } from "../lib/utils/address";
import { createLogger } from "../lib/utils/log";
import { ManualTimers, settle } from "./helpers/manual-timers";

// Lines of /proc/net/if_inet6 as Linux 6.1 writes them.
const IF_INET6 = [
  "00000000000000000000000000000001 01 80 10 80       lo",
  "20010db8004200050000000000000000 05 40 00 80 vifibnet",
  "fe800000000000004c3f58fffe0b2a11 05 40 20 80 vifibnet",
  "fe800000000000004c3f58fffe0b2a12 06 40 20 80 vifibnet1",
].join("\n") + "\n";
const NODE = ipv6ToBits("2001:db8:42:5::")!;

test("/proc/net/if_inet6: address, prefix length, interface", () => {
  const a = parseIfInet6(IF_INET6 + "garbage line\n");
  assert.equal(a.length, 4);
  assert.deepEqual(a[1], { iface: "vifibnet", address: NODE, prefixLength: 64 });
});

test("repairs: a missing address, an interface down, nothing for one that does not exist", () => {
  const up = (i: string): boolean | null => ({ vifibnet: true, vifibnet1: false } as Record<string, boolean>)[i] ?? null;
  assert.deepEqual(repairs(["vifibnet"], NODE, IF_INET6, up), [], "all well");
  assert.deepEqual(repairs(["vifibnet", "vifibnet1", "vifibnet2"], NODE, IF_INET6, up), [{ iface: "vifibnet1", up: true, address: true }]);
  const gone = IF_INET6.split("\n").filter((l) => !l.startsWith("20010db8")).join("\n");
  assert.deepEqual(repairs(["vifibnet"], NODE, gone, up), [{ iface: "vifibnet", up: false, address: true }]);
});

test("the keeper looks every quarter hello and puts back what is missing, counted", async () => {
  const timers = new ManualTimers();
  let table = IF_INET6.split("\n").filter((l) => !l.startsWith("20010db8")).join("\n");
  const ran: string[] = [];
  const k = new AddressKeeper("2001:db8:42:5::", "2001:db8:42:5::/64", 2, {
    interfaces: () => ["vifibnet"], readIfInet6: () => table, isUp: () => true, timers, now: timers.now, logger: createLogger(0, () => {}),
    ip: async (args) => {
      ran.push(args.join(" "));
      table = IF_INET6;
    },
  });
  k.start();
  assert.deepEqual(timers.delays(), [500]);
  timers.fireNext();
  await settle();
  assert.deepEqual(ran, ["-6 addr replace 2001:db8:42:5::/64 dev vifibnet"]);
  assert.equal(k.restores, 1);
  timers.fireNext();
  await settle();
  assert.equal(ran.length, 1, "nothing more to do");
  await k.stop();
  assert.deepEqual(timers.delays(), []);
});
