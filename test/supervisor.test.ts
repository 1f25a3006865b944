// Supervision (lib/daemon/supervisor.ts) with a fake process and a manual
// clock: a child that dies is started again after 1 s, 2 s, 4 s... up to
// 60 s while it keeps dying young, and after 1 s again once a run lasted a
// minute; a crash loop is one start a minute, never a spin.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { ExitStatus } from "../lib/daemon/children";
import { FIRST_RESTART_MS, MAX_RESTART_MS, STABLE_RUN_MS, Supervisable, Supervisor, restartDelay } from "../lib/daemon/supervisor";
import { createLogger } from "../lib/utils/log";
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
