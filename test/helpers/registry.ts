// Runs bin/vifibnet-registry as a child process for tests.

import { ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN } from "../../harness/paths";
import type { TestCa } from "../../harness/pki";

export interface RunningRegistry {
  port: number;
  proc: ChildProcess;
  /** Everything written to stderr so far. */
  log(): string;
  /** SIGTERM, then waits; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startRegistry(dir: string, ca: TestCa, mailhost: string, extra: string[] = []): Promise<RunningRegistry> {
  writeFileSync(join(dir, "ca.crt"), ca.pem);
  writeFileSync(join(dir, "ca.key"), ca.keyPem, { mode: 0o600 });
  const proc = spawn(process.execPath, [BIN("vifibnet-registry"), "0", "--db", join(dir, "registry.db"), "--ca", join(dir, "ca.crt"), "--key", join(dir, "ca.key"), "--mailhost", mailhost, ...extra], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const exited = once(proc, "exit");
  proc.stderr!.setEncoding("utf8");
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`registry did not start: ${stderr}`)), 15_000);
    proc.stderr!.on("data", (chunk: string) => {
      stderr += chunk;
      const m = /listening on 0\.0\.0\.0:(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.once("exit", (code) => { clearTimeout(timer); reject(new Error(`registry exited with ${code}: ${stderr}`)); });
  });
  return {
    port,
    proc,
    log: () => stderr,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      const [code] = (await exited) as [number | null];
      clearTimeout(timer);
      return code;
    },
  };
}
