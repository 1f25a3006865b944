// The daemon's control socket, STATE_DIR/vifibnet.sock: a UNIX socket only
// root may connect to (mode 0600, removed on exit). A client sends one
// command line ("status"), the daemon answers one JSON line,
// {"ok":true,"result":...} or {"ok":false,"error":"..."}, and closes. The
// commands are a table the composition root fills; `vifibnet status` is the
// client (statusCommand).

import { ArgumentParser } from "argparse";
import { chmodSync, rmSync } from "node:fs";
import { Server, Socket, connect, createServer } from "node:net";
import { join } from "node:path";
import type { Logger } from "../utils/log";
import { fitsSocketPath } from "../utils/unix-socket";
import { DEFAULTS, progName } from "./args";
import { Status, formatStatus } from "./status";

export const CONTROL_SOCKET = "vifibnet.sock";
/** Bounds on one exchange: a request line, the time to answer. */
const MAX_REQUEST = 1024;
const TIMEOUT_MS = 10_000;
const MAX_CONNECTIONS = 16;

export const controlSocketPath = (stateDir: string): string => join(stateDir, CONTROL_SOCKET);

export type Commands = Readonly<Record<string, () => unknown>>;

/** No daemon listens on that socket (no file, or nobody behind it). */
export class NoDaemonError extends Error {
  override name = "NoDaemonError";
}

export class ControlServer {
  private server: Server | null = null;

  constructor(readonly path: string, private readonly commands: Commands, private readonly logger: Logger) {}

  /** Listens; a socket file left by a crashed daemon is replaced, one a live daemon answers on is refused. */
  async start(): Promise<void> {
    if (!fitsSocketPath(this.path)) {
      this.logger.warn(`--state path too long for the control socket (${this.path}): \`vifibnet status\` cannot reach this daemon`);
      return;
    }
    if (await answers(this.path)) throw new Error(`a vifibnet daemon already runs with this --state (it answers on ${this.path})`);
    rmSync(this.path, { force: true });
    const server = createServer((sock) => this.serve(sock));
    server.maxConnections = MAX_CONNECTIONS;
    const umask = process.umask(0o077); // root-only from the first instant: bind() creates the file
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(this.path, () => resolve());
      });
    } finally {
      process.umask(umask);
    }
    chmodSync(this.path, 0o600);
    server.on("error", (e) => this.logger.warn(`control socket: ${e.message}`));
    this.server = server;
  }

  private serve(sock: Socket): void {
    let buf = "";
    sock.setEncoding("utf8");
    sock.setTimeout(TIMEOUT_MS, () => sock.destroy());
    sock.on("error", () => {});
    const reply = (v: object): void => void sock.end(JSON.stringify(v) + "\n");
    sock.on("data", (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0) {
        if (buf.length > MAX_REQUEST) reply({ ok: false, error: "request too long" });
        return;
      }
      sock.removeAllListeners("data");
      const command = buf.slice(0, nl).trim();
      const run = Object.prototype.hasOwnProperty.call(this.commands, command) ? this.commands[command] : undefined;
      if (run === undefined) return reply({ ok: false, error: `unknown command ${JSON.stringify(command.slice(0, 64))} (known: ${Object.keys(this.commands).join(", ")})` });
      Promise.resolve()
        .then(run)
        .then((result) => reply({ ok: true, result }), (e: unknown) => reply({ ok: false, error: (e as Error).message }));
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}

/** Whether something answers on the socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Sends `command` to the daemon at `path`; its result, or a rejection (NoDaemonError when none listens). */
export function controlRequest(path: string, command: string, timeoutMs = TIMEOUT_MS): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = "";
    const timer = setTimeout(() => fail(new Error(`the daemon did not answer on ${path} within ${timeoutMs / 1000} s`)), timeoutMs);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    s.setEncoding("utf8");
    s.on("connect", () => s.write(command + "\n"));
    s.on("data", (c: string) => (buf += c));
    s.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT" || e.code === "ECONNREFUSED") fail(new NoDaemonError(`no vifibnet daemon is running with --state ${path.replace(/\/[^/]*$/, "")} (nothing answers on ${path})`));
      else if (e.code === "EACCES") fail(new Error(`permission denied on ${path}: only root may ask the daemon`));
      else fail(new Error(`${path}: ${e.message}`));
    });
    s.on("end", () => {
      clearTimeout(timer);
      let answer: { ok?: unknown; result?: unknown; error?: unknown };
      try {
        answer = JSON.parse(buf) as typeof answer;
      } catch {
        return reject(new Error(`the daemon's answer on ${path} is not JSON`));
      }
      if (answer.ok === true) resolve(answer.result);
      else reject(new Error(`the daemon refused ${JSON.stringify(command)}: ${String(answer.error)}`));
    });
  });
}

/** What a running daemon on `stateDir` reports. */
export async function readStatus(stateDir: string, timeoutMs?: number): Promise<Status> {
  return (await controlRequest(controlSocketPath(stateDir), "status", timeoutMs)) as Status;
}

/**
 * `vifibnet status [-s STATE_DIR] [--json]`: 0 when the daemon answered, 3
 * with one line when none runs on that state directory (as `systemctl
 * status`), 1 on any other error; 2 on a usage error (argparse).
 */
export async function statusCommand(argv: readonly string[], out: (s: string) => void = (s) => void process.stdout.write(s), err: (s: string) => void = (s) => void process.stderr.write(s)): Promise<number> {
  const prog = `${progName()} status`;
  const parser = new ArgumentParser({ prog, description: "Shows what a running vifibnet daemon does: its node, address, registry, servers, tunnels, babel routes and children." });
  parser.add_argument("-s", "--state", { default: DEFAULTS.state, metavar: "DIR", help: "The daemon's state directory (its -s/--state) (default: %(default)s)" });
  parser.add_argument("--json", { action: "store_true", help: "Print the snapshot as JSON (the stable interface the README documents)" });
  const args = parser.parse_args([...argv]) as { state: string; json: boolean };
  try {
    const status = await readStatus(args.state);
    out(args.json ? JSON.stringify(status, null, 2) + "\n" : formatStatus(status));
    return 0;
  } catch (e) {
    err(`${prog}: ${(e as Error).message}\n`);
    return e instanceof NoDaemonError ? 3 : 1;
  }
}
