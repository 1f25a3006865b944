// Network namespaces for process-level tests: a few namespaces with unique
// names (vfb-<pid>-<n>), joined by veth pairs with documentation addresses
// (198.51.100.0/24), commands run inside with `ip netns exec`. Nothing
// outside the namespaces is touched. Teardown kills every process left in
// them and deletes them; it runs from the test's after() hook and, as a last
// resort, from process exit and signal handlers.

import assert from "node:assert/strict";
import { ChildProcess, SpawnOptions, spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./paths";

/** What a vifibnet network in namespaces needs (Debian packages). */
export const OVERLAY_PACKAGES = ["openvpn", "babeld", "iproute2", "iputils-ping"] as const;
/** And a NAT router with a UPnP gateway. */
export const NAT_PACKAGES = ["nftables", "miniupnpd-nftables", "miniupnpc", "iproute2"] as const;

/** Installs the missing ones (scripts/install-deps.sh); fails the calling test if that fails. */
export function installPackages(packages: readonly string[]): void {
  const r = spawnSync(join(ROOT, "scripts", "install-deps.sh"), [...new Set(packages)], { encoding: "utf8", timeout: 600_000 });
  assert.equal(r.status, 0, `install-deps failed: ${r.stderr}`);
}

const IP = "ip";
let counter = 0;
const LIVE = new Set<Lab>();

function run(args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(IP, args, { encoding: "utf8", timeout: 15_000 });
  return { ok: r.status === 0, out: r.stdout ?? "", err: r.stderr ?? "" };
}

function must(args: string[]): string {
  const r = run(args);
  if (!r.ok) throw new Error(`ip ${args.join(" ")}: ${r.err.trim()}`);
  return r.out;
}

let handlersInstalled = false;
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => LIVE.forEach((l) => l.destroy()));
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.once(sig, () => {
      LIVE.forEach((l) => l.destroy());
      process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
    });
}

export class Lab {
  readonly names: string[] = [];
  private destroyed = false;

  constructor() {
    installHandlers();
    LIVE.add(this);
  }

  /** A new namespace with its loopback up; returns its name. */
  add(): string {
    const name = `vfb-${process.pid}-${counter++}`;
    must(["netns", "add", name]);
    this.names.push(name);
    must(["-n", name, "link", "set", "lo", "up"]);
    return name;
  }

  /** A veth pair between two namespaces, "eth<i>" at each end, with IPv4 addresses like "198.51.100.1/24". */
  link(a: string, addrA: string, b: string, addrB: string, dev = "eth0"): void {
    must(["-n", a, "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", b]);
    must(["-n", a, "addr", "add", addrA, "dev", dev]);
    must(["-n", b, "addr", "add", addrB, "dev", dev]);
    must(["-n", a, "link", "set", dev, "up"]);
    must(["-n", b, "link", "set", dev, "up"]);
  }

  /** Runs a command inside `ns` and waits (bounded). */
  exec(ns: string, cmd: string[], timeoutMs = 15_000): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(IP, ["netns", "exec", ns, ...cmd], { encoding: "utf8", timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /** Starts a command inside `ns` (`ip netns exec` execs it: the pid is the command's). */
  spawn(ns: string, cmd: string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn(IP, ["netns", "exec", ns, ...cmd], opts);
  }

  /** Pids of the processes in `ns`, with their command names. */
  processes(ns: string): Array<{ pid: number; comm: string }> {
    const r = run(["netns", "pids", ns]);
    return r.out.split("\n").filter((l) => /^\d+$/.test(l.trim())).map((l) => {
      const pid = Number(l.trim());
      let comm = "";
      try {
        comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      } catch {
        // exited meanwhile
      }
      return { pid, comm };
    }).filter((p) => p.comm !== "");
  }

  /** Names of the links in `ns`. */
  links(ns: string): string[] {
    return run(["-n", ns, "-o", "link", "show"]).out.split("\n")
      .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  }

  /** Kills what is left in the namespaces and deletes them. Idempotent, synchronous. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    LIVE.delete(this);
    // SIGTERM first, so that daemons stop (and reap) their own children;
    // SIGKILL whatever is still there after 5 s.
    const signalAll = (sig: NodeJS.Signals): number => {
      let n = 0;
      for (const ns of this.names)
        for (const p of this.processes(ns)) {
          n++;
          try {
            process.kill(p.pid, sig);
          } catch {
            // gone
          }
        }
      return n;
    };
    if (signalAll("SIGTERM") > 0)
      for (let round = 0; round < 50 && this.names.some((ns) => this.processes(ns).length > 0); round++) spawnSync("sleep", ["0.1"]);
    for (let round = 0; round < 20 && signalAll("SIGKILL") > 0; round++) spawnSync("sleep", ["0.1"]);
    for (const ns of this.names) run(["netns", "del", ns]);
  }
}

/** Polls `check` every `everyMs` until it returns true or `timeoutMs` passes; returns the last result. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 500): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Makes `router` a NAT gateway: IPv4 forwarding, nftables masquerading out of
 * eth1 with the chains miniupnpd fills (its nftables defaults: table inet
 * filter), and miniupnpd serving the LAN on eth0 (192.0.2.0/24). Its files
 * go in `dir`; `uuidTail` (two hex digits) tells gateways apart. Returns
 * miniupnpd, run in the foreground with its log on a piped stderr.
 */
export function natGateway(lab: Lab, router: string, dir: string, uuidTail: string): ChildProcess {
  const sh = (cmd: string[]): void => {
    const r = lab.exec(router, cmd);
    if (r.status !== 0) throw new Error(`${cmd.join(" ")} in ${router}: ${r.stderr}`);
  };
  sh(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  writeFileSync(join(dir, "rules.nft"), `table inet filter {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; oifname "eth1" masquerade; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
`);
  sh(["nft", "-f", join(dir, "rules.nft")]);
  writeFileSync(join(dir, "miniupnpd.conf"), [
    "ext_ifname=eth1", "listening_ip=eth0", "http_port=0", "enable_natpmp=no", "enable_upnp=yes", "secure_mode=no",
    "system_uptime=yes", `uuid=3b4e2d1c-0000-4000-8000-0000000000${uuidTail}`, `lease_file=${join(dir, "leases")}`,
    "allow 1-65535 192.0.2.0/24 1-65535", "deny 0-65535 0.0.0.0/0 0-65535", "",
  ].join("\n"));
  return lab.spawn(router, ["miniupnpd", "-d", "-f", join(dir, "miniupnpd.conf"), "-P", join(dir, "miniupnpd.pid")], { stdio: ["ignore", "ignore", "pipe"] });
}
