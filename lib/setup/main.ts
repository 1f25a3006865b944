// vifibnet-setup (and compat/setup.py): joins a node to a network, as the
// legacy setup.py did. This module is the program's edge: arguments,
// directory checks, signals, exit codes; the flow itself is ./run.ts.

import { RpcClient, RpcTransportError, XmlRpcFault } from "../rpc-client";
import { fsProblem, makeDirectory, removeEmptyDirectories } from "../utils/files";
import { parseSetupArgs, progName } from "./args";
import { NoAnswerError, Prompter } from "./prompt";
import { runRenew } from "./renew";
import { SetupError, SetupIo, runSetup } from "./run";
import { Staging, probeWritable, sweepStaleTemps } from "./stage";

const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

function problem(e: unknown): string {
  const why = fsProblem(e);
  return why === "permission denied" ? `${why} (run as root, or choose another directory with -d)` : why;
}

/**
 * Makes sure `dir` exists and takes new files; returns the directories it
 * created, deepest first, so a failed run can remove them again.
 */
function prepareDirectory(dir: string, warn: (line: string) => void): string[] {
  let created: string[];
  try {
    created = makeDirectory(dir);
  } catch (e) {
    throw new SetupError((e as Error).message);
  }
  try {
    probeWritable(dir);
  } catch (e) {
    removeEmptyDirectories(created);
    throw new SetupError(`cannot write to ${dir}: ${problem(e)}`);
  }
  const swept = sweepStaleTemps(dir);
  if (swept.length > 0) warn(`removed ${swept.length} temporary file(s) an interrupted setup left in ${dir}`);
  return created;
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
    if (code !== 0) removeEmptyDirectories(createdDirs);
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
    await (opts.renew ? runRenew : runSetup)(opts, io, staging);
  } catch (e) {
    finish(1, messageOf(e));
  }
  finish(0);
}
