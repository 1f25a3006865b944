// A "machine" for the tests that install the Debian package and follow the
// deployment guide: a network namespace (netns.ts) plus a mount namespace
// in which /etc, /usr, /var, /opt and /run are overlays on the host's, their
// writes kept in the test's directory. So `apt install ./vifibnet_*.deb`,
// /etc/vifibnet, /var/log/vifibnet are each machine's own, and the host is
// left as it was. A held process (sleep) keeps the namespaces; commands
// enter them with nsenter, as root, in the machine's home directory.
//
// systemd is not PID 1 here: `systemctl` on the machine's PATH is the
// test's stand-in (systemctl.ts), which runs the installed units' real
// ExecStart; /run/systemd/system exists in the machine, so the package's
// maintainer scripts act as on a systemd host (through the stand-in).

import { ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lab, waitFor } from "./netns";
import { NODE, ROOT } from "./paths";

const OVERLAID = ["/etc", "/usr", "/var", "/opt", "/run"];

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Called with the output so far whenever it grows: a user at the keyboard. */
  onOutput?: (stdout: string, write: (text: string) => void) => void;
  timeoutMs?: number;
}

export class Machine {
  readonly home: string;
  private holder: ChildProcess | undefined;

  private constructor(readonly name: string, readonly ns: string, readonly dir: string) {
    this.home = join(dir, "home");
  }

  /** A new machine in `lab`, its files under `dir` (which must not be under an overlaid directory). */
  static async create(lab: Lab, name: string, dir: string): Promise<Machine> {
    if (OVERLAID.some((d) => dir.startsWith(d + "/"))) throw new Error(`${dir}: a machine's files cannot live under an overlaid directory`);
    const m = new Machine(name, lab.add(), dir);
    const bin = join(dir, "bin");
    for (const d of [m.home, bin, ...OVERLAID.flatMap((o) => [join(dir, "upper", o), join(dir, "work", o)])]) mkdirSync(d, { recursive: true });
    writeFileSync(join(bin, "systemctl"), `#!/bin/sh\nexec ${NODE} ${join(ROOT, "dist", "harness", "systemctl.js")} "$@"\n`);
    chmodSync(join(bin, "systemctl"), 0o755);
    const mounts = OVERLAID.map((o) => `mount -t overlay overlay -o lowerdir=${o},upperdir=${join(dir, "upper", o)},workdir=${join(dir, "work", o)} ${o}`);
    const script = [
      "set -e", ...mounts, "mkdir -p /run/systemd/system",
      // man-db's trigger would rebuild the whole index at each install: seconds for nothing here.
      "rm -f /var/lib/man-db/auto-update",
      // A container image's policy-rc.d (exit 101: start nothing) would make every
      // deb-systemd-invoke a no-op; a Debian host has none.
      "rm -f /usr/sbin/policy-rc.d", "echo ready", "exec sleep 100000",
    ].join("\n");
    m.holder = lab.spawn(m.ns, ["unshare", "--mount", "--propagation", "private", "sh", "-c", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    m.holder.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
    m.holder.stderr!.setEncoding("utf8").on("data", (c: string) => (out += c));
    if (!(await waitFor(() => out.includes("ready") || m.holder!.exitCode !== null, 15_000, 50)) || !out.includes("ready"))
      throw new Error(`machine ${name}: its namespaces did not come up: ${out}`);
    return m;
  }

  /** The host path of `path` (absolute) as this machine wrote it, when it did (the overlay's upper layer). */
  written(path: string): string {
    const top = OVERLAID.find((o) => path === o || path.startsWith(o + "/"));
    if (!top) throw new Error(`${path} is not in an overlaid directory`);
    return join(this.dir, "upper", path);
  }

  /** Runs `script` with bash (-euo pipefail) in the machine, as root, from its home; bounded. */
  run(script: string, opts: RunOptions = {}): Promise<RunResult> {
    const env = {
      PATH: `${join(this.dir, "bin")}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      HOME: this.home, LANG: "C.UTF-8", TERM: "dumb", DEBIAN_FRONTEND: "noninteractive",
      VFB_SYSTEMD_STATE: join(this.dir, "systemd"),
    };
    const p = spawn("nsenter", ["--target", String(this.holder!.pid), "--mount", "--net", `--wd=${this.home}`, "--", "bash", "--norc", "-euo", "pipefail", "-c", script],
      { cwd: this.home, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    const write = (text: string): void => void p.stdin!.write(text);
    p.stdout!.setEncoding("utf8").on("data", (c: string) => { stdout += c; opts.onOutput?.(stdout, write); });
    p.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    p.stdin!.on("error", () => undefined);
    if (!opts.onOutput) p.stdin!.end(); // nobody at the keyboard
    const timer = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    return new Promise((resolve) => {
      p.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }
}
