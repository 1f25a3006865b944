// The README's main job: a real vifibnet overlay on this machine. With the
// network harness (harness/overlay.ts) it builds a hub namespace with the
// registry and a mail catcher, N node namespaces joined with vifibnet-setup,
// and starts a vifibnet daemon (OpenVPN + babeld) in each. While they
// converge it prints a live table of nodes, tunnels and reachability, and
// writes a picture of the overlay (SVG) from the daemons' own status. Ctrl-C,
// or --duration seconds after every pair is reachable, tears it all down.
// Needs root (namespaces, tun devices).

import { ArgumentParser } from "argparse";
import { cpSync, lstatSync, mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Lab } from "../harness/netns";
import { MAX_NODES, Overlay } from "../harness/overlay";
import { NodeView, allReachable, edges, observe, svg, table } from "./overlay-view";

interface Args { nodes: number; duration: number; hello: number; svg: string; keep: boolean; timeout: number }

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const say = (s: string): void => void process.stdout.write(s + "\n");

let net: Overlay | undefined;
let keep = false;

async function main(): Promise<number> {
  const parser = new ArgumentParser({ prog: "npm run demo --", description: "A vifibnet overlay on this machine: a registry and N nodes in network namespaces, converging live." });
  parser.add_argument("--nodes", { type: "int", default: 6, help: "How many nodes (default: %(default)s)" });
  parser.add_argument("--duration", { type: "float", default: 0, help: "Seconds to keep running once all pairs are reachable; 0 for until Ctrl-C (default: %(default)s)" });
  parser.add_argument("--hello", { type: "float", default: 2, help: "babel hello interval of the daemons, s (default: %(default)s)" });
  parser.add_argument("--svg", { default: "vifibnet-demo.svg", help: "Where to write the picture of the overlay (default: ./%(default)s)" });
  parser.add_argument("--keep", { action: "store_true", help: "Copy the network's files (certificates, daemon logs, registry database) to a directory before teardown" });
  parser.add_argument("--timeout", { type: "float", default: 180, help: "With --duration: give up (exit 1) if not all pairs are reachable after this many seconds (default: %(default)s)" });
  const args = parser.parse_args() as Args;
  if (!(args.nodes >= 2 && args.nodes <= MAX_NODES)) parser.error(`argument --nodes: from 2 to ${MAX_NODES} (the underlay is one /24), not ${args.nodes}`);
  if (process.getuid?.() !== 0) {
    process.stderr.write("npm run demo: needs root (network namespaces and tun devices); run it as root, e.g. sudo npm run demo\n");
    return 1;
  }
  const svgPath = resolve(args.svg);
  keep = args.keep;

  // The harness's namespaces tear themselves down on process exit. Its own
  // signal handlers exit 130 at once; the demo's wait for an orderly teardown
  // (daemons stopped with SIGTERM) and exit 0.
  const theirs = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  new Lab().destroy(); // installs the harness's handlers, nothing else
  for (const s of SIGNALS) for (const l of process.listeners(s)) if (!theirs.get(s)!.has(l)) process.removeListener(s, l as () => void);
  let stop: (() => void) | undefined;
  let stopping = false;
  const stopped = new Promise<void>((r) => (stop = r));
  for (const s of SIGNALS)
    process.on(s, () => {
      if (stopping) return; // a second Ctrl-C while tearing down: ignored, the teardown is bounded
      stopping = true;
      say(`\n${s}: tearing down`);
      if (!net) process.exit(0); // still building: the exit handlers delete the namespaces and files
      stop!();
    });

  const t0 = Date.now();
  say(`Building a vifibnet overlay: a registry and ${args.nodes} nodes, each in its own network namespace on the bridge 198.51.100.0/24`);
  say(`(nodes join with vifibnet-setup, then vifibnet starts OpenVPN tunnels and babeld; hello ${args.hello} s)`);
  net = await Overlay.create({ nodes: args.nodes, hello: args.hello, connectionCount: 4, tunnelRefresh: 5, peersDbRefresh: 5, refreshRate: 0 });
  const started = Date.now();
  if (stopping) stop!();
  say(`Built in ${secs(started - t0)}: registry at 198.51.100.1:${net.registryPort} (namespace ${net.hub}), daemons started.`);
  say(`Look inside: ip netns exec ${net.nodes[0]!.ns} ping -6 ${net.nodes[1]!.address}`);
  say(`Picture: ${svgPath}`);

  const tty = process.stdout.isTTY === true;
  let convergedAt: number | null = null;
  let drawn = 0;
  let lastBody = "";
  let view: NodeView[] = [];
  let done = false;
  void stopped.then(() => (done = true));
  const timeoutMs = args.timeout * 1000;
  while (!done) {
    const round = Date.now();
    net.checkDaemons();
    view = await observe(net);
    if (done) break;
    const now = Date.now();
    if (convergedAt === null && allReachable(view)) convergedAt = now;
    const tunnels = edges(view).length;
    const header = `vifibnet demo  ${args.nodes} nodes  ${tunnels} tunnel${tunnels === 1 ? "" : "s"}  elapsed ${secs(now - started)}` +
      (convergedAt !== null ? `  all pairs reachable after ${secs(convergedAt - started)}` : "  converging...") +
      (convergedAt !== null && args.duration > 0 ? `  (exit in ${Math.max(0, args.duration - (now - convergedAt) / 1000).toFixed(0)} s)` : "");
    const body = table(view);
    const lines = [header, ...body, tty ? "Ctrl-C to stop" : ""];
    if (tty) {
      process.stdout.write((drawn ? `\x1b[${drawn}A\x1b[J` : "\n") + lines.join("\n") + "\n");
      drawn = lines.length;
    } else if (body.join("\n") !== lastBody || (convergedAt === now)) {
      process.stdout.write("\n" + lines.join("\n"));
    }
    lastBody = body.join("\n");
    const title = `vifibnet overlay: ${args.nodes} nodes, ${tunnels} tunnel${tunnels === 1 ? "" : "s"}` + (convergedAt !== null ? `, all pairs reachable after ${secs(convergedAt - started)}` : ", converging");
    writeFileSync(svgPath + ".tmp", svg(view, title));
    renameSync(svgPath + ".tmp", svgPath);
    if (convergedAt !== null && args.duration > 0 && now - convergedAt >= args.duration * 1000) break;
    if (convergedAt === null && args.duration > 0 && now - started > timeoutMs)
      throw new Error(`not all pairs reachable after ${args.timeout} s (--timeout); unreachable: ` +
        view.map((v, i) => `${v.name}→${view.filter((_, j) => j !== i && !v.reaches.includes(j)).map((o) => o.name).join(",")}`).filter((s) => !s.endsWith("→")).join(" "));
    await Promise.race([sleep(Math.max(0, 2_000 - (Date.now() - round))), stopped]);
  }
  const n = edges(view).length;
  say(`\nOverlay picture: ${svgPath} (${view.length} nodes, ${n} tunnel${n === 1 ? "" : "s"})`);
  return 0;
}

/**
 * Copies the network's files if --keep, then destroys the overlay (daemons
 * SIGTERMed, namespaces and files deleted). False if the copy failed.
 */
async function finish(): Promise<boolean> {
  if (!net) return true;
  let kept = true;
  if (keep) {
    const dir = mkdtempSync(join(tmpdir(), "vifibnet-demo-"));
    try {
      // Regular files, directories and links only: babeld's control socket cannot be copied.
      const copyable = (src: string): boolean => {
        try {
          const st = lstatSync(src);
          return st.isFile() || st.isDirectory() || st.isSymbolicLink();
        } catch {
          return false; // gone meanwhile
        }
      };
      cpSync(net.tmp, dir, { recursive: true, filter: copyable });
      for (const n of net.nodes) writeFileSync(join(dir, `node-${n.index}`, "vifibnet.stderr"), n.daemon?.err() ?? "");
      say(`Kept the network's files (certificates, logs, registry database) in ${dir}`);
    } catch (e) {
      process.stderr.write(`demo: could not keep the files in ${dir}: ${e instanceof Error ? e.message : String(e)}\n`);
      kept = false;
    }
  }
  say("Tearing down: stopping the daemons, deleting the namespaces...");
  const t = Date.now();
  await net.destroy();
  say(`Done in ${secs(Date.now() - t)}.`);
  return kept;
}

main().then(
  async (code) => {
    const kept = await finish();
    process.exit(kept ? code : 1);
  },
  async (e: unknown) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
    try {
      await finish();
    } finally {
      process.exit(1);
    }
  },
);
