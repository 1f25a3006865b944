// The tunnel executor (lib/daemon/tunnels.ts) replayed with fakes, as
// test/tunnel.test.ts replays plans: OpenVPN processes, babeld's control
// socket, peers.db and the clock are stand-ins, and each scenario reads as
// the life of a tunnel: open, up, retire, drain, close, restore on reuse.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { PeerUse } from "../lib/db";
import { ClientEvents, Tunnels } from "../lib/daemon/tunnels";
import type { RefreshStep } from "../lib/tunnel";
import { createLogger } from "../lib/utils/log";
import { ManualTimers, settle } from "./helpers/manual-timers";

const p = (n: number): string => n.toString(2).padStart(16, "0");
const remotes = [{ ip: "198.51.100.7", port: 1194, proto: "udp" as const }];

/** A world of fakes around one executor; `log` records what happened to the outside, in order. */
function world(opts: { babelWorks?: boolean; retire?: () => Promise<boolean> } = {}) {
  const timers = new ManualTimers(1_000_000);
  const log: string[] = [];
  const procs = new Map<string, { events: ClientEvents; exit: () => void; stopped: boolean }>();
  let babelWorks = opts.babelWorks ?? true;
  const reports: string[] = [];
  const tunnels = new Tunnels({
    timers, now: timers.now, logger: createLogger(0, () => {}),
    spawn: (iface, prefix, r, events) => {
      log.push(`spawn ${iface} ${parseInt(prefix, 2)} ${r.map((x) => x.ip).join(",")}`);
      let exited: () => void = () => {};
      const done = new Promise<void>((res) => (exited = res));
      const proc = { events, stopped: false, exit: () => { exited(); events.exited("was killed by SIGKILL"); } };
      procs.set(iface, proc);
      return { pid: 100 + procs.size, stop: async () => { log.push(`stop ${iface}`); proc.stopped = true; exited(); await done; }, negotiation: () => null };
    },
    babel: {
      retire: async (iface) => (log.push(`babel retire ${iface}`), opts.retire ? opts.retire() : babelWorks),
      restore: async (iface) => (log.push(`babel restore ${iface}`), babelWorks),
    },
    peers: {
      setUsed: (prefix: string, used: PeerUse) => log.push(`peer ${parseInt(prefix, 2)} used ${used}`),
      removePeer: (prefix: string) => log.push(`peer ${parseInt(prefix, 2)} removed`),
    },
    onReport: (prefix, ip) => reports.push(`${parseInt(prefix, 2)} sees us at ${ip}`),
    onClosed: (prefix) => log.push(`closed ${parseInt(prefix, 2)}`),
  });
  const states = (): string[] => tunnels.info().map((t) => `${t.iface} ${parseInt(t.prefix, 2)} ${t.state}`);
  return { tunnels, timers, log, procs, reports, states, setBabel: (works: boolean) => (babelWorks = works) };
}

const open = (n: number, iface: string): RefreshStep => ({ kind: "open", prefix: p(n), address: "198.51.100.7,1194,udp", iface, remotes });

describe("a tunnel's life", () => {
  test("open, up, retire, drain, close, restore on reuse", async () => {
    const w = world();
    await w.tunnels.execute([open(7, "client1")]);
    assert.deepEqual(w.log.splice(0), ["spawn client1 7 198.51.100.7", "peer 7 used 1"]);
    assert.deepEqual(w.states(), ["client1 7 opening"]);

    w.procs.get("client1")!.events.up("203.0.113.5", "198.51.100.7");
    assert.deepEqual(w.states(), ["client1 7 up"]);
    assert.deepEqual(w.reports, ["7 sees us at 203.0.113.5"], "its route-up reports our address to the advertiser");
    assert.equal(w.tunnels.info()[0]!.remote, "198.51.100.7");

    // The planner retires it: it keeps running until drainAt, 4 s from now.
    await w.tunnels.execute([{ kind: "retire", prefix: p(7), iface: "client1", drainAt: w.timers.now() + 4_000 }]);
    assert.deepEqual(w.states(), ["client1 7 retiring"]);
    assert.deepEqual(w.tunnels.snapshot().map((t) => t.state), ["retiring"], "the planner sees it retiring");
    w.timers.advance(3_999);
    assert.deepEqual(w.log, [], "nothing before drainAt");
    w.timers.advance(1);
    await settle();
    assert.deepEqual(w.log.splice(0), ["babel retire client1"]);
    assert.deepEqual(w.states(), ["client1 7 draining"]);

    // The next refresh closes it: OpenVPN stopped, then babel's defaults back, then the peer freed.
    await w.tunnels.execute([{ kind: "close", prefix: p(7), iface: "client1", reason: "retired", mark: 0 }]);
    assert.deepEqual(w.log.splice(0), ["stop client1", "closed 7", "babel restore client1", "peer 7 used 0"]);
    assert.deepEqual(w.states(), []);
    assert.equal(w.tunnels.closed.retired, 1);

    // Reused: nothing left to restore.
    await w.tunnels.execute([open(8, "client1")]);
    assert.deepEqual(w.log.splice(0), ["spawn client1 8 198.51.100.7", "peer 8 used 1"]);
  });

  test("babeld refused the restore at the close: restored before the interface is reused", async () => {
    const w = world();
    await w.tunnels.execute([open(7, "client2")]);
    await w.tunnels.execute([{ kind: "retire", prefix: p(7), iface: "client2", drainAt: w.timers.now() }]);
    w.timers.advance(0);
    await settle();
    w.setBabel(false); // babeld restarting
    await w.tunnels.execute([{ kind: "close", prefix: p(7), iface: "client2", reason: "retired", mark: 0 }]);
    w.setBabel(true);
    w.log.splice(0);
    await w.tunnels.execute([open(9, "client2")]);
    assert.deepEqual(w.log, ["babel restore client2", "spawn client2 9 198.51.100.7", "peer 9 used 1"]);
  });

  test("babel unreachable at drain time: the tunnel stays retiring and closes as before, nothing to restore", async () => {
    const w = world({ babelWorks: false });
    await w.tunnels.execute([open(7, "client1"), { kind: "retire", prefix: p(7), iface: "client1", drainAt: w.timers.now() + 10 }]);
    w.timers.advance(10);
    await settle();
    assert.deepEqual(w.states(), ["client1 7 retiring"]);
    w.log.splice(0);
    await w.tunnels.execute([{ kind: "close", prefix: p(7), iface: "client1", reason: "retired", mark: 0 }]);
    assert.deepEqual(w.log, ["stop client1", "closed 7", "peer 7 used 0"]);
  });

  test("its OpenVPN exits: dead, its drain cancelled; the next refresh closes it with the peer at -1", async () => {
    const w = world();
    await w.tunnels.execute([open(7, "client1"), { kind: "retire", prefix: p(7), iface: "client1", drainAt: w.timers.now() + 1_000 }]);
    w.procs.get("client1")!.exit();
    assert.deepEqual(w.states(), ["client1 7 dead"]);
    assert.deepEqual(w.timers.delays(), [], "no drain for a dead tunnel");
    w.log.splice(0);
    await w.tunnels.execute([{ kind: "close", prefix: p(7), iface: "client1", reason: "dead", mark: -1 }]);
    assert.deepEqual(w.log, ["stop client1", "closed 7", "peer 7 used -1"]);
    assert.equal(w.tunnels.closed.dead, 1);
  });

  test("a peer on the LAN is removed; a malformed one forgotten", async () => {
    const w = world();
    await w.tunnels.execute([open(7, "client1")]);
    w.log.splice(0);
    await w.tunnels.execute([{ kind: "forget", prefix: p(9), reason: "malformed" }, { kind: "close", prefix: p(7), iface: "client1", reason: "lan", mark: "remove" }]);
    assert.deepEqual(w.log, ["peer 9 removed", "stop client1", "closed 7", "peer 7 removed"]);
  });

  test("a close while the drain's babel request is in flight: the interface is still restored", async () => {
    let release: (ok: boolean) => void = () => {};
    const w = world({ retire: () => new Promise((r) => (release = r)) });
    await w.tunnels.execute([open(7, "client1"), { kind: "retire", prefix: p(7), iface: "client1", drainAt: w.timers.now() }]);
    w.timers.advance(0);
    await w.tunnels.execute([{ kind: "close", prefix: p(7), iface: "client1", reason: "retired", mark: 0 }]);
    assert.ok(!w.log.includes("babel restore client1"), "nothing to restore yet: the retire has not been answered");
    w.log.splice(0);
    release(true);
    await settle();
    assert.deepEqual(w.log, ["babel restore client1"]);
  });

  test("shutdown closes everything at once, peers back to free, dead ones to -1; nothing runs after", async () => {
    const w = world();
    await w.tunnels.execute([open(7, "client1"), open(8, "client2"), { kind: "retire", prefix: p(8), iface: "client2", drainAt: w.timers.now() + 5 }]);
    w.procs.get("client1")!.exit();
    w.log.splice(0);
    await w.tunnels.closeAll();
    assert.deepEqual(w.log.sort(), ["peer 7 used -1", "peer 8 used 0", "stop client1", "stop client2"].sort());
    w.log.splice(0);
    w.timers.advance(10);
    await w.tunnels.execute([open(9, "client3")]);
    await settle();
    assert.deepEqual(w.log, [], "no drain, no open after the stop");
  });
});

describe("traffic", () => {
  test("byte counters become the smoothed rate the planner sees", async () => {
    const w = world();
    await w.tunnels.execute([open(7, "client1")]);
    w.tunnels.sample(() => 1_000);
    w.timers.advance(10_000);
    w.tunnels.sample(() => 11_000);
    assert.equal(w.tunnels.snapshot()[0]!.traffic, 1_000);
    w.tunnels.sample(() => null);
    assert.equal(w.tunnels.snapshot()[0]!.traffic, 1_000, "no counter: the rate stays");
  });
});
