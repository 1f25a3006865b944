// Timers as every long-lived part of the daemon takes them (the peers DB
// refresh, UPnP renewal, supervision, tunnel drains): injected, so unit tests
// drive them with a manual clock instead of waiting.

/** A pending timer. */
export interface Timer {
  cancel(): void;
}

export interface Timers {
  /** Calls `fn` once, `ms` milliseconds from now (any duration). */
  after(ms: number, fn: () => void): Timer;
}

/** Node's setTimeout stops at 2^31-1 ms (about 24.8 days); longer waits are armed in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The real timers. */
export const systemTimers: Timers = {
  after(ms, fn) {
    let handle: NodeJS.Timeout;
    const arm = (left: number): void => {
      handle = setTimeout(() => (left > MAX_TIMEOUT_MS ? arm(left - MAX_TIMEOUT_MS) : fn()), Math.min(left, MAX_TIMEOUT_MS));
    };
    arm(Math.max(0, ms));
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Rejects after `ms` unless `p` settles first. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
