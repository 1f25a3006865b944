// Self-healing of the node address (lib/daemon/address-keeper.ts): what to
// repair from /proc/net/if_inet6 and the interfaces' up flags, and the
// service that looks when the kernel reports a change (and every few hellos).

import assert from "node:assert/strict";
import { test } from "node:test";
import { AddressKeeper, SAFETY_HELLOS, WATCH_DELAY_MS, parseIfInet6, repairs } from "../lib/daemon/address-keeper";
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

test("the keeper looks when the kernel reports a change (a burst is one look), and every few hellos anyway; repairs are counted", async () => {
  const timers = new ManualTimers();
  let table = IF_INET6.split("\n").filter((l) => !l.startsWith("20010db8")).join("\n");
  const ran: string[] = [];
  let report: () => void = () => {};
  let watching = false;
  const k = new AddressKeeper("2001:db8:42:5::", "2001:db8:42:5::/64", 2, {
    interfaces: () => ["vifibnet"], readIfInet6: () => table, isUp: () => true, timers, now: timers.now, logger: createLogger(0, () => {}),
    ip: async (args) => {
      ran.push(args.join(" "));
      table = IF_INET6;
    },
    watch: { start: (changed) => ((report = changed), (watching = true)), stop: async () => void (watching = false) },
  });
  k.start();
  assert.ok(watching);
  assert.deepEqual(timers.delays(), [2_000 * SAFETY_HELLOS], "idle: one look every few hellos, nothing else");
  // The address is deleted: the kernel reports it (the link's and the address's events together).
  report();
  report();
  report();
  assert.deepEqual(timers.delays(), [WATCH_DELAY_MS, 2_000 * SAFETY_HELLOS]);
  timers.fireNext();
  await settle();
  assert.deepEqual(ran, ["-6 addr replace 2001:db8:42:5::/64 dev vifibnet"]);
  assert.equal(k.restores, 1);
  assert.equal(k.lastRestore, WATCH_DELAY_MS);
  // Our own repair is reported too: one more look, nothing to do.
  report();
  timers.fireNext();
  await settle();
  assert.equal(ran.length, 1);
  // A change no report told of is found by the safety look.
  table = "";
  timers.advance(2_000 * SAFETY_HELLOS);
  await settle();
  assert.equal(ran.length, 2);
  assert.equal(k.restores, 2);
  await k.stop();
  assert.equal(watching, false);
  assert.deepEqual(timers.delays(), []);
  report();
  assert.deepEqual(timers.delays(), [], "stopped: reports are ignored");
});
