// The command line of the legacy setup.py (argparse semantics: usage errors
// exit 2 with the usage line), plus --email and --token for unattended runs.

import { ArgumentParser } from "argparse";
import { isIP } from "node:net";
import { join } from "node:path";
import { SUBJECT_ATTRIBUTE_NAMES, SubjectAttribute, checkSubjectAttribute } from "../utils/cert";
import { CertificateError } from "../utils/x509";
import { NODE_CONFIG, registryOfConfig } from "./node-config";

export interface SetupOptions {
  /** Registry host: an IPv4 or IPv6 address (no brackets), or a host name. */
  server: string;
  port: number;
  dir: string;
  /** `-r` attributes, checked, in order; a repeated name keeps its last value. */
  subject: SubjectAttribute[];
  caOnly: boolean;
  dbOnly: boolean;
  noBoot: boolean;
  email: string | undefined;
  token: string | undefined;
  /** --token without a value: ask for the token, request none (one minted by the registry's admin). */
  askToken: boolean;
  /** --renew: renew DIR/cert.crt (same key and prefix) instead of joining. */
  renew: boolean;
  /** Write DIR/vifibnet.conf after a join; the legacy launcher (compat/setup.py) writes only the legacy files. */
  nodeConfig: boolean;
}

interface RawArgs {
  server?: string | null;
  port?: number | null;
  dir: string;
  req?: Array<[string, string]> | null;
  ca_only: boolean;
  db_only: boolean;
  no_boot: boolean;
  email?: string | null;
  token?: string | typeof ASK | null;
  renew: boolean;
}

/** What --token without a value stands for. */
const ASK = Symbol("ask");

export const DEFAULT_DIR = "/etc/vifib";

export function progName(): string {
  return process.env["VIFIBNET_PROG"] || "vifibnet-setup";
}

/** True when run through a legacy-named launcher (compat/setup.py), which sets VIFIBNET_PROG. */
function legacyLauncher(env: NodeJS.ProcessEnv): boolean {
  return env["VIFIBNET_PROG"] !== undefined;
}

/** Parses argv; on a usage error prints it and exits 2, as argparse does. */
export function parseSetupArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): SetupOptions {
  const parser = new ArgumentParser({
    prog: progName(),
    description: "Setup script for vifibnet: gets the CA, a bootstrap peer and a certificate from the registry, and writes ca.pem, peers.db, cert.key, cert.crt and dh2048.pem" +
      (legacyLauncher(env) ? "." : ", then the node's configuration vifibnet.conf (kept if it exists)."),
  });
  // Required as in the legacy setup.py, unless renewing: then DIR/vifibnet.conf has them.
  const renewing = argv.includes("--renew");
  parser.add_argument("--server", { required: !renewing, help: "Address of the registry (IPv4 or IPv6)" });
  parser.add_argument("--port", { required: !renewing, type: "int", help: "Port of the registry" });
  parser.add_argument("-d", "--dir", { default: DEFAULT_DIR, help: "Directory where the files are written (default: %(default)s)" });
  parser.add_argument("-r", "--req", {
    nargs: 2,
    action: "append",
    metavar: ["NAME", "VALUE"],
    help: `Attribute added to the subject of the certificate request; repeatable. NAME is one of ${SUBJECT_ATTRIBUTE_NAMES.join(", ")}`,
  });
  parser.add_argument("--ca-only", { action: "store_true", help: "Stop after writing ca.pem" });
  parser.add_argument("--db-only", { action: "store_true", help: "Stop after writing ca.pem and peers.db" });
  parser.add_argument("--no-boot", { action: "store_true", help: "Do not put a bootstrap peer from the registry in peers.db" });
  parser.add_argument("--email", { help: "Email address the token is sent to, instead of asking for it" });
  parser.add_argument("--token", {
    nargs: "?", const: ASK,
    help: "Token received by mail or minted by the registry's admin (vifibnet-registry token), instead of asking for it; without --email, no new token is requested. Without a value: asked for, and none is requested",
  });
  parser.add_argument("--renew", {
    action: "store_true",
    help: "Renew DIR/cert.crt with the registry (same key, same prefix, 365 days from now, SHA-256) instead of joining; the previous certificate is kept as cert.crt.old. --server and --port default to DIR/vifibnet.conf's",
  });
  const a = parser.parse_args(argv) as RawArgs;
  if (a.renew) {
    const extra = ([["ca_only", "--ca-only"], ["db_only", "--db-only"], ["no_boot", "--no-boot"], ["email", "--email"], ["token", "--token"], ["req", "-r"]] as const)
      .filter(([k]) => a[k] !== undefined && a[k] !== null && a[k] !== false).map(([, flag]) => flag);
    if (extra.length > 0) parser.error(`argument --renew: not allowed with ${extra.join(", ")} (a renewal keeps the key and subject)`);
  }

  if (a.dir === "") parser.error("argument -d/--dir: empty path");
  let given = { server: a.server ?? undefined, port: a.port ?? undefined };
  if (given.server === undefined || given.port === undefined) {
    // Only with --renew (argparse required them otherwise): the node's configuration names its registry.
    const conf = join(a.dir, NODE_CONFIG);
    const fromConf = registryOfConfig(conf);
    given = { server: given.server ?? fromConf.server, port: given.port ?? fromConf.port };
    if (given.server === undefined || given.port === undefined) {
      parser.error(`argument --renew: give --server and --port (${conf} does not name them: ${fromConf.problem ?? "no --server or --server-port line"})`);
      throw new Error("unreachable: argparse exits"); // narrows the types below
    }
  }
  let server = given.server.trim();
  if (/^\[.*\]$/.test(server)) server = server.slice(1, -1); // accept the URL form [2001:db8::1]
  if (server === "" || /[\s/@[\]]/.test(server) || (server.includes(":") && isIP(server.split("%")[0]!) !== 6))
    parser.error(`argument --server: '${given.server}' is not an IPv4 or IPv6 address or a host name`);
  const port = given.port;
  if (port < 1 || port > 65535) parser.error(`argument --port: ${port} is not a port number (1-65535)`);

  const subject: SubjectAttribute[] = [];
  for (const [name, value] of a.req ?? []) {
    try {
      const attr = checkSubjectAttribute(name, value);
      // As pyOpenSSL's X509Name: setting a name again replaces its earlier value.
      const at = subject.findIndex((s) => s.name === attr.name);
      if (at >= 0) subject.splice(at, 1);
      subject.push(attr);
    } catch (e) {
      if (!(e instanceof CertificateError)) throw e;
      parser.error(`argument -r/--req: ${e.message}`);
    }
  }
  const email = a.email?.trim() ?? undefined;
  const askToken = a.token === ASK;
  const token = typeof a.token === "string" ? a.token.trim() : undefined;
  if (email === "") parser.error("argument --email: empty address");
  if (token === "") parser.error("argument --token: empty token");
  return {
    server, port, dir: a.dir, subject, caOnly: a.ca_only, dbOnly: a.db_only, noBoot: a.no_boot, email, token, askToken,
    renew: a.renew, nodeConfig: !legacyLauncher(env),
  };
}
