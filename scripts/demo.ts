// The README's main job, until the overlay demo exists: a vifibnet network's
// control plane on this machine. It creates a CA, starts the registry, has N
// nodes join with vifibnet-setup (the token mail caught locally and typed
// back, as a user would), declares their addresses and shows what the
// registry hands out. Everything stays on loopback and under one temporary
// directory, removed at the end (Ctrl-C, or --duration).

import { ArgumentParser } from "argparse";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RpcClient } from "../lib/rpc-client";
import { caNetwork } from "../lib/utils/x509";
import { cnToPrefix, nodeAddress } from "../lib/utils/address";
import { startSmtpSink } from "../test/helpers/smtp-sink";

const ROOT = join(__dirname, "..", "..");
const bin = (name: string): string => join(ROOT, "bin", name);

interface Args { nodes: number; port: number; duration: number; keep: boolean }

function step(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

const shellWords = (words: string[]): string => words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w}'`)).join(" ");

function run(cmd: string, args: string[]): string {
  process.stdout.write(`$ ${shellWords([cmd.replace(ROOT + "/", ""), ...args])}\n`);
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return r.stdout;
}

async function main(): Promise<void> {
  const parser = new ArgumentParser({ prog: "npm run demo --", description: "A vifibnet registry with nodes joining it, on this machine." });
  parser.add_argument("--nodes", { type: "int", default: 6, help: "How many nodes join (default: %(default)s)" });
  parser.add_argument("--port", { type: "int", default: 0, help: "Registry port (default: a free one)" });
  parser.add_argument("--duration", { type: "int", default: 0, help: "Seconds to keep running, 0 for until Ctrl-C (default: %(default)s)" });
  parser.add_argument("--keep", { action: "store_true", help: "Keep the demo's directory at the end" });
  const args = parser.parse_args() as Args;

  const dir = mkdtempSync(join(tmpdir(), "vifibnet-demo-"));
  const children: ChildProcess[] = [];
  const sink = await startSmtpSink();
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(running.map((c) => new Promise<void>((resolve) => {
      const force = setTimeout(() => c.kill("SIGKILL"), 10_000);
      c.once("exit", () => { clearTimeout(force); resolve(); });
      c.kill("SIGTERM");
    })));
    await sink.close();
    if (args.keep) process.stdout.write(`\nKept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  };
  process.on("SIGINT", () => void cleanup().then(() => process.exit(0)));
  process.on("SIGTERM", () => void cleanup().then(() => process.exit(0)));

  try {
    step("The network's certificate authority, for 2001:db8:42::/48");
    process.stdout.write(run(bin("vifibnet-ca"), ["--prefix", "2001:db8:42::/48", "--dir", dir, "--cn", "vifibnet demo CA"]));

    step("The registry (token mail goes to a local catcher)");
    const registry = spawn(bin("vifibnet-registry"), [String(args.port), "--db", join(dir, "registry.db"), "--ca", join(dir, "ca.crt"), "--key", join(dir, "ca.key"), "--mailhost", `127.0.0.1:${sink.port}`, "-v", "1"], { stdio: ["ignore", "ignore", "pipe"] });
    children.push(registry);
    const port = await new Promise<number>((resolve, reject) => {
      let err = "";
      registry.stderr!.setEncoding("utf8");
      registry.stderr!.on("data", (c: string) => {
        err += c;
        const m = /listening on 0\.0\.0\.0:(\d+)/.exec(err);
        if (m) resolve(Number(m[1]));
      });
      registry.once("exit", () => reject(new Error(`the registry stopped: ${err}`)));
    });
    process.stdout.write(`registry listening on 0.0.0.0:${port} and [::]:${port}\n`);
    const rpc = new RpcClient("127.0.0.1", port);
    const network = caNetwork(readFileSync(join(dir, "ca.crt"), "utf8"));

    step(`${args.nodes} nodes join with vifibnet-setup`);
    const nodes: Array<{ name: string; cn: string; address: string; endpoint: string }> = [];
    for (let i = 1; i <= args.nodes; i++) {
      const name = `node${i}`;
      const nodeDir = join(dir, name);
      const setupArgs = ["--server", "127.0.0.1", "--port", String(port), "--dir", nodeDir, "-r", "O", "vifibnet demo", "-r", "CN", name, ...(i === 1 ? ["--no-boot"] : [])];
      process.stdout.write(`$ ${shellWords(["bin/vifibnet-setup", ...setupArgs])}\n`);
      const started = Date.now();
      const setup = spawn(bin("vifibnet-setup"), setupArgs, { stdio: ["pipe", "pipe", "pipe"] });
      children.push(setup);
      let out = "";
      setup.stdout!.on("data", (c: Buffer) => (out += c.toString()));
      setup.stderr!.on("data", (c: Buffer) => (out += c.toString()));
      setup.stdin!.write(`${name}@example.com\n`);
      const mail = await sink.next(30_000);
      const token = /Your token : ([a-z]{8})/.exec(mail.raw)![1]!;
      setup.stdin!.end(`${token}\n`);
      const code = await new Promise<number | null>((resolve) => setup.once("exit", resolve));
      if (code !== 0) throw new Error(`setup of ${name} failed:\n${out}`);
      const cert = new X509Certificate(readFileSync(join(nodeDir, "cert.crt")));
      const cn = /CN=(\d+\/\d+)/.exec(cert.subject)![1]!;
      const address = nodeAddress(network, cnToPrefix(cn)!);
      const endpoint = `198.51.100.${i},1194,udp`;
      // What the daemon does at each peers DB refresh: declare, then ask for peers.
      await rpc.call("declare", [[address, endpoint]]);
      nodes.push({ name, cn, address, endpoint });
      process.stdout.write(`  ${name}: token ${token} by mail, certificate CN ${cn}, node address ${address} (${Date.now() - started} ms)\n`);
    }

    step("What the registry knows");
    const rows = [["node", "CN", "overlay address", "advertised endpoint"], ...nodes.map((n) => [n.name, n.cn, n.address, n.endpoint])];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) process.stdout.write("  " + r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ") + "\n");
    const peers = (await rpc.call("getPeerList", [3, nodes[0]!.address])) as Array<[string, string]>;
    process.stdout.write(`\n  getPeerList(3) for ${nodes[0]!.name}: ${peers.map(([p, a]) => `${p} → ${a}`).join(", ")}\n`);

    step("Running");
    process.stdout.write(`Try it from Python, as legacy clients do:\n  python3 -c "import xmlrpc.client as x; print(x.ServerProxy('http://127.0.0.1:${port}').getPeerList(5, '${nodes[0]!.address}'))"\n`);
    process.stdout.write(args.duration > 0 ? `Stopping in ${args.duration} s.\n` : "Ctrl-C stops the demo and removes its files.\n");
    await new Promise<void>((resolve, reject) => {
      registry.once("exit", () => reject(new Error("the registry stopped")));
      if (args.duration > 0) setTimeout(resolve, args.duration * 1000);
    });
  } finally {
    await cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`demo: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
