// The command line of the node daemon: the legacy vifibnet.py's, flag for
// flag (same names, defaults, types, required flags, @file configuration and
// argparse's own error messages, exit 2 with the usage line), checked further
// only where the legacy would have failed later anyway (a port OpenVPN
// refuses, a hello interval babeld refuses, an address list other nodes drop).
// fixtures/daemon-args/python_parse.py runs the legacy parser under the real
// Python argparse; test/daemon-args.test.ts compares the two on a corpus.

import { REMAINDER } from "argparse";
import { isIP } from "node:net";
import { MAX_ADDRESS_ITEMS, PeerAddress, remoteUnicastProblem } from "../utils/address";
import { ArgsError, LegacyParser, pyFloat, pyInt, pyNum, pyRepr } from "./python";

export type ServerProto = "udp" | "tcp-server";

export interface DaemonConfig {
  /** Registry host: IPv4, IPv6 (without brackets, even if given with them) or a host name. */
  server: string;
  serverPort: number;
  /** Directory of the log files (-l/--log). */
  log: string;
  /** Directory of peers.db and the babeld state file (-s/--state). */
  state: string;
  /** 0 and up; the README documents 0-5, more is passed on unchanged to OpenVPN --verb and babeld -d. */
  verbose: number;
  /** Extra interfaces for LAN discovery (-i), in order, as given. */
  interfaces: string[];
  /** Seconds. Can exceed setTimeout's limit (2^31-1 ms, ~24.8 days): arm timers in steps. */
  peersDbRefresh: number;
  /** Seconds, 1-655 (babeld's limit); OpenVPN's --ping-exit is 4 times it. */
  hello: number;
  wireless: boolean;
  /** One OpenVPN server each; never empty (default 1194 udp), no pair twice. */
  pp: Array<{ port: number; proto: ServerProto }>;
  /** Seconds; same remark as peersDbRefresh. */
  tunnelRefresh: number;
  dh: string;
  ca: string;
  cert: string;
  connectionCount: number;
  /** 0 to 1. */
  refreshRate: number;
  /** --ip items as given; undefined without --ip (then UPnP is tried). */
  address: PeerAddress[] | undefined;
  /** The words after `--`, exactly as given, without the `--` itself. */
  openvpnArgs: string[];
  /** --no-legacy: OpenVPN without the allowances for legacy peers (lib/legacy-peers.ts). Not a legacy flag. */
  noLegacy: boolean;
}

export interface ArgsIo {
  /** Directory relative @file paths are read from (Python's argparse: the current one). */
  cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
  exit(status: number): never;
}

export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULTS = {
  log: "/var/log",
  state: "/var/lib/vifibnet",
  verbose: 0,
  peersDbRefresh: 3600,
  hello: 15,
  tunnelRefresh: 300,
  connectionCount: 20,
  refreshRate: 0.05,
  pp: [{ port: 1194, proto: "udp" as ServerProto }],
} as const;

export function progName(env: Env = process.env): string {
  return env["VIFIBNET_PROG"] || "vifibnet";
}

/**
 * Parses the daemon's arguments. On a usage error, prints the usage and the
 * error to stderr and exits 2; on --help prints the help and exits 0 (as
 * argparse does). `io` lets tests capture both instead.
 */
export function parseDaemonArgs(argv: readonly string[], env: Env = process.env, io: Partial<ArgsIo> = {}): DaemonConfig {
  try {
    return parseDaemonArgsOrThrow(argv, env, io.cwd);
  } catch (e) {
    if (!(e instanceof ArgsError)) throw e;
    if (e.stdout) (io.stdout ?? ((t: string) => process.stdout.write(t)))(e.stdout);
    if (e.stderr) (io.stderr ?? ((t: string) => process.stderr.write(t)))(e.stderr);
    return (io.exit ?? ((status: number): never => process.exit(status)))(e.status);
  }
}

/** As parseDaemonArgs, but throws ArgsError instead of printing and exiting. */
export function parseDaemonArgsOrThrow(argv: readonly string[], env: Env = process.env, cwd: string = process.cwd()): DaemonConfig {
  const parser = buildParser(progName(env), cwd);
  const a = parser.parse_args([...argv]) as RawArgs;
  return check(parser, a);
}

// ---------------------------------------------------------------------------
// The parser

/** The namespace argparse fills, under the legacy's dest names. */
interface RawArgs {
  server: string;
  server_port: number;
  log: string;
  state: string;
  verbose: number;
  iface_list: string[];
  peers_db_refresh: number;
  hello: number;
  wireless: boolean;
  pp: Array<[string, string]> | undefined;
  tunnel_refresh: number;
  dh: string;
  ca: string;
  cert: string;
  connection_count: number;
  refresh_rate: number;
  address: Array<[string, string, string]> | undefined;
  openvpn_args: string[];
  no_legacy: boolean;
}

function buildParser(prog: string, cwd: string): LegacyParser {
  const int = pyInt;
  const float = pyFloat;
  const p = new LegacyParser(prog, cwd, {
    description: "Resilient virtual private network application",
    epilog:
      "@FILE reads arguments from FILE: one long option per line, its leading '--' optional " +
      "(\"verbose 3\", not \"v 3\"), '#' starts a comment, a line \"@OTHER\" reads OTHER; " +
      "relative paths are from the current directory. Options given later win. " +
      "Words after '--' go to every OpenVPN process as they are (give --key there).",
  });
  const _ = p.add_argument.bind(p) as (...args: Array<string | Record<string, unknown>>) => void;
  _("--server", { required: true, metavar: "ADDRESS", help: "Address (IPv4, IPv6 or host name) of the peer discovery server (the registry)" });
  _("--server-port", { required: true, type: int, metavar: "PORT", help: "Port of the peer discovery server" });
  _("-l", "--log", { default: DEFAULTS.log, metavar: "DIR", help: "Directory of the log files (default: %(default)s)" });
  _("-s", "--state", { default: DEFAULTS.state, metavar: "DIR", help: "Directory of peers.db and the babeld state file (default: %(default)s)" });
  _("-v", "--verbose", {
    default: DEFAULTS.verbose, type: int, metavar: "LEVEL",
    help: "Verbosity, 0 to 5 (more is passed on to OpenVPN --verb and babeld -d as is) (default: %(default)s)",
  });
  _("-i", "--interface", { action: "append", dest: "iface_list", default: [], metavar: "IFACE", help: "Extra interface for LAN discovery; repeatable" });
  _("--peers-db-refresh", { default: DEFAULTS.peersDbRefresh, type: int, metavar: "SECONDS", help: "Interval of the peers DB refresh (default: %(default)s)" });
  _("--hello", { type: int, default: DEFAULTS.hello, metavar: "SECONDS", help: "Hello interval for babel, 1 to 655; OpenVPN's --ping-exit is 4 times it (default: %(default)s)" });
  _("-w", "--wireless", { action: "store_true", help: "Treat all interfaces as wireless in the routing protocol (babeld -w)" });
  _("--pp", {
    nargs: 2, action: "append", metavar: ["PORT", "PROTO"],
    help: "Port and protocol of an OpenVPN server other peers connect to; PROTO is udp or tcp-server; repeatable (default: 1194 udp)",
  });
  _("--tunnel-refresh", { default: DEFAULTS.tunnelRefresh, type: int, metavar: "SECONDS", help: "Interval between two tunnel refreshes (default: %(default)s)" });
  _("--dh", { required: true, metavar: "PATH", help: "Path to the DH parameters file of the OpenVPN servers" });
  _("--ca", { required: true, metavar: "PATH", help: "Path to the certificate authority (ca.pem)" });
  _("--cert", { required: true, metavar: "PATH", help: "Path to the node's certificate (cert.crt)" });
  _("--connection-count", { default: DEFAULTS.connectionCount, type: int, metavar: "N", help: "Number of connections: the OpenVPN servers' --max-clients; half of it, rounded up, is the number of client tunnels (default: %(default)s)" });
  _("--refresh-rate", {
    default: DEFAULTS.refreshRate, type: float, metavar: "RATIO",
    help: "Ratio, 0 to 1, of the tunnels replaced at each tunnel refresh (default: %(default)s)",
  });
  _("--ip", {
    action: "append", nargs: 3, dest: "address", metavar: ["ADDRESS", "PORT", "PROTO"],
    help: "Address advertised to other nodes instead of trying UPnP: an IPv4 or IPv6 address, a port, and udp or tcp-client (tcp-server is read as tcp-client); repeatable",
  });
  _("--no-legacy", {
    action: "store_true",
    help: "Refuse legacy peers, for a network that has none left: no SHA-1 certificates, no TLS below 1.2, no BF-CBC " +
      "(OpenVPN's own defaults); without it, nodes of the 2012 vifibnet (OpenVPN 2.2/2.3) and the legacy registry's certificates are accepted",
  });
  _("openvpn_args", { nargs: REMAINDER, help: "After '--': options passed to every OpenVPN process as they are (e.g. --key cert.key)" });
  return p;
}

// ---------------------------------------------------------------------------
// Checks beyond the legacy's, each on a value the legacy could not have run
// with, and the conversion to DaemonConfig.

const INT_MAX = 2 ** 31 - 1; // OpenVPN and babeld read these with atoi()

function isPort(s: string): boolean {
  return /^[0-9]+$/.test(s) && Number(s) >= 1 && Number(s) <= 65535;
}

/** Linux's dev_valid_name, and no leading '-' (babeld would read it as an option). */
function isInterfaceName(s: string): boolean {
  return s !== "" && Buffer.byteLength(s) < 16 && s !== "." && s !== ".." && !/[/:\s]/.test(s) && !s.startsWith("-");
}

function isServerHost(s: string): boolean {
  if (s === "" || /[\s/@[\]]/.test(s)) return false;
  return !s.includes(":") || isIP(s.split("%")[0]!) === 6;
}

function choices(list: readonly string[]): string {
  return list.map((c) => pyRepr(c)).join(", ");
}

function check(parser: LegacyParser, a: RawArgs): DaemonConfig {
  const fail = (message: string): never => parser.error(message);

  let server = a.server;
  // The URL form [2001:db8::1]: the legacy's "http://%s:%u" worked with it too.
  if (/^\[.*\]$/.test(server) && isIP(server.slice(1, -1).split("%")[0]!) === 6) server = server.slice(1, -1);
  if (!isServerHost(server)) fail(`argument --server: ${pyRepr(a.server)} is not an IPv4 or IPv6 address or a host name`);
  if (a.server_port < 1 || a.server_port > 65535) fail(`argument --server-port: ${pyNum(a.server_port)} is not a port number (1-65535)`);
  if (a.log === "") fail("argument -l/--log: empty path");
  if (a.state === "") fail("argument -s/--state: empty path");
  if (a.verbose < 0 || a.verbose > INT_MAX) fail(`argument -v/--verbose: ${pyNum(a.verbose)} is not a verbosity level (0 or more)`);
  for (const iface of a.iface_list)
    if (!isInterfaceName(iface)) fail(`argument -i/--interface: ${pyRepr(iface)} is not a network interface name`);
  if (a.peers_db_refresh < 1 || a.peers_db_refresh > Number.MAX_SAFE_INTEGER)
    fail(`argument --peers-db-refresh: ${pyNum(a.peers_db_refresh)} is not a positive number of seconds`);
  // babeld refuses hello intervals above 0xFFFF centiseconds.
  if (a.hello < 1 || a.hello > 655) fail(`argument --hello: ${pyNum(a.hello)} is out of range (1 to 655 seconds)`);
  if (a.tunnel_refresh < 1 || a.tunnel_refresh > Number.MAX_SAFE_INTEGER)
    fail(`argument --tunnel-refresh: ${pyNum(a.tunnel_refresh)} is not a positive number of seconds`);
  for (const path of ["dh", "ca", "cert"] as const) if (a[path] === "") fail(`argument --${path}: empty path`);
  // It is also OpenVPN's --max-clients, which must be at least 1.
  if (a.connection_count < 1 || a.connection_count > INT_MAX)
    fail(`argument --connection-count: ${pyNum(a.connection_count)} is out of range (1 to ${INT_MAX})`);
  if (!(a.refresh_rate >= 0 && a.refresh_rate <= 1)) fail(`argument --refresh-rate: ${pyNum(a.refresh_rate)} is not a ratio between 0 and 1`);

  const serverProtos: readonly ServerProto[] = ["udp", "tcp-server"];
  const pp: DaemonConfig["pp"] = [];
  for (const [port, proto] of a.pp ?? []) {
    if (!isPort(port)) fail(`argument --pp: ${pyRepr(port)} is not a port number (1-65535)`);
    if (!serverProtos.includes(proto as ServerProto)) fail(`argument --pp: invalid choice: ${pyRepr(proto)} (choose from ${choices(serverProtos)})`);
    const item = { port: Number(port), proto: proto as ServerProto };
    // A second server on the same port and protocol could not bind.
    if (pp.some((p) => p.port === item.port && p.proto === item.proto)) fail(`argument --pp: ${item.port} ${item.proto} given twice`);
    pp.push(item);
  }
  if (pp.length === 0) pp.push(...DEFAULTS.pp.map((p) => ({ ...p })));

  const ipProtos: readonly PeerAddress["proto"][] = ["udp", "tcp-client", "tcp-server"];
  let address: PeerAddress[] | undefined;
  if (a.address !== undefined) {
    // Other nodes drop longer address lists (lib/utils/address.ts).
    if (a.address.length > MAX_ADDRESS_ITEMS) fail(`argument --ip: at most ${MAX_ADDRESS_ITEMS} addresses`);
    address = a.address.map(([ip, port, proto]) => {
      if (isIP(ip) === 0 || ip.includes("%")) fail(`argument --ip: ${pyRepr(ip)} is not an IPv4 or IPv6 address`);
      // The registry and every node refuse it: one line now rather than a node nobody dials.
      const unreachable = remoteUnicastProblem(ip);
      if (unreachable !== null) fail(`argument --ip: ${pyRepr(ip)} is ${unreachable}, which no other node can reach`);
      if (!isPort(port)) fail(`argument --ip: ${pyRepr(port)} is not a port number (1-65535)`);
      if (!ipProtos.includes(proto as PeerAddress["proto"])) fail(`argument --ip: invalid choice: ${pyRepr(proto)} (choose from ${choices(ipProtos)})`);
      return { ip, port: Number(port), proto: proto as PeerAddress["proto"] };
    });
  }

  // REMAINDER keeps the '--' that introduced it; it is a separator, not an OpenVPN option.
  const openvpnArgs = a.openvpn_args[0] === "--" ? a.openvpn_args.slice(1) : [...a.openvpn_args];

  return {
    server, serverPort: a.server_port, log: a.log, state: a.state, verbose: a.verbose,
    interfaces: [...a.iface_list], peersDbRefresh: a.peers_db_refresh, hello: a.hello, wireless: a.wireless,
    pp, tunnelRefresh: a.tunnel_refresh, dh: a.dh, ca: a.ca, cert: a.cert,
    connectionCount: a.connection_count, refreshRate: a.refresh_rate, address, openvpnArgs, noLegacy: a.no_legacy,
  };
}
