// One simulation: the rounds, then the kill experiments, as plain data
// (what --json prints, what the text report and docs/scale.md are made of).

import { wantedTunnels } from "../lib/tunnel";
import { Network, type KillKind, type KillResult, type RoundMetrics, type SimConfig } from "./network";

/** BFS sources per round unless told: every node (exact) in networks up to this size. */
export const DEFAULT_SOURCES = 1024;
export const DEFAULT_ROUNDS = 100;

export interface SimOptions extends Partial<SimConfig> {
  nodes: number;
  tunnels: number;
  rounds?: number;
  /** Kill experiments after the last round, one per fraction, at random and of the best connected. */
  kill?: readonly number[];
}

export interface SimResult {
  config: Required<SimConfig> & { rounds: number; connectionCount: number; clientTunnels: number };
  rounds: RoundMetrics[];
  kill: KillResult[];
}

/** Hooks for a caller that reports as the run goes. */
export interface SimProgress {
  start?(config: SimResult["config"]): void;
  round?(m: RoundMetrics): void;
}

export function simulate(opts: SimOptions, progress: SimProgress = {}): SimResult {
  const net = new Network({ seed: 1, sources: DEFAULT_SOURCES, ...opts });
  const rounds = opts.rounds ?? DEFAULT_ROUNDS;
  const c = net.config;
  const config: SimResult["config"] = {
    nodes: c.nodes, tunnels: c.tunnels, seed: c.seed, sources: c.sources, ties: net.ties, rounds,
    connectionCount: net.connectionCount, clientTunnels: wantedTunnels(net.connectionCount), maxClients: net.maxClients,
    refreshRate: net.refreshRate, tunnelRefreshS: net.tunnelRefreshS, peersDbRefreshS: net.peersDbRefreshS, helloS: net.helloS,
  };
  progress.start?.(config);
  const out: RoundMetrics[] = [];
  for (let r = 0; r < rounds; r++) {
    const m = net.round();
    out.push(m);
    progress.round?.(m);
  }
  const kill: KillResult[] = [];
  for (const f of opts.kill ?? []) for (const kind of ["random", "best"] as KillKind[]) kill.push(net.kill(kind, f));
  return { config, rounds: out, kill };
}
