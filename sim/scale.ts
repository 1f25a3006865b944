// npm run simulate:scale [-- --nodes 100,1000 --tunnels 5,10 --kill 0.1,0.3 --rounds R --seed S]
// The tables of docs/scale.md: for every N and K, the network after R
// rounds, then the kill experiments; Markdown on stdout, progress on stderr.

import { ArgumentParser } from "argparse";
import { DEFAULT_ROUNDS, DEFAULT_SOURCES, simulate, type SimResult } from "./run";

const list = (text: string): number[] => {
  const xs = text.split(",").map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x <= 0)) throw new TypeError(`not a list of positive numbers: ${text}`);
  return xs;
};

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const dist = (mean: number, error: number): string => (error > 0 ? `${mean.toFixed(2)} ±${error.toFixed(3)}` : mean.toFixed(2));

function networkRow(r: SimResult): string {
  const m = r.rounds[r.rounds.length - 1]!;
  // Mean distance of a random graph of the same mean degree d: ln N / ln(d - 1).
  const degree = m.out.mean + m.in.mean;
  const randomGraph = Math.log(m.nodes) / Math.log(degree - 1);
  const noIncoming = (m.inHistogram[0] ?? 0) / m.nodes;
  return `| ${m.nodes} | ${r.config.tunnels} (${r.config.clientTunnels}) | ${dist(m.meanDistance, m.distanceError)} | ${randomGraph.toFixed(2)} | ${m.maxDistance} | ${pct(m.largestComponent / m.nodes)} | ${m.out.mean.toFixed(2)} | ${m.in.min}/${m.in.max} | ${pct(m.full / m.nodes)} | ${pct(noIncoming)} | ${pct(m.opened === 0 ? 0 : m.refused / m.opened)} |`;
}

function killRows(r: SimResult): string[] {
  const rows: string[] = [];
  for (const random of r.kill.filter((k) => k.kind === "random")) {
    const best = r.kill.find((k) => k.kind === "best" && k.fraction === random.fraction)!;
    const cell = (g: typeof random.before): string => `${pct(g.connectedPairs)}, ${dist(g.meanDistance, g.distanceError)}`;
    rows.push(`| ${r.config.nodes} | ${r.config.tunnels} | ${random.fraction} | ${cell(random.before)} | ${cell(random.after)} | ${cell(best.before)} | ${cell(best.after)} |`);
  }
  return rows;
}

function main(argv: string[]): void {
  const p = new ArgumentParser({ prog: "simulate:scale", description: "The tables of docs/scale.md." });
  p.add_argument("--nodes", { type: list, default: [100, 1000, 10_000, 100_000], metavar: "N,N...", help: "Network sizes (default: 100,1000,10000,100000)" });
  p.add_argument("--tunnels", { type: list, default: [5, 10, 20], metavar: "K,K...", help: "Client tunnels wanted (default: 5,10,20)" });
  p.add_argument("--kill", { type: list, default: [0.1, 0.3, 0.5], metavar: "F,F...", help: "Kill fractions (default: 0.1,0.3,0.5)" });
  p.add_argument("--rounds", { type: "int", default: DEFAULT_ROUNDS, metavar: "R", help: "Rounds (default: %(default)s)" });
  p.add_argument("--seed", { type: "int", default: 1, metavar: "S", help: "Seed (default: %(default)s)" });
  p.add_argument("--sources", { type: "int", default: DEFAULT_SOURCES, metavar: "S", help: "BFS sources per round (default: %(default)s)" });
  const a = p.parse_args(argv) as { nodes: number[]; tunnels: number[]; kill: number[]; rounds: number; seed: number; sources: number };
  for (const f of a.kill) if (!(f < 1)) p.error(`argument --kill: fractions below 1, got ${f}`);
  if (a.nodes.some((n) => !Number.isInteger(n) || n < 2)) p.error("argument --nodes: whole numbers, 2 or more");
  if (a.tunnels.some((k) => !Number.isInteger(k))) p.error("argument --tunnels: whole numbers");

  const results: SimResult[] = [];
  for (const nodes of a.nodes)
    for (const tunnels of a.tunnels) {
      const start = Date.now();
      results.push(simulate({ nodes, tunnels, rounds: a.rounds, seed: a.seed, sources: a.sources, kill: a.kill }));
      process.stderr.write(`${nodes} nodes, K = ${tunnels}: ${((Date.now() - start) / 1000).toFixed(0)} s\n`);
    }
  const c = results[0]!.config;
  const out = [
    `After ${a.rounds} rounds (one --tunnel-refresh of every node each), seed ${a.seed}, --refresh-rate ${c.refreshRate}, ` +
      `--tunnel-refresh ${c.tunnelRefreshS} s, --peers-db-refresh ${c.peersDbRefreshS} s; distances exact up to ${a.sources} nodes, ` +
      `from ${a.sources} random nodes per round above (± standard error).`,
    "",
    "| N | K (client tunnels) | mean distance | random graph | max | largest component | out mean | in min/max | servers full | no incoming | opens refused |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...results.map(networkRow),
    "",
    "Kill experiments, after the last round: share of the surviving pairs still connected, and their mean distance; right after the kill, and after one more refresh of the survivors.",
    "",
    "| N | K | F | at random | after a refresh | best connected | after a refresh |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...results.flatMap(killRows),
  ];
  process.stdout.write(out.join("\n") + "\n");
}

main(process.argv.slice(2));
