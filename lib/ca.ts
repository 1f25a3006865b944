// vifibnet-ca: creates a network's CA (ca.key, ca.crt) with the network
// prefix encoded in the serial (SPEC section 2), the job of the legacy
// `openssl req -x509 -set_serial 0x1…` recipe, which keeps working too; or
// renews it (--renew): same key, subject and serial, a new validity, so
// every certificate it issued still verifies.

import { ArgumentParser } from "argparse";
import { X509Certificate, generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { bitsToIpv6, parseIpv6Prefix, serialFromNetwork } from "./utils/address";
import { SubjectAttribute, createCaCertificate, renewCaCertificate } from "./utils/cert";
import { makeDirectory, readUserFile, writeFileAtomic } from "./utils/files";
import { CertificateError, caNetwork } from "./utils/x509";

interface Args {
  prefix: string | undefined;
  dir: string;
  cn: string | undefined;
  org: string | undefined;
  days: number;
  renew: boolean;
}

const DEFAULT_CN = "vifibnet CA";

function fail(message: string): never {
  process.stderr.write(`vifibnet-ca: error: ${message}\n`);
  process.exit(1);
}

/** --renew: DIR/ca.crt again, the previous one kept as ca.crt.old. */
function renew(args: Args): void {
  const keyPath = join(args.dir, "ca.key"), certPath = join(args.dir, "ca.crt");
  let oldPem: string, pem: string;
  try {
    oldPem = readUserFile("--dir", certPath);
    pem = renewCaCertificate(oldPem, readUserFile("--dir", keyPath), new Date(), args.days);
  } catch (e) {
    return fail(e instanceof CertificateError ? `${certPath}, ${keyPath}: ${e.message}` : (e as Error).message);
  }
  try {
    writeFileAtomic(join(args.dir, "ca.crt.old"), oldPem, 0o644);
    writeFileAtomic(certPath, pem, 0o644);
  } catch (e) {
    fail(`cannot write to ${args.dir}: ${(e as Error).message}`);
  }
  const network = caNetwork(pem);
  process.stdout.write(
    `CA for ${bitsToIpv6(network)}/${network.length} renewed: ${certPath}, same key, subject and serial, valid until ${new X509Certificate(pem).validTo}; ` +
    `the previous one is in ca.crt.old. Have the registry serve it (SIGHUP: systemctl reload vifibnet-registry); nodes take it at their next peers refresh.\n`,
  );
}

export function main(argv: string[]): void {
  const parser = new ArgumentParser({
    prog: "vifibnet-ca",
    description: "Create the certificate authority of a vifibnet network: DIR/ca.key and DIR/ca.crt; or, with --renew, renew DIR/ca.crt.",
  });
  parser.add_argument("--prefix", { help: "The network's IPv6 prefix, e.g. 2001:db8:42::/48 (at most /112); required unless --renew" });
  parser.add_argument("--dir", { required: true, help: "Directory for ca.key and ca.crt, created if missing (existing files are never overwritten)" });
  parser.add_argument("--cn", { help: `Common name of the CA (default: ${DEFAULT_CN})` });
  parser.add_argument("--org", { help: "Organization name of the CA" });
  parser.add_argument("--days", { type: "int", default: 3650, help: "Validity in days, from now (default: %(default)s)" });
  parser.add_argument("--renew", {
    action: "store_true",
    help: "Renew DIR/ca.crt with DIR/ca.key: the same key, subject and serial (so the same network), valid --days from now; every node certificate still verifies. The previous one is kept as DIR/ca.crt.old",
  });
  const args = parser.parse_args(argv) as Args;
  if (args.days <= 0) parser.error("argument --days: must be positive");
  if (args.renew) {
    const extra = (["prefix", "cn", "org"] as const).filter((k) => args[k] !== undefined && args[k] !== null);
    if (extra.length > 0) parser.error(`argument --renew: not allowed with --${extra.join(", --")} (a renewed CA keeps its subject and network)`);
    return renew(args);
  }
  if (args.prefix === undefined || args.prefix === null) return parser.error("the following arguments are required: --prefix (or --renew)");
  const network = parseIpv6Prefix(args.prefix);
  if (network === null) return parser.error(`argument --prefix: '${args.prefix}' is not an IPv6 prefix such as 2001:db8:42::/48`);
  if (network.length > 112) parser.error(`argument --prefix: a /${network.length} leaves no room for /16 node prefixes (at most /112)`);
  const keyPath = join(args.dir, "ca.key"), certPath = join(args.dir, "ca.crt");
  for (const p of [keyPath, certPath]) {
    if (existsSync(p)) fail(`${p} exists; refusing to overwrite a CA (to renew it, --renew)`);
  }
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const subject: SubjectAttribute[] = [...(args.org ? [{ name: "O", value: args.org }] : []), { name: "CN", value: args.cn ?? DEFAULT_CN }];
  const serial = serialFromNetwork(network);
  const pem = createCaCertificate(privateKey, serial, subject, new Date(), args.days);
  try {
    makeDirectory(args.dir);
  } catch (e) {
    fail((e as Error).message);
  }
  try {
    writeFileAtomic(keyPath, privateKey.export({ type: "pkcs8", format: "pem" }), 0o600);
    writeFileAtomic(certPath, pem, 0o644);
  } catch (e) {
    fail(`cannot write to ${args.dir}: ${(e as Error).message}`);
  }
  process.stdout.write(
    `CA for ${bitsToIpv6(network)}/${network.length} written: ${certPath} (serial 0x${serial.toString(16)}), ${keyPath} (mode 0600)\n`,
  );
}
