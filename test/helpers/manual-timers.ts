// A manual clock for unit tests of the daemon's services (lib/utils/timers.ts):
// nothing fires until the test advances the clock.

import type { Timer, Timers } from "../../lib/utils/timers";

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  ms: number;
}

export class ManualTimers implements Timers {
  /** Milliseconds; starts at `start`. */
  time: number;
  private pending: Pending[] = [];
  private seq = 0;

  constructor(start = 0) {
    this.time = start;
  }

  readonly now = (): number => this.time;

  after(ms: number, fn: () => void): Timer {
    const p: Pending = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, ms };
    this.pending.push(p);
    return { cancel: () => void (this.pending = this.pending.filter((x) => x !== p)) };
  }

  /** The delays of the timers pending now, in the order they will fire. */
  delays(): number[] {
    return this.sorted().map((p) => p.ms);
  }

  /** Moves the clock `ms` forward, firing every timer that falls due, in order (a timer armed meanwhile too). */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const next = this.sorted()[0];
      if (next === undefined || next.at > until) break;
      this.pending = this.pending.filter((x) => x !== next);
      this.time = Math.max(this.time, next.at);
      next.fn();
    }
    this.time = until;
  }

  /** Fires the next pending timer (advancing the clock to it); returns its delay, or null if none. */
  fireNext(): number | null {
    const next = this.sorted()[0];
    if (next === undefined) return null;
    this.advance(next.at - this.time);
    return next.ms;
  }

  private sorted(): Pending[] {
    return [...this.pending].sort((a, b) => a.at - b.at || a.seq - b.seq);
  }
}

/** Lets pending promise callbacks run. */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
