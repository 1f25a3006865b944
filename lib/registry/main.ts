// vifibnet-registry (and compat/registry.py): the command line of the legacy
// registry.py, plus -v/--verbose, --workers and the strict modes.

import { ArgumentParser } from "argparse";
import cluster from "node:cluster";
import { availableParallelism } from "node:os";
import { CertificateAuthority, loadCa } from "../utils/cert";
import { CertificateError } from "../utils/x509";
import { ARG_FILE_HELP, argFileWords } from "../utils/argfile";
import { readUserFile } from "../utils/files";
import { Logger, createLogger } from "../utils/log";
import { onOtherWorkersChanges, reportFailure, reportListening, runPrimary, shareChange } from "./cluster";
import { RegistryDb } from "./db";
import { createSmtpMailer, parseMailHost } from "./mail";
import { RegistryServer } from "./server";
import { Registry } from "./service";

interface Args {
  port: number;
  db: string;
  ca: string;
  key: string;
  mailhost: string;
  verbose: number;
  workers: number;
  strict_source: boolean;
  strict_signed: boolean;
}

const PROG = process.env["VIFIBNET_PROG"] || "vifibnet-registry";
const DEFAULT_WORKERS = Math.min(availableParallelism(), 4);

function parseArgs(argv: string[]): Args {
  const parser = new ArgumentParser({ prog: PROG, description: "Peer discovery http server for vifibnet", fromfile_prefix_chars: "@", epilog: ARG_FILE_HELP });
  parser.convert_arg_line_to_args = argFileWords;
  parser.add_argument("port", { type: "int", help: "Port of the host server" });
  parser.add_argument("--db", { required: true, help: "Path to database file (created if missing; :memory: for a temporary one)" });
  parser.add_argument("--ca", { required: true, help: "Path to ca.crt file" });
  parser.add_argument("--key", { required: true, help: "Path to the CA's key file" });
  parser.add_argument("--mailhost", { required: true, help: "SMTP server mail host, HOST or HOST:PORT" });
  parser.add_argument("-v", "--verbose", { type: "int", default: 0, help: "Log level, 0-5; at 3 and above, one line per request" });
  parser.add_argument("--workers", { type: "int", default: DEFAULT_WORKERS, help: "Processes serving requests (default: one per core, at most 4: %(default)s)" });
  parser.add_argument("--strict-source", {
    action: "store_true",
    help: "Accept declare only from the declared node address itself, and answer getPeerList only to callers inside the network: nodes must reach the registry over the overlay (README, Ending a migration)",
  });
  parser.add_argument("--strict-signed", {
    action: "store_true",
    help: "Refuse the unsigned declare of legacy nodes: only signed declarations (declareSigned, which vifibnet nodes use) change a peer's address",
  });
  const args = parser.parse_args(argv) as Args;
  if (args.port < 0 || args.port > 65535) parser.error(`argument port: ${args.port} is not a port number`);
  if (!parseMailHost(args.mailhost)) parser.error(`argument --mailhost: expected HOST or HOST:PORT, got '${args.mailhost}'`);
  if (args.workers < 1 || args.workers > 64) parser.error(`argument --workers: ${args.workers} is not between 1 and 64`);
  return args;
}

function die(message: string): never {
  process.stderr.write(`${PROG}: error: ${message}\n`);
  process.exit(1);
}

function loadCaOrDie(args: Args): CertificateAuthority {
  try {
    return loadCa(readUserFile("--ca", args.ca), readUserFile("--key", args.key));
  } catch (e) {
    return die(e instanceof CertificateError ? `--ca ${args.ca} / --key ${args.key}: ${e.message}` : (e as Error).message);
  }
}

function listeningLine(log: Logger, ca: CertificateAuthority, port: number, args: Args): void {
  const strict = [args.strict_source && "--strict-source", args.strict_signed && "--strict-signed"].filter(Boolean);
  log.log(0, `registry for network of ${ca.network.length} bits listening on 0.0.0.0:${port} and [::]:${port}${strict.length ? ` (${strict.join(", ")})` : ""}`);
}

/** Serves requests in this process (alone, or as a cluster worker). */
async function serve(args: Args, ca: CertificateAuthority, log: Logger, worker: boolean): Promise<void> {
  let db: RegistryDb | undefined;
  let server: RegistryServer;
  try {
    db = new RegistryDb(args.db);
    const registry = new Registry({
      db, ca, log, mailer: createSmtpMailer(parseMailHost(args.mailhost)!),
      strict: { source: args.strict_source, signed: args.strict_signed },
      ...(worker ? { onPeersChange: shareChange } : {}),
    });
    if (worker) onOtherWorkersChanges((change) => registry.applyPeersChange(change));
    server = new RegistryServer(registry, log);
    const port = await server.listen(args.port);
    if (worker) reportListening(port);
    else listeningLine(log, ca, port, args);
  } catch (e) {
    db?.close();
    const code = (e as NodeJS.ErrnoException).code;
    const message = code === "EADDRINUSE" ? `cannot listen on port ${args.port}: it is already in use (another registry?)`
      : code === "EACCES" ? `cannot listen on port ${args.port}: permission denied (ports below 1024 need root)`
      : (e as Error).message;
    return worker ? reportFailure(message) : die(message);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    if (!worker) log.log(1, `${signal} received, stopping`);
    void server.close().then(() => {
      db!.close();
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const log = createLogger(args.verbose);
  const ca = loadCaOrDie(args);
  if (cluster.isWorker) return serve(args, ca, log, true);
  // Create or check the file once, before any worker, so an error is told once.
  try {
    new RegistryDb(args.db).close();
  } catch (e) {
    die((e as Error).message);
  }
  // Workers of an in-memory database would each have their own.
  const workers = args.db === ":memory:" ? 1 : args.workers;
  if (workers === 1) return serve(args, ca, log, false);
  runPrimary({
    workers, log, onListening: (port) => listeningLine(log, ca, port, args),
    onFatal: (message) => process.stderr.write(`${PROG}: error: ${message}\n`),
  });
}
