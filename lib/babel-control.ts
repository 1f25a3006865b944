// babeld's local configuration interface (babeld -G PATH, a UNIX socket;
// babeld(8) "LOCAL CONFIGURATION INTERFACE"), the one place that speaks its
// vocabulary: the requests the daemon sends (moving routes off a retiring
// tunnel, restoring an interface's defaults, dump) and the parse of a dump
// (interfaces, neighbours, routes) that `vifibnet status` shows.
//
// babeld greets with "BABEL <version>" and informational lines ended by
// "ok", then answers each request line with data ending in "ok", "no" or
// "bad". One short connection per use: babeld serves few.

import { connect } from "node:net";
import type { Logger } from "./utils/log";

export class BabelControlError extends Error {}

/** How long one exchange may take; babeld answers in microseconds. */
export const BABEL_CONTROL_TIMEOUT_MS = 2_000;

/**
 * Sends `lines` to babeld at `socketPath`, one request each, in order, and
 * resolves when all were answered "ok", with each request's data lines (a
 * `dump`'s routes, say; most requests have none). Rejects with a BabelControlError
 * naming the first refused request, a connection failure, or the timeout.
 */
export function babelRequest(socketPath: string, lines: readonly string[], timeoutMs = BABEL_CONTROL_TIMEOUT_MS): Promise<string[][]> {
  for (const l of lines)
    if (/[\r\n]/.test(l)) return Promise.reject(new BabelControlError(`a babeld request is one line: ${JSON.stringify(l)}`));
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let buf = "";
    let next = -1; // -1: reading the greeting; then the index of the request awaiting its answer
    const answers: string[][] = [];
    const finish = (err: Error | null): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(answers);
    };
    const timer = setTimeout(() => finish(new BabelControlError(`babeld at ${socketPath} did not answer within ${timeoutMs} ms`)), timeoutMs);
    const send = (): void => {
      next++;
      if (next === lines.length) finish(null);
      else {
        answers.push([]);
        sock.write(`${lines[next]}\n`);
      }
    };
    sock.setEncoding("utf8");
    sock.on("error", (e) => finish(new BabelControlError(`babeld's control socket ${socketPath}: ${e.message}`)));
    sock.on("close", () => finish(new BabelControlError(`babeld closed its control socket ${socketPath} before answering`)));
    sock.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (next === -1) {
          if (line === "ok") send();
          else if (line === "no" || line === "bad") return finish(new BabelControlError(`babeld at ${socketPath} refused the connection (${line})`));
          continue;
        }
        if (line === "ok") send();
        else if (line === "no" || line === "bad") return finish(new BabelControlError(`babeld answered "${line}" to "${lines[next]}"`));
        else answers[next]!.push(line);
      }
    });
  });
}

/** rxcost of a retiring tunnel: far above any route's metric in an overlay (96 per hop). */
export const RETIRING_RXCOST = 4096;

/**
 * Requests that move routes off a tunnel shortly before it closes, while it
 * still carries traffic. babeld ignores new parameters for an interface it
 * has (its local interface can only flush one and declare it anew), so the
 * interface is flushed and declared again with a receive cost no route
 * should pay: our own routes through it move at once; the peer sees our
 * hellos restart (a new neighbour, unusable for two hellos), moves its
 * routes then, and afterwards hears the high cost in our IHUs. Link quality
 * keeps that cost finite while hellos are counted again, and makes our own
 * cost through the tunnel high as well. Without this the peer routes into
 * the closed tunnel until it misses our hellos (about 3 hello intervals:
 * docs/benchmarks.md).
 */
export function babelRetireLines(iface: string): string[] {
  return [`flush interface ${iface}`, `interface ${iface} rxcost ${RETIRING_RXCOST} link-quality true`];
}

/** Requests that give `iface` back babeld's defaults (wired, or wireless with -w) for its next tunnel. */
export function babelRestoreLines(iface: string, wireless: boolean): string[] {
  return [`interface ${iface} rxcost ${wireless ? 256 : 96} link-quality ${wireless ? "true" : "false"}`];
}

// ---- dump ------------------------------------------------------------------

export interface BabelNeighbour {
  address: string;
  iface: string;
  /** The hello history, 16 bits as babeld prints them ("ffff": every hello heard). */
  reach: string;
  rxcost: number;
  txcost: number;
  cost: number;
}

export interface BabelRoute {
  /** "2001:db8:42:6::/128". */
  prefix: string;
  installed: boolean;
  metric: number;
  /** The next hop's link-local address, and the interface. */
  via: string;
  iface: string;
}

export interface BabelDump {
  interfaces: Array<{ name: string; up: boolean }>;
  neighbours: BabelNeighbour[];
  routes: BabelRoute[];
  /** Prefixes babeld redistributes from this host (our node address). */
  xroutes: string[];
}

/**
 * Parses `dump` lines: "add <kind> <id> key value key value...", e.g.
 *   add neighbour 5609 address fe80::a2 if client1 reach ffff ureach 0000 rxcost 96 txcost 96 cost 96
 *   add route 5609 prefix 2001:db8:42:6::/128 from ::/0 installed yes id ... metric 96 refmetric 0 via fe80::a2 if client1
 * A line of another shape, or missing a field, is skipped.
 */
export function parseBabelDump(lines: readonly string[]): BabelDump {
  const dump: BabelDump = { interfaces: [], neighbours: [], routes: [], xroutes: [] };
  for (const line of lines) {
    const w = line.trim().split(/\s+/);
    if (w[0] !== "add" || w.length < 3) continue;
    const f = new Map<string, string>();
    for (let i = 3; i + 1 < w.length; i += 2) f.set(w[i]!, w[i + 1]!);
    const num = (k: string): number => (/^[0-9]+$/.test(f.get(k) ?? "") ? Number(f.get(k)) : NaN);
    if (w[1] === "interface") dump.interfaces.push({ name: w[2]!, up: f.get("up") === "true" });
    else if (w[1] === "neighbour") {
      const n = { address: f.get("address") ?? "", iface: f.get("if") ?? "", reach: f.get("reach") ?? "", rxcost: num("rxcost"), txcost: num("txcost"), cost: num("cost") };
      if (n.address && n.iface && [n.rxcost, n.txcost, n.cost].every(Number.isFinite)) dump.neighbours.push(n);
    } else if (w[1] === "route") {
      const r = { prefix: f.get("prefix") ?? "", installed: f.get("installed") === "yes", metric: num("metric"), via: f.get("via") ?? "", iface: f.get("if") ?? "" };
      if (r.prefix && r.iface && Number.isFinite(r.metric)) dump.routes.push(r);
    } else if (w[1] === "xroute" && f.has("prefix")) dump.xroutes.push(f.get("prefix")!);
  }
  return dump;
}

/**
 * The daemon's handle on its babeld: requests that report failure as false
 * (with a warning) rather than throwing, since babel routing is advice and a
 * babeld being restarted must not stop a tunnel refresh. `path` null: babeld
 * runs without a control socket (a state directory path too long for one).
 */
export class BabelControl {
  constructor(readonly path: string | null, private readonly wireless: boolean, private readonly logger: Logger) {}

  /** Moves babel's routes off `iface` (babelRetireLines). */
  retire(iface: string): Promise<boolean> {
    return this.send(babelRetireLines(iface));
  }

  /** Gives `iface` babel's default parameters back. */
  restore(iface: string): Promise<boolean> {
    return this.send(babelRestoreLines(iface, this.wireless));
  }

  /** babeld's tables; rejects (BabelControlError) when babeld does not answer. */
  async dump(): Promise<BabelDump> {
    if (this.path === null) throw new BabelControlError("babeld runs without a control socket (the --state path is too long for one)");
    const [lines] = await babelRequest(this.path, ["dump"]);
    return parseBabelDump(lines ?? []);
  }

  private async send(lines: string[]): Promise<boolean> {
    if (this.path === null) return false;
    try {
      await babelRequest(this.path, lines);
      return true;
    } catch (e) {
      this.logger.warn((e as Error).message);
      return false;
    }
  }
}
