// How often a token may be mailed: at most `perEmail` mails to one address
// and `perClient` requests from one client (an IPv4 address or an IPv6 /64)
// within a sliding window. Beyond that, requestToken is a fault that says
// when to retry, and nothing is mailed: a flood costs the registry a fault
// per request, never a mail. Pure: the clock is the caller's. With several
// workers, the primary holds the one limiter (./cluster.ts).

export interface TokenLimits {
  perEmail: number;
  perClient: number;
  /** Seconds. */
  window: number;
}

export const DEFAULT_TOKEN_LIMITS: TokenLimits = { perEmail: 3, perClient: 60, window: 3600 };

/** Decides on one token request: null when admitted (and counted), else when to retry, in seconds since the epoch. */
export interface TokenGate {
  admit(email: string, client: string, now: number): number | null | Promise<number | null>;
}

/** Above this many keys, forgotten ones are swept at the next request. */
const SWEEP_AT = 10_000;

export class TokenLimiter implements TokenGate {
  /** Per key, the times of the requests admitted within the window, oldest first. */
  private readonly seen = new Map<string, number[]>();

  constructor(private readonly limits: TokenLimits = DEFAULT_TOKEN_LIMITS) {}

  admit(email: string, client: string, now: number): number | null {
    if (this.seen.size > SWEEP_AT) this.sweep(now);
    const keys: Array<[string, number]> = [[`email ${email.toLowerCase()}`, this.limits.perEmail], [`client ${client}`, this.limits.perClient]];
    let retryAt: number | null = null;
    for (const [key, limit] of keys) {
      const times = this.recent(key, now);
      if (times.length >= limit) retryAt = Math.max(retryAt ?? 0, times[times.length - limit]! + this.limits.window);
    }
    if (retryAt !== null) return retryAt;
    for (const [key] of keys) {
      const times = this.seen.get(key) ?? [];
      times.push(now);
      this.seen.set(key, times);
    }
    return null;
  }

  /** The key's times still inside the window (older ones dropped). */
  private recent(key: string, now: number): number[] {
    const times = this.seen.get(key);
    if (!times) return [];
    while (times.length > 0 && times[0]! <= now - this.limits.window) times.shift();
    if (times.length === 0) this.seen.delete(key);
    return times;
  }

  private sweep(now: number): void {
    for (const key of [...this.seen.keys()]) this.recent(key, now);
  }
}
