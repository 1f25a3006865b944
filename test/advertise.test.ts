// Which learned address a node advertises (lib/advertise.ts, issue 9 item 4):
// a peer's report alone never makes it, unless that peer is the only one
// ever reached and two tunnel refreshes went by; two peers agreeing do;
// nothing no other host could reach ever does. And the daemon's advertiser
// around it (lib/daemon/advertiser.ts): --ip wins, then UPnP, then peers.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Learning, NOTHING_LEARNT, decideAddress, forgetPeer, reportAddress } from "../lib/advertise";
import { Advertiser } from "../lib/daemon/advertiser";
import { createLogger } from "../lib/utils/log";
import { ManualTimers } from "./helpers/manual-timers";

const p = (n: number): string => n.toString(2).padStart(16, "0");
const WAIT = 10_000;

describe("reportAddress", () => {
  test("drops a report of an address no node can be reached at (remoteUnicastProblem)", () => {
    for (const ip of ["0.0.0.0", "0.1.2.3", "127.0.0.1", "169.254.1.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
      "::", "::1", "::ffff:127.0.0.1", "::ffff:0.0.0.0", "::127.0.0.1", "fe80::1", "fe80::1%eth0", "ff02::1", "not an address", "", "1.2.3"])
      assert.equal(reportAddress(NOTHING_LEARNT, p(1), ip, 0), NOTHING_LEARNT, ip);
  });
  test("keeps public, private and documentation unicast", () => {
    for (const ip of ["198.51.100.7", "203.0.113.66", "10.0.0.1", "192.168.1.2", "8.8.8.8", "2001:db8::7", "2a01:e0a::1", "fd00::1", "::ffff:198.51.100.7"])
      assert.equal(reportAddress(NOTHING_LEARNT, p(1), ip, 0).reports.get(p(1))?.ip, ip, ip);
  });
});

describe("decideAddress", () => {
  const report = (l: Learning, n: number, ip: string, at: number): Learning => reportAddress(l, p(n), ip, at);

  test("one peer's word is not enough: the first peer said 203.0.113.66, a second disagrees", () => {
    let l = report(NOTHING_LEARNT, 1, "203.0.113.66", 0);
    assert.deepEqual(decideAddress(l, 1, WAIT), { ip: null, why: "waiting", until: WAIT });
    l = report(l, 2, "198.51.100.13", 5);
    assert.deepEqual(decideAddress(l, WAIT * 5, WAIT), { ip: null, why: "unconfirmed" }, "two peers reached: no lone-peer rule any more");
    l = report(l, 3, "198.51.100.13", 6);
    assert.deepEqual(decideAddress(l, 7, WAIT), { ip: "198.51.100.13", why: "agreed", peers: 2 });
  });

  test("two different peers are needed: one peer saying it twice is one report", () => {
    let l = report(NOTHING_LEARNT, 1, "198.51.100.13", 0);
    l = report(l, 2, "198.51.100.99", 1);
    l = report(l, 1, "198.51.100.13", 2);
    assert.equal(decideAddress(l, 3, WAIT).ip, null);
  });

  test("a lone peer is believed after the wait, while its tunnel is up", () => {
    const l = report(NOTHING_LEARNT, 1, "198.51.100.13", 1_000);
    assert.equal(decideAddress(l, 1_000 + WAIT - 1, WAIT).ip, null);
    assert.deepEqual(decideAddress(l, 1_000 + WAIT, WAIT), { ip: "198.51.100.13", why: "lone-peer" });
    assert.deepEqual(decideAddress(forgetPeer(l, p(1)), 1_000 + WAIT, WAIT), { ip: null, why: "no-report" }, "its tunnel closed");
  });

  test("never an address that is not global unicast, even when every peer says it", () => {
    let l = report(NOTHING_LEARNT, 1, "127.0.0.1", 0);
    l = report(l, 2, "127.0.0.1", 0);
    l = report(l, 3, "0.0.0.0", 0);
    assert.equal(l.reports.size, 0, "dropped on arrival");
    assert.deepEqual(decideAddress(l, WAIT * 9, WAIT), { ip: null, why: "no-report" });
  });

  test("the most agreed address wins; among equals the one advertised stays", () => {
    let l = NOTHING_LEARNT;
    [[1, "198.51.100.1"], [2, "198.51.100.1"], [3, "198.51.100.2"], [4, "198.51.100.2"]].forEach(([n, ip], i) => (l = report(l, n as number, ip as string, i)));
    assert.equal(decideAddress(l, 9, WAIT, "198.51.100.2").ip, "198.51.100.2");
    assert.equal(decideAddress(l, 9, WAIT, "198.51.100.1").ip, "198.51.100.1");
    l = report(l, 5, "198.51.100.1", 9);
    assert.deepEqual(decideAddress(l, 9, WAIT, "198.51.100.2"), { ip: "198.51.100.1", why: "agreed", peers: 3 });
  });
});

describe("Advertiser", () => {
  const pp = [{ port: 1194, proto: "udp" as const }, { port: 443, proto: "tcp-server" as const }];
  function make(fixed?: Array<{ ip: string; port: number; proto: "udp" }>) {
    const timers = new ManualTimers();
    const changes: string[] = [];
    const a = new Advertiser(fixed, pp, 5, { discover: async () => null, timers, now: timers.now, logger: createLogger(0, () => {}), onChange: (l) => changes.push(l) });
    a.start();
    return { a, timers, changes };
  }

  test("--ip is what is advertised, whatever peers say", async () => {
    const { a, changes } = make([{ ip: "198.51.100.5", port: 1194, proto: "udp" }]);
    a.report(p(1), "203.0.113.66");
    a.report(p(2), "203.0.113.66");
    assert.deepEqual(changes, ["198.51.100.5,1194,udp"]);
    assert.equal(a.status().source, "ip");
  });

  test("no gateway: two agreeing peers make the address, one item per server", async () => {
    const { a, changes } = make();
    await new Promise((r) => setImmediate(r));
    a.report(p(1), "203.0.113.66");
    assert.deepEqual([a.current(), a.status().source, a.status().decision], [null, "none", "waiting"]);
    a.report(p(2), "198.51.100.13");
    a.report(p(3), "198.51.100.13");
    assert.deepEqual(changes, ["198.51.100.13,1194,udp;198.51.100.13,443,tcp-client"]);
    assert.equal(a.status().source, "peers");
    assert.deepEqual(a.status().reports.map((r) => r.ip), ["203.0.113.66", "198.51.100.13", "198.51.100.13"]);
  });

  test("a lone peer: believed two tunnel refreshes after its report, by a timer", async () => {
    const { a, timers, changes } = make();
    await new Promise((r) => setImmediate(r));
    a.report(p(1), "198.51.100.13");
    assert.deepEqual(timers.delays(), [2 * 5_000]);
    assert.ok(a.status().waitingUntil !== null);
    timers.fireNext();
    assert.deepEqual(changes, ["198.51.100.13,1194,udp;198.51.100.13,443,tcp-client"]);
  });
});
