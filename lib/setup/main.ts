// vifibnet-setup (and compat/setup.py): joins a node to a network, as the
// legacy setup.py did. This module is the program's edge: arguments,
// directory checks, signals, exit codes; the flow itself is ./run.ts.

import { mkdirSync, rmdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { RpcClient, RpcTransportError, XmlRpcFault } from "../rpc-client";
import { parseSetupArgs, progName } from "./args";
import { NoAnswerError, Prompter } from "./prompt";
import { SetupError, SetupIo, runSetup } from "./run";
import { Staging, probeWritable, sweepStaleTemps } from "./stage";

const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

function fsProblem(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case "EACCES": case "EPERM": return "permission denied (run as root, or choose another directory with -d)";
    case "EROFS": return "read-only file system";
    case "ENOSPC": return "no space left on the device";
    case "ENOTDIR": return "a part of the path is not a directory";
    default: return err.message;
  }
}

/**
 * Makes sure `dir` exists and takes new files; returns the directories it
 * created, deepest first, so a failed run can remove them again.
 */
function prepareDirectory(dir: string, warn: (line: string) => void): string[] {
  const created: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      if (!statSync(d).isDirectory()) throw new SetupError(`cannot use ${d === resolve(dir) ? dir : d}: not a directory`);
      break;
    } catch (e) {
      if (e instanceof SetupError) throw e;
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || d === dirname(d)) throw new SetupError(`cannot use ${dir}: ${fsProblem(e)}`);
      created.push(d);
    }
  }
  try {
    if (created.length > 0) mkdirSync(dir, { recursive: true, mode: 0o755 });
    probeWritable(dir);
  } catch (e) {
    removeEmpty(created);
    throw new SetupError(`cannot write to ${dir}: ${fsProblem(e)}`);
  }
  const swept = sweepStaleTemps(dir);
  if (swept.length > 0) warn(`removed ${swept.length} temporary file(s) an interrupted setup left in ${dir}`);
  return created;
}

function removeEmpty(dirs: readonly string[]): void {
  for (const d of dirs) {
    try {
      rmdirSync(d); // fails, harmlessly, unless empty
    } catch {
      return;
    }
  }
}

function messageOf(e: unknown): string {
  if (e instanceof SetupError || e instanceof RpcTransportError) return e.message;
  if (e instanceof XmlRpcFault) return `${e.method}: the registry answered with a fault: ${e.detail}`;
  if (e instanceof NoAnswerError) return `${e.message} (for unattended use, give --email and --token)`;
  return `unexpected error: ${(e as Error).stack ?? String(e)}`;
}

export async function main(argv: string[]): Promise<void> {
  // A closed pipe on our output must not turn into a crash with a stack trace.
  process.stdout.on("error", () => undefined);
  const opts = parseSetupArgs(argv);
  const prog = progName();
  const staging = new Staging(opts.dir);
  const client = new RpcClient(opts.server, opts.port);
  const prompter = new Prompter(process.stdin, process.stdout);
  let createdDirs: string[] = [];

  const finish = (code: number, message?: string): never => {
    staging.abort();
    client.close();
    prompter.close();
    if (code !== 0) removeEmpty(createdDirs);
    if (message !== undefined) process.stderr.write(`${prog}: error: ${message}\n`);
    process.exit(code);
  };
  for (const [signal, code] of Object.entries(SIGNAL_EXIT) as Array<[NodeJS.Signals, number]>) {
    process.on(signal, () => {
      if (prompter.asking) process.stdout.write("\n"); // end the question's line
      finish(code, `interrupted (${signal}): nothing was written to ${opts.dir}`);
    });
  }

  const io: SetupIo = {
    call: (method, params) => client.call(method, params),
    ask: (question) => prompter.ask(question),
    info: (line) => void process.stdout.write(line + "\n"),
    warn: (line) => void process.stderr.write(`${prog}: warning: ${line}\n`),
  };
  try {
    createdDirs = prepareDirectory(opts.dir, io.warn);
    await runSetup(opts, io, staging);
  } catch (e) {
    finish(1, messageOf(e));
  }
  finish(0);
}
