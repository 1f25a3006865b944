// vifibnet-ca: creates a network's CA (ca.key, ca.crt) with the network
// prefix encoded in the serial (SPEC section 2), the job of the legacy
// `openssl req -x509 -set_serial 0x1…` recipe, which keeps working too.

import { ArgumentParser } from "argparse";
import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { bitsToIpv6, parseIpv6Prefix, serialFromNetwork } from "./utils/address";
import { SubjectAttribute, createCaCertificate } from "./utils/cert";
import { makeDirectory, writeFileAtomic } from "./utils/files";

interface Args {
  prefix: string;
  dir: string;
  cn: string;
  org: string | undefined;
  days: number;
}

export function main(argv: string[]): void {
  const parser = new ArgumentParser({
    prog: "vifibnet-ca",
    description: "Create the certificate authority of a vifibnet network: DIR/ca.key and DIR/ca.crt.",
  });
  parser.add_argument("--prefix", { required: true, help: "The network's IPv6 prefix, e.g. 2001:db8:42::/48 (at most /112)" });
  parser.add_argument("--dir", { required: true, help: "Directory for ca.key and ca.crt, created if missing (existing files are never overwritten)" });
  parser.add_argument("--cn", { default: "vifibnet CA", help: "Common name of the CA (default: %(default)s)" });
  parser.add_argument("--org", { help: "Organization name of the CA" });
  parser.add_argument("--days", { type: "int", default: 3650, help: "Validity in days (default: %(default)s)" });
  const args = parser.parse_args(argv) as Args;
  const network = parseIpv6Prefix(args.prefix);
  if (network === null) return parser.error(`argument --prefix: '${args.prefix}' is not an IPv6 prefix such as 2001:db8:42::/48`);
  if (network.length > 112) parser.error(`argument --prefix: a /${network.length} leaves no room for /16 node prefixes (at most /112)`);
  if (args.days <= 0) parser.error("argument --days: must be positive");
  const keyPath = join(args.dir, "ca.key"), certPath = join(args.dir, "ca.crt");
  for (const p of [keyPath, certPath]) {
    if (existsSync(p)) {
      process.stderr.write(`vifibnet-ca: error: ${p} exists; refusing to overwrite a CA\n`);
      process.exit(1);
    }
  }
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const subject: SubjectAttribute[] = [...(args.org ? [{ name: "O", value: args.org }] : []), { name: "CN", value: args.cn }];
  const serial = serialFromNetwork(network);
  const pem = createCaCertificate(privateKey, serial, subject, new Date(), args.days);
  try {
    makeDirectory(args.dir);
  } catch (e) {
    process.stderr.write(`vifibnet-ca: error: ${(e as Error).message}\n`);
    process.exit(1);
  }
  try {
    writeFileAtomic(keyPath, privateKey.export({ type: "pkcs8", format: "pem" }), 0o600);
    writeFileAtomic(certPath, pem, 0o644);
  } catch (e) {
    process.stderr.write(`vifibnet-ca: error: cannot write to ${args.dir}: ${(e as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.write(
    `CA for ${bitsToIpv6(network)}/${network.length} written: ${certPath} (serial 0x${serial.toString(16)}), ${keyPath} (mode 0600)\n`,
  );
}
