// npm run simulate -- --nodes N --tunnels K [--rounds R] [--seed S] [--kill F] [--json]
// The overlay at scale, driven by the daemon's own tunnel policy
// (sim/network.ts, sim/policy.ts; what is modelled: docs/scale.md).

import { ArgumentParser } from "argparse";
import { DEFAULTS } from "../lib/daemon/args";
import type { Ties } from "./network";
import { describe, inDegreeLine, killRows, LEGEND, roundHeader, roundRow } from "./report";
import { DEFAULT_ROUNDS, DEFAULT_SOURCES, simulate, type SimResult } from "./run";

export interface Perf {
  seconds: number;
  cpuSeconds: number;
  peakRssMB: number;
}

/** Wall and CPU time since `start`, and the process's peak resident memory. */
export function perfSince(start: { wall: bigint; cpu: NodeJS.CpuUsage }): Perf {
  const cpu = process.cpuUsage(start.cpu);
  return {
    seconds: Number(process.hrtime.bigint() - start.wall) / 1e9,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
}

function parse(argv: string[]): {
  nodes: number; tunnels: number; rounds: number; seed: number; kill: number[]; json: boolean; sources: number; refreshRate: number; ties: Ties; maxClients: number | undefined;
} {
  const p = new ArgumentParser({
    prog: "simulate",
    description: "Simulates a vifibnet network of N nodes running the daemon's tunnel policy (lib/tunnel.ts), one tunnel refresh per round.",
  });
  p.add_argument("--nodes", { type: "int", required: true, metavar: "N", help: "Number of nodes (2 or more)" });
  p.add_argument("--tunnels", { type: "int", required: true, metavar: "K", help: "Client tunnels wanted per node: the nodes run with --connection-count 2K" });
  p.add_argument("--rounds", { type: "int", default: DEFAULT_ROUNDS, metavar: "R", help: "Tunnel refreshes to simulate (default: %(default)s)" });
  p.add_argument("--seed", { type: "int", default: 1, metavar: "S", help: "Seed of every random choice: the same seed gives the same run (default: %(default)s)" });
  p.add_argument("--kill", { type: "float", action: "append", default: [], metavar: "F", help: "After the last round, remove a fraction F of the nodes, at random and the best connected; repeatable" });
  p.add_argument("--sources", {
    type: "int", default: DEFAULT_SOURCES, metavar: "S",
    help: "Nodes the distances and route counts are measured from each round, at random; all of them (exact) when N <= S (default: %(default)s)",
  });
  p.add_argument("--max-clients", {
    type: "int", metavar: "M", help: "The servers' --max-clients (default: the connection count, 2K, as the daemon sets it)",
  });
  p.add_argument("--refresh-rate", { type: "float", default: DEFAULTS.refreshRate, metavar: "RATIO", help: "The daemons' --refresh-rate (default: %(default)s)" });
  p.add_argument("--ties", {
    choices: ["oldest", "random"], default: "oldest",
    help: "Among equally short routes babel keeps the oldest tunnel's; random: a random order each round, to see what that choice weighs (default: %(default)s)",
  });
  p.add_argument("--json", { action: "store_true", help: "Print the whole result as JSON instead of a table" });
  const a = p.parse_args(argv) as {
    nodes: number; tunnels: number; rounds: number; seed: number; kill: number[]; sources: number; refresh_rate: number; json: boolean; ties: Ties; max_clients: number | undefined;
  };
  if (a.nodes < 2) p.error(`argument --nodes: a network needs at least 2 nodes, got ${a.nodes}`);
  if (a.nodes > 1_000_000) p.error(`argument --nodes: at most 1000000 nodes, got ${a.nodes}`);
  if (a.tunnels < 1) p.error(`argument --tunnels: must be 1 or more, got ${a.tunnels}`);
  if (a.rounds < 1) p.error(`argument --rounds: must be 1 or more, got ${a.rounds}`);
  if (a.sources < 1) p.error(`argument --sources: must be 1 or more, got ${a.sources}`);
  for (const f of a.kill) if (!(f > 0 && f < 1)) p.error(`argument --kill: a fraction between 0 and 1 (exclusive), got ${f}`);
  if (a.max_clients !== undefined && a.max_clients < 1) p.error(`argument --max-clients: must be 1 or more, got ${a.max_clients}`);
  if (!(a.refresh_rate >= 0 && a.refresh_rate <= 1)) p.error(`argument --refresh-rate: a ratio from 0 to 1, got ${a.refresh_rate}`);
  return { nodes: a.nodes, tunnels: a.tunnels, rounds: a.rounds, seed: a.seed, kill: a.kill, json: a.json, sources: a.sources, refreshRate: a.refresh_rate, ties: a.ties, maxClients: a.max_clients };
}

export function main(argv: string[]): void {
  const a = parse(argv);
  const start = { wall: process.hrtime.bigint(), cpu: process.cpuUsage() };
  const opts = { nodes: a.nodes, tunnels: a.tunnels, rounds: a.rounds, seed: a.seed, kill: a.kill, sources: a.sources, refreshRate: a.refreshRate, ties: a.ties, maxClients: a.maxClients };
  let result: SimResult;
  if (a.json) {
    result = simulate(opts);
    process.stdout.write(JSON.stringify({ ...result, perf: perfSince(start) }) + "\n");
    return;
  }
  result = simulate(opts, {
    start: (config) => process.stdout.write(`${describe(config)}\n\n${roundHeader()}\n`),
    round: (m) => process.stdout.write(`${roundRow(m)}\n`),
  });
  const lines = ["", inDegreeLine(result.rounds[result.rounds.length - 1]!), "", ...LEGEND];
  if (result.kill.length > 0) lines.push("", ...killRows(result.kill));
  process.stdout.write(`${lines.join("\n")}\n`);
  const perf = perfSince(start);
  process.stderr.write(`simulated in ${perf.seconds.toFixed(1)} s (CPU ${perf.cpuSeconds.toFixed(1)} s), peak RSS ${perf.peakRssMB.toFixed(0)} MB\n`);
}

if (require.main === module) main(process.argv.slice(2));
