// Several registry processes on one port (node:cluster), so the registry
// uses every core: one process saturates a core near 10,000 requests/s.
// Each worker serves every method from the shared SQLite file; the only
// state outside it, the in-memory mirror of the peers table, is kept in step
// by relaying each worker's changes to the others through the primary. A
// peer declared on one worker is listed by the others a few milliseconds
// later.

import cluster, { Worker } from "node:cluster";
import { Logger } from "../utils/log";
import type { PeersChange } from "./service";

/** Messages between workers and the primary. */
export type ClusterMessage = { change: PeersChange } | { listening: number };

function isMessage(m: unknown): m is ClusterMessage {
  return typeof m === "object" && m !== null && ("change" in m || "listening" in m);
}

export interface PrimaryOptions {
  workers: number;
  log: Logger;
  /** Called once, when the first worker listens. */
  onListening(port: number): void;
}

/** Runs the primary: forks the workers, relays their changes, stops them on SIGTERM/SIGINT. */
export function runPrimary(opts: PrimaryOptions): void {
  let stopping = false;
  let listening = false;
  let restarts = 0;
  const fork = (): Worker => {
    const w = cluster.fork();
    w.on("message", (m: unknown) => {
      if (!isMessage(m)) return;
      if ("listening" in m) {
        if (!listening) opts.onListening(m.listening);
        listening = true;
      } else {
        for (const other of Object.values(cluster.workers ?? {})) if (other && other !== w && other.isConnected()) other.send(m);
      }
    });
    return w;
  };
  for (let i = 0; i < opts.workers; i++) fork();
  cluster.on("exit", (w, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    // A worker that dies before listening would die again: give up then.
    if (!listening || ++restarts > 10) {
      opts.log.warn(`registry worker ${w.process.pid} exited (${signal ?? code}); stopping`);
      stopping = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.kill("SIGTERM");
      process.exitCode = 1;
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(1);
      return;
    }
    opts.log.warn(`registry worker ${w.process.pid} exited (${signal ?? code}); starting another`);
    fork();
  });
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    opts.log.log(1, `${signal} received, stopping`);
    for (const w of Object.values(cluster.workers ?? {})) w?.kill("SIGTERM");
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/** In a worker: sends a message to the primary. */
export function toPrimary(m: ClusterMessage): void {
  process.send?.(m);
}

/** In a worker: calls `apply` with each change another worker made. */
export function onOtherWorkersChanges(apply: (change: PeersChange) => void): void {
  process.on("message", (m: unknown) => {
    if (isMessage(m) && "change" in m) apply(m.change);
  });
}
