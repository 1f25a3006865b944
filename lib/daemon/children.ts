// The daemon's child processes (OpenVPN servers and clients, babeld): spawn
// with stdout and stderr piped to a log file (./logs.ts) and, for OpenVPN,
// the hook event channel on fd 3; stop with SIGTERM then SIGKILL; never
// leave one behind.
//
// Each child runs in its own process group (so a terminal's Ctrl-C reaches
// the daemon only, which then stops them in order), and the group is what
// gets signalled: the hook scripts OpenVPN may be running go with it. Every
// live child is in LIVE, which the exit handlers of main.ts kill
// synchronously whatever way the daemon ends.

import { ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";

/** The file descriptor, in the child, of the event channel (plib's eventFd). */
export const EVENT_FD = 3;
/** How long a child gets to exit after SIGTERM before SIGKILL. */
export const STOP_TIMEOUT_MS = 10_000;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the program could not be started at all. */
  error?: Error;
}

/** "exited with status 1", "was killed by SIGKILL", "could not start: ...". */
export function describeExit(s: ExitStatus): string {
  return s.error ? `could not start: ${s.error.message}` : s.signal ? `was killed by ${s.signal}` : `exited with status ${s.code}`;
}

export interface SpawnOptions {
  /** Where the child's stdout and stderr go. */
  log: { write(chunk: Buffer): void };
  /** Reads "<script_type> <arg>" lines from fd 3 and hands each here. */
  onEvent?: (type: string, arg: string) => void;
  onExit?: (status: ExitStatus) => void;
  /** Once the child's output has all been written (its pipes closed): the log file may be closed. */
  onOutputEnd?: () => void;
}

const LIVE = new Set<Child>();

export class Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | null = null;

  constructor(readonly name: string, file: string, args: readonly string[], opts: SpawnOptions) {
    this.proc = spawn(file, [...args], { stdio: ["ignore", "pipe", "pipe", opts.onEvent ? "pipe" : "ignore"], detached: true });
    for (const out of [this.proc.stdout, this.proc.stderr]) out?.on("data", (chunk: Buffer) => opts.log.write(chunk));
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      opts.onOutputEnd?.();
    };
    this.proc.once("close", end);
    this.proc.once("error", () => this.proc.pid === undefined && end()); // never started: no close may follow
    LIVE.add(this);
    this.exited = new Promise<ExitStatus>((resolve) => {
      const finish = (s: ExitStatus): void => {
        if (this.status) return;
        this.status = s;
        LIVE.delete(this);
        opts.onExit?.(s);
        resolve(s);
      };
      this.proc.once("error", (error) => finish({ code: null, signal: null, error }));
      this.proc.once("exit", (code, signal) => finish({ code, signal }));
    });
    const channel = this.proc.stdio[EVENT_FD] as Readable | null | undefined;
    if (opts.onEvent && channel) {
      const onEvent = opts.onEvent;
      channel.on("error", () => {}); // the child closing its end is no error of ours
      createInterface({ input: channel, crlfDelay: Infinity }).on("line", (line) => {
        const m = /^(\S+) ?(.*)$/.exec(line);
        if (m) onEvent(m[1]!, m[2]!);
      });
    }
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  running(): boolean {
    return this.status === null;
  }

  /** Signals the child's process group (the child alone if that fails). */
  signal(sig: NodeJS.Signals): void {
    if (!this.running() || this.proc.pid === undefined) return;
    try {
      process.kill(-this.proc.pid, sig);
    } catch {
      try {
        this.proc.kill(sig);
      } catch {
        // already gone
      }
    }
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once it has exited. */
  async stop(timeoutMs: number = STOP_TIMEOUT_MS): Promise<ExitStatus> {
    if (!this.running()) return this.exited;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Children not known to have exited. */
export function liveChildren(): Child[] {
  return [...LIVE];
}

/** Last resort, synchronous (usable in an "exit" handler): SIGKILL every live child's group. */
export function killAllNow(): void {
  for (const c of LIVE) c.signal("SIGKILL");
}
