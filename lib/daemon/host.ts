// The daemon's view of its host: the checks made before anything starts
// (each failure one line a user can act on), and the reads of /proc and /sys
// the services need (routes, interface counters and flags, addresses). Only
// reads; what to do about them is decided elsewhere.

import { accessSync, constants as fsConstants, existsSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { counterValue } from "../tunnel";
import { Bits, nodeAddress } from "../utils/address";
import { makeDirectory, readUserFile } from "../utils/files";
import type { Logger } from "../utils/log";
import { CertificateError, caNetwork, checkNodeCertificate } from "../utils/x509";
import type { DaemonConfig } from "./args";

/** A startup check failed: printed as "prog: error: <message>", exit 1. */
export class StartupError extends Error {
  override name = "StartupError";
}

const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** The absolute path of an executable on PATH (or an sbin directory), or null. */
export function findProgram(name: string, path: string = process.env["PATH"] ?? ""): string | null {
  for (const dir of [...path.split(delimiter).filter((d) => d !== ""), ...SBIN_DIRS]) {
    const file = join(dir, name);
    try {
      accessSync(file, fsConstants.X_OK);
      return file;
    } catch {
      // next
    }
  }
  return null;
}

export interface Identity {
  network: Bits;
  prefix: Bits;
  /** The certificate's common name, "5/16". */
  commonName: string;
  /** The node address, e.g. "2001:db8:42:5::". */
  address: string;
  sha1: boolean;
  caPath: string;
  certPath: string;
  dhPath: string;
  peersDbPath: string;
  openvpn: string;
  babeld: string;
}

/** Every check before anything starts (each failure a one-line StartupError). */
export function startupChecks(cfg: DaemonConfig, uid: number | undefined = process.getuid?.()): Identity {
  if (uid !== 0) throw new StartupError("must be run as root (it creates interfaces and routes)");
  const openvpn = findProgram("openvpn");
  if (openvpn === null) throw new StartupError("openvpn is not installed (apt-get install openvpn)");
  const babeld = findProgram("babeld");
  if (babeld === null) throw new StartupError("babeld is not installed (apt-get install babeld)");
  const read = (flag: string, path: string): string => {
    try {
      return readUserFile(flag, path);
    } catch (e) {
      throw new StartupError((e as Error).message);
    }
  };
  const caPem = read("--ca", cfg.ca);
  const certPem = read("--cert", cfg.cert);
  read("--dh", cfg.dh);
  let network: Bits;
  try {
    network = caNetwork(caPem);
  } catch (e) {
    throw new StartupError(`--ca ${cfg.ca}: not a vifibnet CA certificate (${(e as Error).message.split("\n")[0]})`);
  }
  let cert;
  try {
    cert = checkNodeCertificate(certPem, caPem);
  } catch (e) {
    if (e instanceof CertificateError) throw new StartupError(`--cert ${cfg.cert}: ${e.message} (--ca ${cfg.ca})`);
    throw e;
  }
  if (cert.prefix === null || network.length + cert.prefix.length > 128)
    throw new StartupError(`--cert ${cfg.cert}: its common name ${JSON.stringify(cert.commonName)} is not a vifibnet prefix ("<integer>/<length>")`);
  // OpenSSL would refuse the node's own certificate (SPEC section 7): one line now rather than a dying server.
  if (cfg.noLegacy && cert.sha1)
    throw new StartupError(`--cert ${cfg.cert} is signed with SHA-1, which --no-legacy refuses: get a certificate signed with SHA-256 first, or run without --no-legacy`);
  const peersDbPath = join(cfg.state, "peers.db");
  if (!existsSync(peersDbPath)) throw new StartupError(`${peersDbPath} does not exist: run vifibnet-setup first`);
  try {
    makeDirectory(cfg.log);
  } catch (e) {
    throw new StartupError((e as Error).message); // "cannot create directory DIR: why"
  }
  return {
    network, prefix: cert.prefix, commonName: cert.commonName, address: nodeAddress(network, cert.prefix), sha1: cert.sha1,
    caPath: resolve(cfg.ca), certPath: resolve(cfg.cert), dhPath: resolve(cfg.dh), peersDbPath, openvpn, babeld,
  };
}

/** A file's text, or "" when it cannot be read (a /proc or /sys file that went away). */
export function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** The kernel's IPv6 routes (lib/utils/routes.ts parses them). */
export const readRoutes = (): string => readText("/proc/net/ipv6_route");

/** The kernel's IPv6 addresses, one per line with its interface. */
export const readIfInet6 = (): string => readText("/proc/net/if_inet6");

/** rx + tx bytes of an interface, or null when it is not there. */
export function interfaceBytes(iface: string): number | null {
  const rx = counterValue(readText(`/sys/class/net/${iface}/statistics/rx_bytes`));
  const tx = counterValue(readText(`/sys/class/net/${iface}/statistics/tx_bytes`));
  return rx === null || tx === null ? null : rx + tx;
}

/** Whether an interface is administratively up (IFF_UP), or null when there is no such interface. */
export function interfaceUp(iface: string): boolean | null {
  const flags = readText(`/sys/class/net/${iface}/flags`).trim();
  return /^0x[0-9a-f]+$/i.test(flags) ? (parseInt(flags, 16) & 0x1) !== 0 : null;
}

/** Routes through intermediate nodes need forwarding on them (SPEC section 7). */
export function enableForwarding(logger: Logger): void {
  try {
    writeFileSync("/proc/sys/net/ipv6/conf/all/forwarding", "1\n");
  } catch (e) {
    logger.warn(`cannot enable IPv6 forwarding (sysctl net.ipv6.conf.all.forwarding=1): ${(e as Error).message}`);
  }
}

/** Removes a babeld pid file left by a crash; refuses to start beside a running babeld using it. */
export function clearStalePidFile(pidFile: string): void {
  const text = readText(pidFile).trim();
  if (!existsSync(pidFile)) return;
  const pid = Number(text);
  if (/^[0-9]+$/.test(text) && pid > 0) {
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === "EPERM";
    }
    if (alive && readText(`/proc/${pid}/comm`).trim() === "babeld")
      throw new StartupError(`babeld (pid ${pid}) is already running with ${pidFile}: is another vifibnet using --state ${pidFile.replace(/\/[^/]*$/, "")}?`);
  }
  unlinkSync(pidFile);
}
