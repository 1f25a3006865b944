// Several registry processes on one port (node:cluster), so the registry
// uses every core: one process saturates a core near 10,000 requests/s.
// Each worker serves every method from the shared SQLite file; the state
// outside it, the in-memory mirror of the peers table and the certificates
// lately issued for tokens, is kept in step by relaying each worker's
// changes to the others through the primary. A declare is answered only
// once every other worker has applied it, so a client that declares, then
// asks any worker, finds its peer listed. The primary also holds the one
// token limiter (./token-limit.ts) that every worker asks before mailing,
// and passes SIGHUP (re-read the CA) on to the workers.

import cluster, { Worker } from "node:cluster";
import { Logger } from "../utils/log";
import type { RegistryChange } from "./service";
import { TokenGate, TokenLimiter, TokenLimits } from "./token-limit";

/**
 * Messages between workers and the primary: a worker's change (with its own
 * id), relayed to the others (with the primary's id), acknowledged by each,
 * and finally reported applied to the worker that made it; a worker's
 * question to the token limiter and its answer.
 */
export type ClusterMessage =
  | { change: RegistryChange; id: number }
  | { ack: number }
  | { applied: number }
  | { listening: number }
  | { failed: string }
  | { admit: { email: string; client: string; now: number }; id: number }
  | { admitted: number; retryAt: number | null };

const KINDS = ["change", "ack", "applied", "listening", "failed", "admit", "admitted"];

function isMessage(m: unknown): m is ClusterMessage {
  return typeof m === "object" && m !== null && KINDS.some((k) => k in m);
}

/** A bound on waiting for the other workers: a stuck one must not stall declares. */
const APPLY_TIMEOUT_MS = 2_000;
/**
 * More worker deaths than this within RESTART_WINDOW_MS and the registry
 * gives up: something is wrong that restarting will not fix. Rare crashes
 * over a long life are each restarted.
 */
export const MAX_RESTARTS = 5;
export const RESTART_WINDOW_MS = 60_000;

export interface PrimaryOptions {
  workers: number;
  log: Logger;
  /** Called once, when every worker started at first listens. */
  onListening(port: number): void;
  /** Called once when the registry gives up (a worker could not start, or died too often), before it exits 1. */
  onFatal(message: string): void;
  /** The limits of the registry's one token limiter. */
  tokenLimits: TokenLimits;
  /** On SIGHUP: true to have every worker re-read the CA (it checked the files), false to keep it. */
  onReload(): boolean;
}

/** Runs the primary: forks the workers, relays their changes, stops them on SIGTERM/SIGINT. */
export function runPrimary(opts: PrimaryOptions): void {
  let stopping = false;
  let status = 0;
  /** Every first worker listens; until then a death means the registry cannot start. */
  let listening = false;
  let listeningWorkers = 0;
  const deaths: number[] = [];
  let relayed = 0;
  const alive = (): number => Object.keys(cluster.workers ?? {}).length;
  /** Stops every worker and exits with status 1 once they are gone; the first reason alone is told. */
  const giveUp = (message: string): void => {
    if (stopping) return;
    stopping = true;
    status = 1;
    opts.onFatal(message);
    for (const w of Object.values(cluster.workers ?? {})) w?.kill("SIGTERM");
    if (alive() === 0) process.exit(1);
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  const tokens = new TokenLimiter(opts.tokenLimits);
  /** Relayed changes not yet applied everywhere: who made it, its id there, who has still to ack. */
  const pending = new Map<number, { origin: Worker; id: number; waiting: Set<number> }>();
  const settle = (relayId: number): void => {
    const p = pending.get(relayId);
    if (!p || p.waiting.size > 0) return;
    pending.delete(relayId);
    if (p.origin.isConnected()) p.origin.send({ applied: p.id });
  };
  const fork = (): Worker => {
    const w = cluster.fork();
    w.on("message", (m: unknown) => {
      if (!isMessage(m)) return;
      if ("listening" in m) {
        // Ready once every first worker listens: with port 0, the port is fixed only then.
        if (!listening && ++listeningWorkers === opts.workers) {
          listening = true;
          opts.onListening(m.listening);
        }
      } else if ("failed" in m) {
        giveUp(m.failed);
      } else if ("change" in m) {
        const others = Object.values(cluster.workers ?? {}).filter((o): o is Worker => !!o && o !== w && o.isConnected());
        const relayId = ++relayed;
        pending.set(relayId, { origin: w, id: m.id, waiting: new Set(others.map((o) => o.id)) });
        for (const o of others) o.send({ change: m.change, id: relayId });
        settle(relayId);
      } else if ("ack" in m) {
        pending.get(m.ack)?.waiting.delete(w.id);
        settle(m.ack);
      } else if ("admit" in m) {
        const { email, client, now } = m.admit;
        if (w.isConnected()) w.send({ admitted: m.id, retryAt: tokens.admit(email, client, now) } satisfies ClusterMessage);
      }
    });
    return w;
  };
  for (let i = 0; i < opts.workers; i++) fork();
  cluster.on("exit", (w, code, signal) => {
    // A dead worker acknowledges nothing: stop waiting for it.
    for (const [relayId, p] of pending) {
      p.waiting.delete(w.id);
      settle(relayId);
    }
    if (stopping) {
      if (alive() === 0) process.exit(status);
      return;
    }
    const how = `registry worker ${w.process.pid} exited (${signal ?? code})`;
    // A worker that dies before listening would die again: give up then.
    if (!listening) return giveUp(`${how} before it could listen`);
    const now = Date.now();
    deaths.push(now);
    while (deaths[0]! <= now - RESTART_WINDOW_MS) deaths.shift();
    if (deaths.length > MAX_RESTARTS) return giveUp(`${how}: ${deaths.length} workers died within ${RESTART_WINDOW_MS / 1000} s; stopping`);
    opts.log.warn(`${how}; starting another`);
    fork();
  });
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    opts.log.log(1, `${signal} received, stopping`);
    for (const w of Object.values(cluster.workers ?? {})) w?.kill("SIGTERM");
    setTimeout(() => process.exit(status), 10_000).unref();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => {
    if (stopping || !opts.onReload()) return;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGHUP");
  });
}

/** In a worker: tells the primary it listens. */
export function reportListening(port: number): void {
  process.send?.({ listening: port } satisfies ClusterMessage);
}

/** In a worker that cannot serve: tells the primary why (which tells the user, once), then exits 1. */
export function reportFailure(message: string): void {
  if (process.send) process.send({ failed: message } satisfies ClusterMessage, () => process.exit(1));
  else process.exit(1);
}

let changes = 0;
const unapplied = new Map<number, () => void>();
let questions = 0;
const unanswered = new Map<number, (retryAt: number | null) => void>();
/** A primary that does not answer is taken for a refusal: a flood must never pass for lack of an answer. */
const NO_ANSWER_RETRY_S = 60;

/** In a worker: the primary's token limiter. */
export const clusterTokenGate: TokenGate = {
  admit(email, client, now) {
    const id = ++questions;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        unanswered.delete(id);
        resolve(now + NO_ANSWER_RETRY_S);
      }, APPLY_TIMEOUT_MS);
      unanswered.set(id, (retryAt) => {
        clearTimeout(timer);
        unanswered.delete(id);
        resolve(retryAt);
      });
      process.send?.({ admit: { email, client, now }, id } satisfies ClusterMessage);
    });
  },
};

/** In a worker: shares a change; resolves once every other worker applied it (or after a bound). */
export function shareChange(change: RegistryChange): Promise<void> {
  const id = ++changes;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      unapplied.delete(id);
      resolve();
    }, APPLY_TIMEOUT_MS);
    unapplied.set(id, () => {
      clearTimeout(timer);
      unapplied.delete(id);
      resolve();
    });
    process.send?.({ change, id } satisfies ClusterMessage);
  });
}

/** In a worker: applies each change another worker made, and acknowledges it. */
export function onOtherWorkersChanges(apply: (change: RegistryChange) => void): void {
  process.on("message", (m: unknown) => {
    if (!isMessage(m)) return;
    if ("change" in m) {
      apply(m.change);
      process.send?.({ ack: m.id } satisfies ClusterMessage);
    } else if ("applied" in m) {
      unapplied.get(m.applied)?.();
    } else if ("admitted" in m) {
      unanswered.get(m.admitted)?.(m.retryAt);
    }
  });
}
