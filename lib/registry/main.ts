// vifibnet-registry (and compat/registry.py): the command line of the legacy
// registry.py, plus -v/--verbose.

import { ArgumentParser } from "argparse";
import { CertificateError, loadCa } from "../utils/cert";
import { readUserFile } from "../utils/files";
import { createLogger } from "../utils/log";
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
}

function parseArgs(argv: string[]): Args {
  const parser = new ArgumentParser({
    prog: process.env["VIFIBNET_PROG"] || "vifibnet-registry",
    description: "Peer discovery http server for vifibnet",
  });
  parser.add_argument("port", { type: "int", help: "Port of the host server" });
  parser.add_argument("--db", { required: true, help: "Path to database file (created if missing; :memory: for a temporary one)" });
  parser.add_argument("--ca", { required: true, help: "Path to ca.crt file" });
  parser.add_argument("--key", { required: true, help: "Path to the CA's key file" });
  parser.add_argument("--mailhost", { required: true, help: "SMTP server mail host, HOST or HOST:PORT" });
  parser.add_argument("-v", "--verbose", { type: "int", default: 0, help: "Log level, 0-5; at 3 and above, one line per request" });
  const args = parser.parse_args(argv) as Args;
  if (args.port < 0 || args.port > 65535) parser.error(`argument port: ${args.port} is not a port number`);
  if (!parseMailHost(args.mailhost)) parser.error(`argument --mailhost: expected HOST or HOST:PORT, got '${args.mailhost}'`);
  return args;
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const prog = process.env["VIFIBNET_PROG"] || "vifibnet-registry";
  const log = createLogger(args.verbose);
  let db: RegistryDb | undefined;
  let server: RegistryServer;
  try {
    const ca = loadCa(readUserFile("--ca", args.ca), readUserFile("--key", args.key));
    db = new RegistryDb(args.db);
    const registry = new Registry({ db, ca, mailer: createSmtpMailer(parseMailHost(args.mailhost)!), log });
    server = new RegistryServer(registry, log);
    const port = await server.listen(args.port);
    log.log(0, `registry for network of ${ca.network.length} bits listening on 0.0.0.0:${port} and [::]:${port}`);
  } catch (e) {
    db?.close();
    const msg = e instanceof CertificateError ? `--ca ${args.ca} / --key ${args.key}: ${e.message}` : (e as Error).message;
    process.stderr.write(`${prog}: error: ${msg}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.log(1, `${signal} received, stopping`);
    void server.close().then(() => {
      db!.close();
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
