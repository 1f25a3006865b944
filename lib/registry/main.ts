// vifibnet-registry (and compat/registry.py): the command line of the legacy
// registry.py, plus -v/--verbose, --workers, the strict modes and the
// lifecycle's settings; or, when the first word names one, an operator's
// command on the database (./commands.ts).

import { ArgumentParser } from "argparse";
import cluster from "node:cluster";
import { X509Certificate } from "node:crypto";
import { availableParallelism } from "node:os";
import { CertificateAuthority, loadCa } from "../utils/cert";
import { CertificateError } from "../utils/x509";
import { ARG_FILE_HELP, argFileWords } from "../utils/argfile";
import { readUserFile } from "../utils/files";
import { Logger, createLogger } from "../utils/log";
import { clusterTokenGate, onOtherWorkersChanges, reportFailure, reportListening, runPrimary, shareChange } from "./cluster";
import { COMMAND_NAMES, runCommand } from "./commands";
import { RegistryDb } from "./db";
import { createSmtpMailer, parseMailHost } from "./mail";
import { RENEW_GRACE } from "./renewal";
import { RegistryServer } from "./server";
import { Registry } from "./service";
import { DEFAULT_TOKEN_LIMITS, TokenLimiter, TokenLimits } from "./token-limit";
import { TOKEN_TTL } from "./tokens";

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
  token_ttl: number;
  renew_grace: number;
  token_limit_email: number;
  token_limit_client: number;
}

const PROG = process.env["VIFIBNET_PROG"] || "vifibnet-registry";
const DEFAULT_WORKERS = Math.min(availableParallelism(), 4);

function parseArgs(argv: string[]): Args {
  const parser = new ArgumentParser({
    prog: PROG, description: "Peer discovery http server for vifibnet", fromfile_prefix_chars: "@",
    epilog: `${ARG_FILE_HELP} Commands on the database, also while the registry runs: ${PROG} {${COMMAND_NAMES.join(",")}} ... (${PROG} COMMAND --help).`,
  });
  parser.convert_arg_line_to_args = argFileWords;
  parser.add_argument("port", { type: "int", help: "Port of the host server" });
  parser.add_argument("--db", { required: true, help: "Path to database file (created if missing; :memory: for a temporary one)" });
  parser.add_argument("--ca", { required: true, help: "Path to ca.crt file" });
  parser.add_argument("--key", { required: true, help: "Path to the CA's key file" });
  parser.add_argument("--mailhost", { required: true, help: "SMTP server mail host, HOST or HOST:PORT" });
  parser.add_argument("-v", "--verbose", { type: "int", default: 0, help: "Log level, 0-5; at 3 and above, one line per request" });
  parser.add_argument("--workers", { type: "int", default: DEFAULT_WORKERS, help: "Processes serving requests (default: one per core, at most 4)" });
  parser.add_argument("--strict-source", {
    action: "store_true",
    help: "Accept declare only from the declared node address itself, and answer getPeerList only to callers inside the network: nodes must reach the registry over the overlay (README, Ending a migration)",
  });
  parser.add_argument("--strict-signed", {
    action: "store_true",
    help: "Refuse the unsigned declare of legacy nodes: only signed declarations (declareSigned, which vifibnet nodes use) change a peer's address",
  });
  parser.add_argument("--token-ttl", {
    type: "int", default: TOKEN_TTL, metavar: "SECONDS",
    help: "How long a token is valid, mailed or minted; expired ones are deleted, tokens of a legacy registry by their date too (default: %(default)s, one day)",
  });
  parser.add_argument("--token-limit-email", {
    type: "int", default: DEFAULT_TOKEN_LIMITS.perEmail, metavar: "N",
    help: "Token mails to one address per hour; beyond, requestToken is a fault that says when to retry (default: %(default)s)",
  });
  parser.add_argument("--token-limit-client", {
    type: "int", default: DEFAULT_TOKEN_LIMITS.perClient, metavar: "N",
    help: "Token requests from one client (an IPv4 address or IPv6 /64) per hour (default: %(default)s)",
  });
  parser.add_argument("--renew-grace", {
    type: "int", default: RENEW_GRACE / 86_400, metavar: "DAYS",
    help: "A node may renew its certificate (renewCertificate) until this many days after it expired; later, it enrols again with a token (default: %(default)s)",
  });
  const args = parser.parse_args(argv) as Args;
  if (args.port < 0 || args.port > 65535) parser.error(`argument port: ${args.port} is not a port number`);
  if (args.token_ttl < 1) parser.error("argument --token-ttl: must be at least 1 second");
  if (args.renew_grace < 0) parser.error("argument --renew-grace: must not be negative");
  if (args.token_limit_email < 1 || args.token_limit_client < 1) parser.error("argument --token-limit-email/--token-limit-client: must be at least 1");
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

function tokenLimits(args: Args): TokenLimits {
  return { ...DEFAULT_TOKEN_LIMITS, perEmail: args.token_limit_email, perClient: args.token_limit_client };
}

/** The CA and key files again (SIGHUP): the new CA, or why it cannot replace `current`. */
function rereadCa(args: Args, current: CertificateAuthority): CertificateAuthority | string {
  let ca: CertificateAuthority;
  try {
    ca = loadCa(readUserFile("--ca", args.ca), readUserFile("--key", args.key));
  } catch (e) {
    return e instanceof CertificateError ? `--ca ${args.ca} / --key ${args.key}: ${e.message}` : (e as Error).message;
  }
  if (ca.network !== current.network) return `--ca ${args.ca} is now the CA of another network; restart the registry to change networks`;
  return ca;
}

function reloadLine(log: Logger, result: CertificateAuthority | string): void {
  if (typeof result === "string") log.warn(`SIGHUP: the CA was not re-read, still serving the previous one: ${result}`);
  else log.log(1, `SIGHUP: CA re-read, valid until ${new X509Certificate(result.pem).validTo}`);
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
      tokenTtl: args.token_ttl, renewGrace: args.renew_grace * 86_400,
      tokenGate: worker ? clusterTokenGate : new TokenLimiter(tokenLimits(args)),
      ...(worker ? { onChange: shareChange } : {}),
    });
    if (worker) onOtherWorkersChanges((change) => registry.applyChange(change));
    // A worker is told by the primary, which checked the files and said so; alone, it says so itself.
    let current = ca;
    process.on("SIGHUP", () => {
      const result = rereadCa(args, current);
      if (typeof result !== "string") {
        registry.setCa(result);
        current = result;
      }
      if (!worker || typeof result === "string") reloadLine(log, result);
    });
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
  if (COMMAND_NAMES.includes(argv[0] ?? "")) {
    process.exitCode = runCommand(PROG, argv[0]!, argv.slice(1));
    return;
  }
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
  let current = ca;
  runPrimary({
    workers, log, onListening: (port) => listeningLine(log, ca, port, args),
    onFatal: (message) => process.stderr.write(`${PROG}: error: ${message}\n`),
    tokenLimits: tokenLimits(args),
    onReload: () => {
      const result = rereadCa(args, current);
      reloadLine(log, result);
      if (typeof result === "string") return false;
      current = result;
      return true;
    },
  });
}
