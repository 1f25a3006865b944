// The operator's commands on the registry database, run as
// `vifibnet-registry COMMAND ...`: mint a token, revoke or unrevoke a
// prefix, list what is allocated. They work on the file while the registry
// serves it (SQLite locks; the registry re-reads the revoked table within
// REVOCATION_RELOAD seconds). Each prints one line on an error and exits 1,
// or 2 on a usage error as argparse does.

import { ArgumentParser } from "argparse";
import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { Bits, bitsToIpv6, prefixToCn } from "../utils/address";
import { readUserFile } from "../utils/files";
import { caNetwork, signedWithSha1 } from "../utils/x509";
import { isoTime } from "./call";
import { AllocationRow, RegistryDb, RevokedRow } from "./db";
import { parsePrefixArgument } from "./prefix";
import { TOKEN_PREFIX_LENGTH, emailProblem, makeToken } from "./tokens";

export const COMMAND_NAMES: readonly string[] = ["token", "revoke", "unrevoke", "list"];

/** A failure the operator can act on: its message is the one line shown. */
class CommandError extends Error {}

interface CommonArgs {
  db: string;
  ca?: string | null;
}

function parser(prog: string, name: string, description: string): ArgumentParser {
  const p = new ArgumentParser({ prog: `${prog} ${name}`, description });
  p.add_argument("--db", { required: true, metavar: "FILE", help: "The registry's database file (its --db)" });
  return p;
}

function addCa(p: ArgumentParser, why: string): void {
  p.add_argument("--ca", { metavar: "FILE", help: `The registry's CA certificate (its --ca): ${why}` });
}

/** Runs `work` on the registry's existing database, closed afterwards whatever happens. */
function withDb<T>(path: string, work: (db: RegistryDb) => T): T {
  if (!existsSync(path)) throw new CommandError(`${path} does not exist: give the registry's --db (the registry creates it when it first starts)`);
  const db = new RegistryDb(path);
  try {
    return work(db);
  } finally {
    db.close();
  }
}

/** The network from --ca, or null without it. */
function networkOf(args: CommonArgs): Bits | null {
  if (!args.ca) return null;
  try {
    return caNetwork(readUserFile("--ca", args.ca));
  } catch (e) {
    throw new CommandError(e instanceof Error && e.message.startsWith("cannot read") ? e.message : `--ca ${args.ca}: not a PEM certificate`);
  }
}

/** The node prefix the operator named, resolved against the database. */
function resolvePrefix(db: RegistryDb, text: string, network: Bits | null, allocated: boolean): Bits {
  const arg = parsePrefixArgument(text, network);
  if (typeof arg === "string") throw new CommandError(arg);
  if ("prefix" in arg) {
    if (allocated && db.certOf(arg.prefix) === null) throw new CommandError(`no certificate was issued for ${prefixToCn(arg.prefix)} (${arg.prefix}): nothing to revoke`);
    return arg.prefix;
  }
  const owner = db.ownerOf(arg.inside);
  if (owner === undefined || !arg.inside.startsWith(owner) || arg.length < owner.length || db.certOf(owner) === null)
    throw new CommandError(`${text} is not inside the subnet of a node that has a certificate`);
  return owner;
}

function describe(prefix: Bits, network: Bits | null): string {
  return `${prefixToCn(prefix)} (${prefix}${network === null ? "" : `, ${bitsToIpv6(network + prefix)}/${network.length + prefix.length}`})`;
}

function token(prog: string, argv: string[], out: (line: string) => void): void {
  const p = parser(prog, "token", "Mint an enrolment token and print it, for a node's vifibnet-setup --token: no mail is sent. It is valid for the registry's --token-ttl (one day by default) and works once.");
  p.add_argument("--email", { required: true, metavar: "ADDR", help: "The address the node's certificate is recorded with in the database" });
  const args = p.parse_args(argv) as CommonArgs & { email: string };
  const bad = emailProblem(args.email);
  if (bad) p.error(`argument --email: ${bad}`);
  withDb(args.db, (db) => {
    let t: string;
    do t = makeToken();
    while (!db.addToken({ token: t, email: args.email, prefix_len: TOKEN_PREFIX_LENGTH, date: Math.floor(Date.now() / 1000) }));
    out(t);
  });
}

function revoke(prog: string, argv: string[], out: (line: string) => void): void {
  const p = parser(prog, "revoke", "Revoke a node by its prefix: the registry stops listing it and refuses its declarations, peer lists and renewals; vifibnet nodes close their tunnels to it at their next peers refresh (legacy nodes do not). The prefix is never allocated again.");
  addCa(p, "needed to name the node by an IPv6 address");
  p.add_argument("--reason", { metavar: "TEXT", help: "Why, for the inventory and the signed revocation list" });
  p.add_argument("prefix", { metavar: "PREFIX", help: "The node: its CN (5/16), its prefix bits (0000000000000101), or its IPv6 address or subnet (2001:db8:42:5::/64, with --ca)" });
  const args = p.parse_args(argv) as CommonArgs & { prefix: string; reason?: string | null };
  const network = networkOf(args);
  withDb(args.db, (db) => {
    const prefix = resolvePrefix(db, args.prefix, network, true);
    const { already } = db.revoke(prefix, Math.floor(Date.now() / 1000), args.reason ?? null);
    if (already) out(`${describe(prefix, network)} was revoked already, on ${isoTime(already.since)}: nothing changed`);
    else out(`revoked ${describe(prefix, network)}`);
  });
}

function unrevoke(prog: string, argv: string[], out: (line: string) => void): void {
  const p = parser(prog, "unrevoke", "Lift a revocation: the node may declare, get peers and renew again with the certificate it has.");
  addCa(p, "needed to name the node by an IPv6 address");
  p.add_argument("prefix", { metavar: "PREFIX", help: "The node, as for revoke" });
  const args = p.parse_args(argv) as CommonArgs & { prefix: string };
  const network = networkOf(args);
  withDb(args.db, (db) => {
    const prefix = resolvePrefix(db, args.prefix, network, false);
    if (!db.unrevoke(prefix)) throw new CommandError(`${describe(prefix, network)} is not revoked`);
    out(`unrevoked ${describe(prefix, network)}`);
  });
}

/** One allocated prefix, as `list --json` prints it. */
export interface InventoryEntry {
  prefix: Bits;
  cn: string;
  /** The node's subnet, with --ca. */
  subnet: string | null;
  email: string | null;
  /** The certificate's notAfter (ISO 8601), or null when the stored certificate cannot be read. */
  expires: string | null;
  /** Signed with SHA-1 (a legacy registry's), or null when unreadable. */
  sha1: boolean | null;
  revoked: { since: string; reason: string | null } | null;
  /** The last declare (ISO 8601) and the address it advertised, while the registry lists the node. */
  declared: string | null;
  address: string | null;
}

export function inventoryEntry(row: AllocationRow, revoked: RevokedRow | undefined, network: Bits | null): InventoryEntry {
  let expires: string | null = null, sha1: boolean | null = null;
  try {
    const cert = new X509Certificate(row.cert);
    expires = new Date(cert.validTo).toISOString().replace(/\.\d{3}Z$/, "Z");
    sha1 = signedWithSha1(cert);
  } catch {
    // a row written by hand or by another program: shown as unreadable
  }
  const declaredAt = Math.max(row.declared ?? 0, row.signed === null ? 0 : Math.floor(row.signed / 1000));
  return {
    prefix: row.prefix, cn: prefixToCn(row.prefix), subnet: network === null ? null : `${bitsToIpv6(network + row.prefix)}/${network.length + row.prefix.length}`,
    email: row.email, expires, sha1, revoked: revoked ? { since: isoTime(revoked.since), reason: revoked.reason } : null,
    declared: row.address !== null && declaredAt > 0 ? isoTime(declaredAt) : null, address: row.address,
  };
}

/** Columns padded to their widest cell; the last one is not padded. */
export function table(rows: readonly string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
}

function list(prog: string, argv: string[], out: (line: string) => void): void {
  const p = parser(prog, "list", "List every allocated prefix: email, certificate expiry, SHA-1 or not, revoked or not, last declare and advertised address.");
  addCa(p, "adds each node's subnet");
  p.add_argument("--json", { action: "store_true", help: "One JSON array of objects instead of a table" });
  const args = p.parse_args(argv) as CommonArgs & { json: boolean };
  const network = networkOf(args);
  const entries = withDb(args.db, (db) => {
    const revoked = new Map(db.revokedPrefixes().map((r) => [r.prefix, r]));
    return db.allocations().map((row) => inventoryEntry(row, revoked.get(row.prefix), network));
  });
  if (args.json) return out(JSON.stringify(entries, null, 2));
  const head = ["CN", ...(network ? ["SUBNET"] : []), "EMAIL", "EXPIRES", "SIGNATURE", "REVOKED", "DECLARED", "ADDRESS"];
  const rows = entries.map((e) => [
    e.cn, ...(network ? [e.subnet!] : []), e.email ?? "-", e.expires ?? "unreadable", e.sha1 === null ? "-" : e.sha1 ? "SHA-1" : "SHA-256",
    e.revoked ? `since ${e.revoked.since}${e.revoked.reason ? ` (${e.revoked.reason})` : ""}` : "no", e.declared ?? "-", e.address ?? "-",
  ]);
  for (const line of table([head, ...rows])) out(line);
}

const COMMANDS: Record<string, (prog: string, argv: string[], out: (line: string) => void) => void> = { token, revoke, unrevoke, list };

/** Runs one command; returns the exit status. Usage errors exit 2 from argparse itself. */
export function runCommand(prog: string, name: string, argv: string[]): number {
  try {
    COMMANDS[name]!(prog, argv, (line) => void process.stdout.write(line + "\n"));
    return 0;
  } catch (e) {
    process.stderr.write(`${prog} ${name}: error: ${(e as Error).message}\n`);
    return 1;
  }
}
