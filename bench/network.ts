// Network benchmark (npm run bench:network, as root): a real vifibnet network
// on one machine (harness/overlay.ts: a hub namespace with the registry
// and an SMTP sink, every node in its own namespace, joined with
// vifibnet-setup, daemons run with the legacy flags), --hello 2 throughout.
//
//   convergence  time from the daemons' start (Overlay.create returns just
//                after starting them) to the first round in which every node
//                pings every other node's overlay address (one ping6 each,
//                -W1, all pairs in a round), for 6 nodes and for --big N
//                (default 20) nodes. Bounded: if the big network has not
//                converged in --big-timeout seconds (default 240), the
//                fewest failing pairs seen in a round are reported instead.
//   failover     on the converged 6-node network, node 5's underlay link is
//                cut (its veth down at both ends); time until all 10 pairs
//                among nodes 0..4 ping in the same round (polled every
//                250 ms), in hello intervals. Target <= 3 hellos (babel alone
//                takes 3-4: a neighbour is dropped after missed hellos).
//   refresh      a second 6-node network with --refresh-rate 0.5 and
//                --tunnel-refresh 20 (10 hellos, the ratio of the legacy
//                defaults is 20; option --tunnel-refresh S): every refresh
//                retires half the client tunnels and opens new ones. Once all
//                pairs ping, node 0 runs `ping -6 -i 0.2 -c COUNT -W1` to
//                node 1 (inside its namespace, bounded), over
//                --refresh-window seconds (default 80: 4 refreshes); the
//                retired tunnels the daemons report closed (`vifibnet
//                status`, refresh.closed.retired) during the window count
//                the replaced tunnels. Target: 0 packets lost.
//
// Networks are destroyed on every exit (error, Ctrl-C: the Lab removes the
// namespaces and the processes in them); every wait is bounded.
//
// Usage: node dist/bench/network.js [--big N (20)] [--big-timeout S (240)] [--refresh-window S (80)]
//        [--tunnel-refresh S (20; the refresh scenario's)]
//        [--only small|refresh|big]

import { spawn } from "node:child_process";
import { Overlay } from "../harness/overlay";

const HELLO = 2;
const SMALL = 6;

function argNumber(flag: string, dflt: number): number {
  const at = process.argv.indexOf(flag);
  if (at < 0) return dflt;
  const n = Number(process.argv[at + 1]);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} takes a positive number`);
  return n;
}

const BIG = Math.floor(argNumber("--big", 20));
const BIG_TIMEOUT = argNumber("--big-timeout", 240) * 1000;
const REFRESH_WINDOW = argNumber("--refresh-window", 80);
const REFRESH_EVERY = argNumber("--tunnel-refresh", 20); // of the refresh scenario
const ONLY = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] ?? "" : ""; // small | refresh | big
const runs = (part: string): boolean => ONLY === "" || ONLY === part;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const hellos = (ms: number): string => `${(ms / 1000 / HELLO).toFixed(1)}`;

const live = new Set<Overlay>();
async function withNet<T>(opts: Parameters<typeof Overlay.create>[0], f: (net: Overlay, t0: number) => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const net = await Overlay.create(opts);
  live.add(net);
  try {
    return await f(net, t0);
  } finally {
    await net.destroy();
    live.delete(net);
  }
}

interface Converge { ms: number | null; pairs: number; best: number; rounds: number }

/** Polls rounds until all pairs among `among` ping, or the timeout; never throws on timeout. */
async function converge(net: Overlay, among: number[], t0: number, timeoutMs: number, everyMs: number): Promise<Converge> {
  const pairs = (among.length * (among.length - 1)) / 2;
  let best = pairs;
  let rounds = 0;
  while (Date.now() - t0 < timeoutMs) {
    net.checkDaemons();
    const start = Date.now();
    const bad = await net.failingPairs(among);
    rounds++;
    best = Math.min(best, bad.length);
    if (bad.length === 0) return { ms: start - t0 + (Date.now() - start) / 2, pairs, best: 0, rounds };
    await sleep(Math.max(0, everyMs - (Date.now() - start)));
  }
  return { ms: null, pairs, best, rounds };
}

const closedCount = (net: Overlay): Promise<number[]> => Promise.all(net.nodes.map(async (n) => (await net.status(n.index)).refresh.closed.retired));

/** Received icmp_seq numbers of a ping's output; the lost ones, as runs "a-b". */
function lostRuns(raw: string, sent: number): string[] {
  const got = new Set([...raw.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1])));
  const runs: string[] = [];
  for (let s = 1; s <= sent; s++) {
    if (got.has(s)) continue;
    let e = s;
    while (e + 1 <= sent && !got.has(e + 1)) e++;
    runs.push(s === e ? `${s}` : `${s}-${e}`);
    s = e;
  }
  return runs;
}

function pingSeries(net: Overlay, i: number, j: number, count: number): Promise<{ sent: number; received: number; raw: string }> {
  return new Promise((resolve) => {
    const p = spawn("ip", ["netns", "exec", net.nodes[i]!.ns, "ping", "-6", "-n", "-i", "0.2", "-W", "1", "-c", String(count), net.nodes[j]!.address], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
    const timer = setTimeout(() => p.kill("SIGINT"), count * 200 + 15_000);
    const done = (): void => {
      clearTimeout(timer);
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      resolve({ sent: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, raw: out });
    };
    p.on("error", done);
    p.on("close", done);
  });
}

interface Row { what: string; measured: string; target: string; verdict: string }

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error("needs root: network namespaces and tap devices");
    return 2;
  }
  const rows: Row[] = [];
  const print = (r: Row): void => {
    rows.push(r);
    console.error(`# ${r.what}: ${r.measured} ${r.verdict}`);
  };

  // (1, 2) 6 nodes: convergence, then failover.
  if (runs("small")) await withNet({ nodes: SMALL, hello: HELLO, connectionCount: 4, tunnelRefresh: 5, peersDbRefresh: 5 }, async (net, t0) => {
    console.error(`# ${SMALL}-node network built and daemons started in ${secs(Date.now() - t0)}`);
    const started = Date.now();
    const all = net.nodes.map((n) => n.index);
    const c = await converge(net, all, started, 120_000, 500);
    print({ what: `convergence, ${SMALL} nodes (${c.pairs} pairs)`, measured: c.ms === null ? `not in 120 s (best round: ${c.best} failing)` : `${secs(c.ms)} = ${hellos(c.ms)} hellos`, target: "", verdict: c.ms === null ? "not converged" : "" });
    if (c.ms === null) return;
    await sleep(3_000);
    const cut = SMALL - 1;
    const others = all.filter((i) => i !== cut);
    const direct = [...(await net.directPairs())].filter((p) => p.split("-").map(Number).includes(cut));
    const t2 = Date.now();
    net.cutUnderlay(cut);
    const f = await converge(net, others, t2, 60_000, 250);
    // Still all pinging past --ping-exit (4 hellos) and a tunnel refresh?
    await sleep(4 * HELLO * 1000 + 6_000);
    const after = await net.failingPairs(others);
    const ok = f.ms !== null && f.ms <= 3 * HELLO * 1000;
    print({
      what: `failover: node ${cut} cut (direct tunnels ${direct.join(" ") || "none"}), all ${f.pairs} pairs among the others ping`,
      measured: f.ms === null ? `not in 60 s (best: ${f.best} failing)` : `${secs(f.ms)} = ${hellos(f.ms)} hellos${after.length ? `; ${after.length} pairs failing again 14 s later` : ""}`,
      target: "<= 3 hellos", verdict: ok ? "met" : "missed",
    });
  });

  // (3) refresh: packets lost while tunnels are replaced.
  if (runs("refresh")) await withNet({ nodes: SMALL, hello: HELLO, connectionCount: 4, tunnelRefresh: REFRESH_EVERY, peersDbRefresh: 5, refreshRate: 0.5 }, async (net) => {
    const c = await converge(net, net.nodes.map((n) => n.index), Date.now(), 120_000, 500);
    if (c.ms === null) {
      print({ what: "refresh: ping 0 -> 1", measured: `network did not converge (best ${c.best} failing)`, target: "0 lost", verdict: "not run" });
      return;
    }
    await sleep(REFRESH_EVERY * 1000); // past the first refresh after convergence
    const count = Math.round(REFRESH_WINDOW / 0.2);
    const before = await closedCount(net);
    const r = await pingSeries(net, 0, 1, count);
    const closed = (await closedCount(net)).map((n, k) => n - before[k]!);
    const total = closed.reduce((a, b) => a + b, 0);
    const lost = r.sent - r.received;
    print({
      what: `refresh: ping -6 -i 0.2 node 0 -> 1 over ${REFRESH_WINDOW} s, --refresh-rate 0.5, --tunnel-refresh ${REFRESH_EVERY} (${total} tunnels replaced in the window; node 0: ${closed[0]}, node 1: ${closed[1]})`,
      measured: `${r.sent} sent, ${lost} lost`, target: "0 lost", verdict: r.sent > 0 && lost === 0 && total >= 2 ? "met" : r.sent === 0 ? "no result" : lost === 0 ? "0 lost, but < 2 replacements" : "missed",
    });
    if (r.sent === 0) console.error(r.raw);
    else console.error(`# refresh: lost icmp_seq (0.2 s apart): ${lostRuns(r.raw, r.sent).join(" ") || "none"}`);
  });

  // (1) big network.
  if (runs("big")) await withNet({ nodes: BIG, hello: HELLO, connectionCount: 4, tunnelRefresh: 5, peersDbRefresh: 5 }, async (net, t0) => {
    console.error(`# ${BIG}-node network built and daemons started in ${secs(Date.now() - t0)}`);
    const c = await converge(net, net.nodes.map((n) => n.index), Date.now(), BIG_TIMEOUT, 1000);
    print({
      what: `convergence, ${BIG} nodes (${c.pairs} pairs)`,
      measured: c.ms === null ? `not in ${BIG_TIMEOUT / 1000} s; best round ${c.pairs - c.best}/${c.pairs} pairs ping` : `${secs(c.ms)} = ${hellos(c.ms)} hellos`,
      target: "", verdict: c.ms === null ? "not converged" : "",
    });
  });

  console.log("| measurement (--hello 2) | measured | target | |");
  console.log("| --- | --- | --- | --- |");
  for (const r of rows) console.log(`| ${r.what} | ${r.measured} | ${r.target} | ${r.verdict} |`);
  return rows.some((r) => r.verdict === "missed") ? 1 : 0;
}

main().then((code) => process.exit(code), async (e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  for (const net of live) await net.destroy().catch(() => undefined);
  process.exit(1);
});
