// Command lines of the daemon's children (SPEC section 6): OpenVPN servers
// and clients, and babeld. Pure: the launcher that runs them is elsewhere.
// Legacy Python nodes must accept these tunnels, so every option below is
// the legacy's, in the legacy's meaning, or one that only widens what we
// accept or checks what the legacy left unchecked (docs/decisions.md).

import { legacyAllowances } from "./legacy-peers";
import { NEGOTIATION_VERB } from "./ovpn-log";
import { Bits, PeerAddress, bitsToIpv6, dialProto, prefixToCn } from "./utils/address";

/** What every OpenVPN process of a node shares. */
export interface OpenvpnCommon {
  hello: number;
  verbose: number;
  ca: string;
  cert: string;
  /** The user's arguments after `--` (the legacy README: "one SHOULD give --key"). */
  openvpnArgs: readonly string[];
  /** The hook scripts (ovpn-server, ovpn-client), absolute paths. */
  hookDir: string;
  /** The file descriptor, in OpenVPN, on which hooks write their events. */
  eventFd: number;
  /** Let legacy peers in (lib/legacy-peers.ts); false under the daemon's --no-legacy. */
  legacy: boolean;
}

function common(c: OpenvpnCommon): string[] {
  return [
    "--dev-type", "tap",
    "--persist-tun",
    "--persist-key",
    "--script-security", "2",
    "--user", "nobody",
    "--group", "nogroup",
    "--ping-exit", String(4 * c.hello),
    // At least the level at which OpenVPN logs what a tunnel negotiated,
    // which the daemon reads as the log passes (lib/ovpn-log.ts); a purely
    // local setting (SPEC section 8).
    "--verb", String(Math.max(NEGOTIATION_VERB, c.verbose)),
    // SHA-1 certificates (the legacy registry's) and the 2012 nodes' TLS 1.0
    // and BF-CBC; docs/decisions.md says why this is safe. Before the user's
    // arguments, so `-- --tls-cert-profile preferred` overrides it (OpenVPN
    // keeps the last).
    ...(c.legacy ? legacyAllowances() : []),
    ...c.openvpnArgs,
    "--ca", c.ca,
    "--cert", c.cert,
  ];
}

export interface ServerOptions {
  dev: string;
  port: number;
  proto: "udp" | "tcp-server";
  dh: string;
  maxClients: number;
  /** Node address with the length of its subnet, e.g. "2001:db8:42:5::/64". */
  address: string;
  /** The file of revoked common names the client-connect hook refuses, one a line; null: none. */
  revokedFile: string | null;
}

export function openvpnServerArgv(c: OpenvpnCommon, s: ServerOptions): string[] {
  const hook = `${c.hookDir}/ovpn-server`;
  return [
    ...common(c),
    "--tls-server",
    "--mode", "server",
    "--dev", s.dev,
    "--dh", s.dh,
    "--max-clients", String(s.maxClients),
    "--port", String(s.port),
    // An IPv6 socket that takes IPv4 too (OpenVPN clears IPV6_V6ONLY); "udp"
    // alone binds IPv4 only. Peers see the same options either way.
    "--proto", s.proto === "udp" ? "udp6" : "tcp6-server",
    // A UDP server that stops tells its clients to reconnect at once (a
    // TCP client sees its connection close): a server restarted for a new
    // certificate or CA has them back within seconds, not after --ping-exit.
    ...(s.proto === "udp" ? ["--explicit-exit-notify"] : []),
    "--up", `${hook} ${c.eventFd} ${s.address}`,
    "--client-connect", `${hook} ${c.eventFd}`,
    "--client-disconnect", `${hook} ${c.eventFd}`,
    ...(s.revokedFile === null ? [] : ["--setenv", "vifibnet_revoked", s.revokedFile]),
  ];
}

/** A client tunnel to the node of prefix `peer`, at the addresses it advertised. */
export function openvpnClientArgv(c: OpenvpnCommon, dev: string, peer: Bits, remotes: readonly PeerAddress[]): string[] {
  const hook = `${c.hookDir}/ovpn-client`;
  return [
    ...common(c),
    "--nobind",
    "--client",
    // Only that node's certificate will do: an address list pointing
    // elsewhere (a forged declare, a stale entry) reaches no one else. After
    // the user's arguments, so they cannot turn it off by accident.
    "--verify-x509-name", prefixToCn(peer), "name",
    "--dev", dev,
    "--up", hook,
    "--route-up", `${hook} ${c.eventFd}`,
    ...remotes.flatMap((r) => ["--remote", r.ip, String(r.port), dialProto(r.proto)]),
  ];
}

export interface BabeldOptions {
  network: Bits;
  /** The node address, e.g. "2001:db8:42:5::". */
  address: string;
  interfaces: readonly string[];
  wireless: boolean;
  hello: number;
  verbose: number;
  stateFile: string;
  pidFile: string;
  /** babeld's local configuration socket (-G, read-write), or null for none. */
  controlSocket: string | null;
  /**
   * The log file babeld writes itself (-L; it reopens it on SIGUSR2), or
   * null: its standard output and error. At -d 2 it prints its tables on
   * every change, which through a pipe costs the daemon a wake-up each.
   */
  logFile?: string | null;
}

export function babeldArgv(b: BabeldOptions): string[] {
  return [
    "-C", `redistribute local ip ${b.address}`,
    "-C", "redistribute local deny",
    "-C", `in ip ${bitsToIpv6(b.network)}/${b.network.length}`,
    "-C", "in deny",
    "-d", String(b.verbose),
    "-h", String(b.hello),
    "-H", String(b.hello),
    "-S", b.stateFile,
    "-I", b.pidFile,
    ...(b.controlSocket === null ? [] : ["-G", b.controlSocket]),
    ...(b.logFile ? ["-L", b.logFile] : []),
    "-s",
    ...(b.wireless ? ["-w"] : []),
    ...b.interfaces,
  ];
}
