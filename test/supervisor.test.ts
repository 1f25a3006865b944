// Supervision (lib/daemon/supervisor.ts) with a fake process and a manual
// clock: a child that dies is started again after 1 s, 2 s, 4 s... up to
// 60 s while it keeps dying young, and after 1 s again once a run lasted a
// minute; a crash loop is one start a minute, never a spin. And the
// deliberate restarts of the servers (lib/daemon/servers.ts ServerRestarts).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ExitStatus } from "../lib/daemon/children";
import { FIRST_RESTART_MS, MAX_RESTART_MS, STABLE_RUN_MS, Supervisable, Supervisor, restartDelay } from "../lib/daemon/supervisor";
import { ServerRestarts } from "../lib/daemon/servers";
import { createLogger } from "../lib/utils/log";
import type { Timers } from "../lib/utils/timers";
import { ManualTimers, settle } from "./helpers/manual-timers";

class FakeChild implements Supervisable {
  static pid = 1000;
  readonly pid = FakeChild.pid++;
  private done: (s: ExitStatus) => void = () => {};
  readonly exited = new Promise<ExitStatus>((r) => (this.done = r));
  die(s: ExitStatus = { code: 1, signal: null }): void {
    this.done(s);
  }
  async stop(): Promise<ExitStatus> {
    this.die({ code: null, signal: "SIGTERM" });
    return this.exited;
  }
}

test("restartDelay: 1 s, doubling to 60 s, back to 1 s after a minute's run", () => {
  assert.deepEqual([FIRST_RESTART_MS, MAX_RESTART_MS, STABLE_RUN_MS], [1_000, 60_000, 60_000]);
  let d: number | null = null;
  const seq: number[] = [];
  for (let i = 0; i < 9; i++) seq.push((d = restartDelay(d, 10)));
  assert.deepEqual(seq, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  assert.equal(restartDelay(60_000, 60_000), 1_000);
  assert.equal(restartDelay(8_000, 59_999), 16_000);
});

test("a crash loop: restarted with backoff, counted, logged at level 1 with its status and log file", async () => {
  const timers = new ManualTimers();
  const lines: string[] = [];
  const children: FakeChild[] = [];
  const s = new Supervisor("babeld", () => {
    const c = new FakeChild();
    children.push(c);
    return c;
  }, { timers, now: timers.now, logger: createLogger(1, (l) => lines.push(l)), logPath: "/var/log/vifibnet.babeld.log" });
  s.start();
  assert.equal(children.length, 1);
  assert.deepEqual([s.status().running, s.status().restarts, s.status().pid], [true, 0, children[0]!.pid]);

  const waits: number[] = [];
  for (let i = 0; i < 8; i++) {
    children.at(-1)!.die({ code: null, signal: "SIGKILL" });
    await settle();
    assert.equal(s.status().running, false);
    waits.push(timers.delays()[0]!);
    timers.fireNext();
  }
  assert.deepEqual(waits, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
  assert.equal(children.length, 9);
  assert.equal(s.status().restarts, 8);
  assert.match(lines[0]!, /babeld was killed by SIGKILL \(its log: \/var\/log\/vifibnet\.babeld\.log\); starting it again in 1 s$/);
  assert.equal(s.status().lastExit?.status, "was killed by SIGKILL");

  // A run of a minute resets the backoff.
  timers.advance(STABLE_RUN_MS);
  children.at(-1)!.die();
  await settle();
  assert.deepEqual(timers.delays(), [1_000]);
  await s.stop();
  assert.deepEqual(timers.delays(), [], "stopped: no restart pending");
});

test("a start that throws is an exit like any other; stop ends supervision and the child", async () => {
  const timers = new ManualTimers();
  let fail = true;
  let child: FakeChild | null = null;
  const s = new Supervisor("OpenVPN server 1194/udp", () => {
    if (fail) throw new Error("babeld.pid: busy");
    return (child = new FakeChild());
  }, { timers, now: timers.now, logger: createLogger(0, () => {}), logPath: "x.log" });
  s.start();
  assert.equal(s.status().lastExit?.status, "could not start: babeld.pid: busy");
  assert.equal(s.status().restartAt, 1_000);
  fail = false;
  timers.fireNext();
  assert.ok(child);
  assert.equal(s.status().running, true);
  await s.stop();
  assert.equal(s.status().running, false);
  await settle();
  assert.deepEqual(timers.delays(), [], "a child stopped on purpose is not restarted");
});

test("a deliberate restart: the child stopped and started again at once, counted, no backoff, not a crash", async () => {
  const timers = new ManualTimers();
  const children: FakeChild[] = [];
  const lines: string[] = [];
  const s = new Supervisor("OpenVPN server 1194/udp", () => {
    const c = new FakeChild();
    children.push(c);
    return c;
  }, { timers, now: timers.now, logger: createLogger(1, (l) => lines.push(l)), logPath: "x.log" });
  s.start();
  await s.restart();
  await settle();
  assert.equal(children.length, 2);
  assert.deepEqual([s.status().running, s.status().pid, s.status().restarts], [true, children[1]!.pid, 1]);
  assert.equal(s.status().lastExit?.status, "restarted (was killed by SIGTERM)");
  assert.deepEqual(timers.delays(), [], "nothing scheduled: the old run's exit was no crash");
  assert.deepEqual(lines, []);
  // During a backoff wait (the child had died): started at once.
  children[1]!.die();
  await settle();
  assert.deepEqual(timers.delays(), [1_000]);
  await s.restart();
  assert.deepEqual([children.length, s.status().running, timers.delays().length], [3, true, 0]);
  await s.stop();
  await s.restart();
  assert.equal(children.length, 3, "stopped supervision restarts nothing");
});

describe("the servers' restarts (a renewed certificate or CA, a revoked peer)", () => {
  const fakeServers = (log: string[], upAfterMs: number, timers: ManualTimers) => ["vifibnet", "vifibnet1"].map((iface, i) => ({
    iface, port: 1194 + i, proto: "udp" as const,
    restart: (t: Timers) => {
      log.push(`restart ${iface} at ${timers.time}`);
      return new Promise<boolean>((resolve) => t.after(upAfterMs, () => (log.push(`${iface} up at ${timers.time}`), resolve(true))));
    },
  }));
  const babel = (log: string[], timers: ManualTimers) => ({
    retire: async (iface: string) => (log.push(`retire ${iface} at ${timers.time}`), true),
    restore: async (iface: string) => (log.push(`restore ${iface} at ${timers.time}`), true),
  });
  /** Fires timers until `p` settles (each timer, then the promise callbacks it released). */
  async function drive(timers: ManualTimers, p: Promise<void>): Promise<void> {
    let done = false;
    void p.then(() => (done = true));
    for (let i = 0; i < 100 && !done; i++) {
      await settle();
      if (!done) timers.fireNext();
    }
    assert.ok(done);
  }

  test("graceful: drained, restarted, back up, restored, then the next after the settling time; one request after the other", async () => {
    const timers = new ManualTimers();
    const log: string[] = [];
    const r = new ServerRestarts(fakeServers(log, 300, timers), { timers, logger: createLogger(0, () => {}), babel: babel(log, timers) }, { settleMs: 4_000, drainMs: 8_000 });
    const first = r.request("a renewed certificate", { graceful: true });
    const second = r.request("a revoked peer was connected", { which: (s) => s.iface === "vifibnet1", graceful: false });
    await drive(timers, Promise.all([first, second]).then(() => {}));
    assert.deepEqual(log, [
      "retire vifibnet at 0", "restart vifibnet at 8000", "vifibnet up at 8300", "restore vifibnet at 8300",
      "retire vifibnet1 at 12300", "restart vifibnet1 at 20300", "vifibnet1 up at 20600", "restore vifibnet1 at 20600",
      "restart vifibnet1 at 20600", "vifibnet1 up at 20900",
    ]);
  });

  test("stopped meanwhile: the next server is left alone", async () => {
    const timers = new ManualTimers();
    const log: string[] = [];
    const r = new ServerRestarts(fakeServers(log, 300, timers), { timers, logger: createLogger(0, () => {}), babel: babel(log, timers) }, { settleMs: 4_000, drainMs: 8_000 });
    const p = r.request("a renewed CA", { graceful: false });
    await settle();
    timers.fireNext(); // the first is up
    await settle();
    r.stop();
    await drive(timers, p);
    assert.deepEqual(log, ["restart vifibnet at 0", "vifibnet up at 300"]);
  });
});
