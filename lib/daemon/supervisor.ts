// Supervision of the daemon's long-lived children, babeld and the OpenVPN
// servers: one that exits is started again, after 1 s, doubling up to 60 s
// while it keeps dying young, back to 1 s once a run lasted a minute. So a
// crash loop costs one start a minute, and a rare crash a second of outage.
// The process launcher, the clock and the timers are handed in.

import type { Logger } from "../utils/log";
import type { Timer, Timers } from "../utils/timers";
import { ExitStatus, describeExit } from "./children";

export const FIRST_RESTART_MS = 1_000;
export const MAX_RESTART_MS = 60_000;
/** A run this long resets the backoff. */
export const STABLE_RUN_MS = 60_000;

/** The wait before the next start: after `livedMs` of a run, the previous wait being `previousMs` (null: none yet). */
export function restartDelay(previousMs: number | null, livedMs: number): number {
  if (previousMs === null || livedMs >= STABLE_RUN_MS) return FIRST_RESTART_MS;
  return Math.min(previousMs * 2, MAX_RESTART_MS);
}

/** What the supervisor needs of a child (./children.ts Child fits). */
export interface Supervisable {
  readonly pid: number | undefined;
  readonly exited: Promise<ExitStatus>;
  stop(): Promise<ExitStatus>;
}

export interface ChildStatus {
  name: string;
  /** Null while it is not running. */
  pid: number | null;
  running: boolean;
  /** Starts after the first. */
  restarts: number;
  /** When the current run started (ms), or null. */
  since: number | null;
  lastExit: { at: number; status: string } | null;
  /** When it is started again (ms), or null when it runs or supervision stopped. */
  restartAt: number | null;
}

export interface SupervisorDeps {
  timers: Timers;
  now: () => number;
  logger: Logger;
  /** Named in the log line of an exit, where its own messages are (none: it has no log). */
  logPath?: string;
}

export class Supervisor {
  private current: Supervisable | null = null;
  private startedAt: number | null = null;
  private delay: number | null = null;
  private timer: Timer | null = null;
  private restartAt: number | null = null;
  private restarts = 0;
  private lastExit: ChildStatus["lastExit"] = null;
  private stopped = false;

  /** `spawn` starts one run; it may throw (the start failed, counted as an exit). */
  constructor(readonly name: string, private readonly spawn: () => Supervisable, private readonly deps: SupervisorDeps) {}

  start(): void {
    this.stopped = false;
    this.launch();
  }

  private launch(): void {
    const { now } = this.deps;
    const startedAt = now();
    let child: Supervisable;
    try {
      child = this.spawn();
    } catch (e) {
      this.exited({ code: null, signal: null, error: e as Error }, startedAt);
      return;
    }
    this.current = child;
    this.startedAt = startedAt;
    void child.exited.then((s) => {
      if (this.current === child) this.exited(s, startedAt);
    });
  }

  private exited(s: ExitStatus, startedAt: number): void {
    const { now, timers, logger } = this.deps;
    this.current = null;
    this.startedAt = null;
    this.lastExit = { at: now(), status: describeExit(s) };
    if (this.stopped) return;
    this.delay = restartDelay(this.delay, now() - startedAt);
    this.restartAt = now() + this.delay;
    const log = this.deps.logPath === undefined ? "" : ` (its log: ${this.deps.logPath})`;
    logger.log(1, `${this.name} ${describeExit(s)}${log}; starting it again in ${this.delay / 1000} s`);
    this.timer = timers.after(this.delay, () => {
      this.timer = null;
      this.restartAt = null;
      this.restarts++;
      this.launch();
    });
  }

  /**
   * Stops the child and starts it again at once (a new certificate to
   * read): a deliberate restart, counted, with no backoff. Resolves once the
   * new run has been started; nothing happens once supervision stopped.
   */
  async restart(): Promise<void> {
    if (this.stopped) return;
    this.timer?.cancel();
    this.timer = null;
    this.restartAt = null;
    const child = this.current;
    this.current = null; // its exit is ours, not a crash
    if (child) this.lastExit = { at: this.deps.now(), status: `restarted (${describeExit(await child.stop())})` };
    if (this.stopped) return;
    this.restarts++;
    this.launch();
  }

  /** Stops supervising, then the child (resolves once it has exited). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    this.restartAt = null;
    await this.current?.stop();
  }

  status(): ChildStatus {
    return {
      name: this.name, pid: this.current?.pid ?? null, running: this.current !== null, restarts: this.restarts,
      since: this.startedAt, lastExit: this.lastExit, restartAt: this.restartAt,
    };
  }
}
