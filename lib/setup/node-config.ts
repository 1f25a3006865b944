// DIR/vifibnet.conf, which vifibnet-setup writes after a successful join:
// the daemon's command line as an @file (legacy format, read by vifibnet.py
// too), so `vifibnet @DIR/vifibnet.conf`, and the package's unit, run the
// node as it is. Written once; an existing one is the admin's and is kept.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export const NODE_CONFIG = "vifibnet.conf";
/** The node directory of the Debian package and the deployment guide; vifibnet.service reads its vifibnet.conf. */
export const PACKAGE_NODE_DIR = "/etc/vifibnet";
export const SERVICE = "vifibnet";

export interface NodeConfigInput {
  server: string;
  port: number;
  /** The setup directory, absolute. */
  dir: string;
  /** For the header: the network and this node's address. */
  network: string;
  address: string | null;
}

/**
 * Why `dir` cannot go in an @file, or null: a line is split on blanks and
 * '#' starts a comment, with no quoting.
 */
export function unwritablePath(dir: string): string | null {
  if (/\s/.test(dir)) return "it contains a blank";
  if (dir.includes("#")) return "it contains '#'";
  return null;
}

/** The file's text. */
export function nodeConfigText(c: NodeConfigInput): string {
  const file = (name: string): string => join(c.dir, name);
  return [
    `# vifibnet node configuration, written by vifibnet-setup after joining the`,
    `# network ${c.network}${c.address ? ` as ${c.address}` : ""}. Start the node with`,
    `#   vifibnet @${file(NODE_CONFIG)}`,
    `# One option per line (see vifibnet(8)); add yours above the "--" line:`,
    `# the lines after it are OpenVPN options. vifibnet-setup keeps this file.`,
    `--server ${c.server}`,
    `--server-port ${c.port}`,
    `--ca ${file("ca.pem")}`,
    `--cert ${file("cert.crt")}`,
    `--dh ${file("dh2048.pem")}`,
    `--state ${c.dir}`,
    `--`,
    `--key ${file("cert.key")}`,
    "",
  ].join("\n");
}

/**
 * The daemon beside this setup program (bin/vifibnet in a checkout,
 * /usr/bin/vifibnet from the package), or plain "vifibnet".
 */
export function daemonCommand(setupScript: string | undefined = process.argv[1]): string {
  if (setupScript) {
    const sibling = join(dirname(resolve(setupScript)), "vifibnet");
    if (existsSync(sibling)) return sibling;
  }
  return "vifibnet";
}

/** What to tell the user to start the node, one line each. */
export function startCommands(dir: string, daemon: string): string[] {
  const lines = [`Start the node with: ${daemon} @${join(dir, NODE_CONFIG)}`];
  if (dir === PACKAGE_NODE_DIR) lines.push(`or, as the package's service: systemctl enable --now ${SERVICE}`);
  return lines;
}

/**
 * The registry a node's configuration names (`--server`, `--server-port`,
 * before the "--" line), for vifibnet-setup --renew; `problem` when the file
 * cannot be read.
 */
export function registryOfConfig(path: string): { server?: string; port?: number; problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return { problem: (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message };
  }
  const out: { server?: string; port?: number } = {};
  for (const line of text.split("\n")) {
    const words = line.replace(/#.*/, "").trim().split(/\s+/);
    if (words[0] === "--") break;
    if (words[0] === "--server" && words[1]) out.server = words[1];
    if (words[0] === "--server-port" && /^\d{1,5}$/.test(words[1] ?? "")) out.port = Number(words[1]);
  }
  return out;
}
