// Simulator benchmark (npm run bench:sim): the targets of the simulator,
// each run in its own process (`node dist/sim/main.js --json`, which
// reports its own wall time, CPU time and peak resident memory):
//
//   10,000 nodes,  K = 10, 100 rounds   <= 60 s
//   100,000 nodes, K = 10, 100 rounds   <= 15 min and <= 4 GB
//
// The machine is shared: the load average (1 min) is sampled every 5 s
// during each run and printed with its figures, and CPU time is printed
// beside wall time, so a slow run can be told from a busy machine.
//
// Usage: node dist/bench/sim.js [--only 10k|100k] [--seed S]

import { spawn } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";

interface Target {
  name: string;
  nodes: number;
  tunnels: number;
  rounds: number;
  maxSeconds: number;
  maxMB: number | null;
}

const TARGETS: Target[] = [
  { name: "10k", nodes: 10_000, tunnels: 10, rounds: 100, maxSeconds: 60, maxMB: null },
  { name: "100k", nodes: 100_000, tunnels: 10, rounds: 100, maxSeconds: 15 * 60, maxMB: 4096 },
];

const flag = (name: string): string | undefined => {
  const at = process.argv.indexOf(name);
  return at < 0 ? undefined : process.argv[at + 1];
};
const only = flag("--only");
const seed = flag("--seed") ?? "1";
if (only !== undefined && !TARGETS.some((t) => t.name === only)) {
  process.stderr.write(`bench:sim: --only takes ${TARGETS.map((t) => t.name).join(" or ")}, got ${only}\n`);
  process.exit(2);
}

interface Perf {
  seconds: number;
  cpuSeconds: number;
  peakRssMB: number;
}
interface LastRound {
  meanDistance: number;
  distanceError: number;
  largestComponent: number;
  nodes: number;
  full: number;
}

function run(t: Target): Promise<{ perf: Perf; last: LastRound; load: number[] }> {
  const main = join(__dirname, "..", "sim", "main.js");
  const args = [main, "--nodes", String(t.nodes), "--tunnels", String(t.tunnels), "--rounds", String(t.rounds), "--seed", seed, "--json"];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    const load: number[] = [loadavg()[0]!];
    const sampler = setInterval(() => load.push(loadavg()[0]!), 5000);
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => (out += d));
    child.on("error", (e) => {
      clearInterval(sampler);
      reject(e);
    });
    child.on("close", (code) => {
      clearInterval(sampler);
      if (code !== 0) return reject(new Error(`the simulation of ${t.nodes} nodes exited with status ${code}`));
      const r = JSON.parse(out) as { perf: Perf; rounds: LastRound[] };
      resolve({ perf: r.perf, last: r.rounds[r.rounds.length - 1]!, load });
    });
  });
}

async function main(): Promise<void> {
  console.log(`Machine: ${cpus().length} CPUs, Node ${process.version}; load average at start ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  for (const t of TARGETS) {
    if (only !== undefined && t.name !== only) continue;
    const { perf, last, load } = await run(t);
    const meanLoad = load.reduce((s, l) => s + l, 0) / load.length;
    const timeOk = perf.seconds <= t.maxSeconds;
    const memOk = t.maxMB === null || perf.peakRssMB <= t.maxMB;
    console.log(
      `${t.nodes} nodes, K = ${t.tunnels}, ${t.rounds} rounds: ${perf.seconds.toFixed(1)} s wall (target <= ${t.maxSeconds} s: ${timeOk ? "met" : "MISSED"}), ` +
        `${perf.cpuSeconds.toFixed(1)} s CPU, peak RSS ${perf.peakRssMB.toFixed(0)} MB` +
        (t.maxMB === null ? "" : ` (target <= ${t.maxMB} MB: ${memOk ? "met" : "MISSED"})`) +
        `; load average during the run ${meanLoad.toFixed(2)} mean, ${Math.max(...load).toFixed(2)} max` +
        `; last round: mean distance ${last.meanDistance.toFixed(3)} ±${last.distanceError.toFixed(3)}, ` +
        `largest component ${last.largestComponent}/${last.nodes}, ${last.full} servers full`,
    );
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:sim: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
