// What the demo shows of a running overlay (harness/overlay.ts), read from
// the daemons' own status (`vifibnet status`, through each one's control
// socket): each node's client tunnels that are connected and to which node,
// and which other nodes answer a ping6 on their overlay address. Plus the
// table and the SVG.

import type { Overlay } from "../harness/overlay";

export interface NodeView {
  name: string;
  ns: string;
  address: string;
  ip: string;
  /** Client tunnels connected: interface → index of the peer node (-1: unknown peer). */
  tunnels: Array<{ iface: string; peer: number }>;
  /** Indexes of the other nodes that answer a ping6 from this one. */
  reaches: number[];
}

export const nodeName = (i: number): string => `node${i + 1}`;

/** One look at every node: its tunnels and whom it reaches (all pings in parallel, about 1 s). */
export async function observe(net: Overlay): Promise<NodeView[]> {
  return Promise.all(net.nodes.map(async (n) => {
    const tunnels = (await net.tunnelsUp(n.index)).map(({ iface, peer }) => ({ iface, peer }))
      .sort((a, b) => Number(a.iface.slice(6)) - Number(b.iface.slice(6)));
    const others = net.nodes.filter((o) => o.index !== n.index).map((o) => o.index);
    const ok = await Promise.all(others.map((j) => net.ping(n.index, j)));
    return { name: nodeName(n.index), ns: n.ns, address: n.address, ip: n.ip, tunnels, reaches: others.filter((_, k) => ok[k]) };
  }));
}

/** Unordered pairs of nodes joined by at least one tunnel up, "i-j" with i < j. */
export function edges(view: NodeView[]): Array<[number, number]> {
  const seen = new Set<string>();
  const out: Array<[number, number]> = [];
  view.forEach((v, i) => v.tunnels.forEach((t) => {
    if (t.peer < 0 || t.peer === i) return;
    const [a, b] = [Math.min(i, t.peer), Math.max(i, t.peer)];
    if (!seen.has(`${a}-${b}`)) {
      seen.add(`${a}-${b}`);
      out.push([a, b]);
    }
  }));
  return out.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}

export const allReachable = (view: NodeView[]): boolean => view.every((v) => v.reaches.length === view.length - 1);

/** The table's rows (without the header line). */
export function table(view: NodeView[]): string[] {
  const rows = [["node", "overlay address", "underlay", "client tunnels up", "reaches"]];
  for (const v of view) {
    const tunnels = v.tunnels.map((t) => `${t.iface}→${t.peer < 0 ? "?" : nodeName(t.peer)}`).join(" ") || "-";
    rows.push([v.name, v.address, v.ip, tunnels, `${v.reaches.length}/${view.length - 1}${v.reaches.length === view.length - 1 ? " ✓" : ""}`]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => [...r[c]!].length)));
  const line = (r: string[]): string => r.map((cell, c) => cell + " ".repeat(widths[c]! - [...cell].length)).join("  ").trimEnd();
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)];
}

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** The overlay as plain SVG: nodes on a circle (name, overlay address), one edge per pair joined by a tunnel. */
export function svg(view: NodeView[], title: string): string {
  const size = 640;
  const c = size / 2;
  const r = size / 2 - 130;
  const pos = view.map((_, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(view.length, 1);
    return { x: c + r * Math.cos(a), y: c + 20 + r * Math.sin(a), a };
  });
  const f = (n: number): string => n.toFixed(1);
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size + 40}" viewBox="0 0 ${size} ${size + 40}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${c}" y="28" text-anchor="middle" font-size="16">${esc(title)}</text>`,
    `<g class="edges" stroke="#2a7ab9" stroke-width="2.5">`,
  ];
  for (const [a, b] of edges(view))
    out.push(`<line class="tunnel" data-a="${esc(view[a]!.name)}" data-b="${esc(view[b]!.name)}" x1="${f(pos[a]!.x)}" y1="${f(pos[a]!.y)}" x2="${f(pos[b]!.x)}" y2="${f(pos[b]!.y)}"/>`);
  out.push(`</g>`, `<g class="nodes" font-size="13">`);
  view.forEach((v, i) => {
    const p = pos[i]!;
    const ok = v.reaches.length === view.length - 1;
    const lx = p.x + 34 * Math.cos(p.a);
    const ly = p.y + 34 * Math.sin(p.a);
    const anchor = Math.abs(Math.cos(p.a)) < 0.3 ? "middle" : Math.cos(p.a) > 0 ? "start" : "end";
    const dy = Math.sin(p.a) < -0.3 ? -12 : Math.sin(p.a) > 0.3 ? 12 : 0;
    out.push(
      `<g class="node" id="${esc(v.name)}">`,
      `<circle cx="${f(p.x)}" cy="${f(p.y)}" r="20" fill="${ok ? "#7bc47f" : "#f2c14e"}" stroke="#333" stroke-width="1.5"/>`,
      `<text x="${f(p.x)}" y="${f(p.y + 4)}" text-anchor="middle" font-weight="bold">${i + 1}</text>`,
      `<text x="${f(lx)}" y="${f(ly + dy)}" text-anchor="${anchor}"><tspan font-weight="bold">${esc(v.name)}</tspan><tspan x="${f(lx)}" dy="15">${esc(v.address)}</tspan></text>`,
      `</g>`,
    );
  });
  out.push(`</g>`, `<text x="${c}" y="${size + 28}" text-anchor="middle" font-size="12" fill="#555">edges: OpenVPN tunnels connected (from the daemons' status); green: reaches every other node</text>`, `</svg>`, "");
  return out.join("\n");
}
