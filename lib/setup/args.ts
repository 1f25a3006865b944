// The command line of the legacy setup.py (argparse semantics: usage errors
// exit 2 with the usage line), plus --email and --token for unattended runs.

import { ArgumentParser } from "argparse";
import { isIP } from "node:net";
import { SUBJECT_ATTRIBUTE_NAMES, SubjectAttribute, checkSubjectAttribute } from "../utils/cert";
import { CertificateError } from "../utils/x509";

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
  /** Write DIR/vifibnet.conf after a join; the legacy launcher (compat/setup.py) writes only the legacy files. */
  nodeConfig: boolean;
}

interface RawArgs {
  server: string;
  port: number;
  dir: string;
  req?: Array<[string, string]> | null;
  ca_only: boolean;
  db_only: boolean;
  no_boot: boolean;
  email?: string | null;
  token?: string | null;
}

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
  parser.add_argument("--server", { required: true, help: "Address of the registry (IPv4 or IPv6)" });
  parser.add_argument("--port", { required: true, type: "int", help: "Port of the registry" });
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
  parser.add_argument("--token", { help: "Token received by mail, instead of asking for it; without --email, no new token is requested" });
  const a = parser.parse_args(argv) as RawArgs;

  let server = a.server.trim();
  if (/^\[.*\]$/.test(server)) server = server.slice(1, -1); // accept the URL form [2001:db8::1]
  if (server === "" || /[\s/@[\]]/.test(server) || (server.includes(":") && isIP(server.split("%")[0]!) !== 6))
    parser.error(`argument --server: '${a.server}' is not an IPv4 or IPv6 address or a host name`);
  if (a.port < 1 || a.port > 65535) parser.error(`argument --port: ${a.port} is not a port number (1-65535)`);
  if (a.dir === "") parser.error("argument -d/--dir: empty path");

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
  const token = a.token?.trim() ?? undefined;
  if (email === "") parser.error("argument --email: empty address");
  if (token === "") parser.error("argument --token: empty token");
  return { server, port: a.port, dir: a.dir, subject, caOnly: a.ca_only, dbOnly: a.db_only, noBoot: a.no_boot, email, token, nodeConfig: !legacyLauncher(env) };
}
