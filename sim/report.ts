// The simulator's text report: a line per round as it completes, then the
// kill experiments. The same figures, unrounded, are what --json prints.

import type { GraphMetrics, KillResult, RoundMetrics, Spread } from "./network";
import type { SimResult } from "./run";

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
const spread = (s: Spread): string => `${s.min}/${s.mean.toFixed(2)}/${s.max}`;
const distance = (g: GraphMetrics): string =>
  g.sources >= g.nodes ? g.meanDistance.toFixed(3) : `${g.meanDistance.toFixed(3)} ±${g.distanceError.toFixed(3)}`;

/** Fixed-width columns (a row streams out before the next round is known). */
function columns(widths: number[]): (cells: string[]) => string {
  return (cells) => cells.map((c, i) => c.padStart(widths[i]!)).join("  ");
}

export function describe(c: SimResult["config"]): string {
  const capped = c.clientTunnels < c.tunnels ? ` (the daemon opens at most ${c.clientTunnels})` : "";
  const how = c.sources >= c.nodes ? "distances and route counts exact (from every node)" : `distances and route counts from ${c.sources} random nodes per round`;
  return (
    `${c.nodes} nodes, ${c.tunnels} client tunnels wanted each${capped}: --connection-count ${c.connectionCount} (--max-clients ${c.maxClients}), ` +
    `--refresh-rate ${c.refreshRate}, --tunnel-refresh ${c.tunnelRefreshS} s, --peers-db-refresh ${c.peersDbRefreshS} s, --hello ${c.helloS} s; ` +
    `${c.rounds} rounds, seed ${c.seed}; ${how}${c.ties === "random" ? "; ties between equal routes in a random order" : ""}`
  );
}

const ROUND_HEADER = ["round", "mean distance", "max", "largest component", "out min/mean/max", "in min/mean/max", "full", "opened", "refused", "replaced"];
const roundLine = columns([5, 15, 3, 19, 16, 16, 7, 7, 7, 8]);

export function roundHeader(): string {
  return roundLine(ROUND_HEADER);
}

export function roundRow(m: RoundMetrics): string {
  return roundLine([
    String(m.round), distance(m), String(m.maxDistance), `${m.largestComponent} (${pct(m.largestComponent / m.nodes)})`,
    spread(m.out), spread(m.in), String(m.full), String(m.opened), String(m.refused), String(m.replaced),
  ]);
}

const killLine = columns([14, 8, 7, 15, 15, 32, 15]);

export function killRows(kill: readonly KillResult[]): string[] {
  return [
    killLine(["killed", "fraction", "nodes", "pairs connected", "mean distance", "after a refresh: pairs connected", "mean distance"]),
    ...kill.map((k) =>
      killLine([
        k.kind === "random" ? "at random" : "best connected", String(k.fraction), String(k.killed),
        pct(k.before.connectedPairs), distance(k.before), pct(k.after.connectedPairs), distance(k.after),
      ]),
    ),
  ];
}

/** The last round's incoming tunnels per node, as "tunnels:nodes" pairs. */
export function inDegreeLine(m: RoundMetrics): string {
  return `incoming tunnels per node after round ${m.round} (tunnels:nodes): ${m.inHistogram.map((c, d) => `${d}:${c}`).join(" ")}`;
}

/** What the columns mean, printed under the table. */
export const LEGEND = [
  "Each round is one --tunnel-refresh of every node; figures are taken once babel has settled (retiring tunnels drained).",
  "mean distance: hops between connected pairs (± standard error when sampled); max: longest distance seen;",
  "out/in: working client tunnels a node opened / that others opened to it; full: servers at --max-clients (retiring tunnels count);",
  "opened/refused: tunnels started / refused by a full server or a gone peer (closed, peer -1, at the next refresh); replaced: weakest tunnels retired.",
];
