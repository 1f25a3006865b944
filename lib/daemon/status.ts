// The snapshot `vifibnet status` shows: one JSON object, a stable interface
// (README "vifibnet status" lists every field), built from what each service
// of the daemon reports, and its compact human view. Times are ISO 8601 UTC
// strings (null when there is none), prefixes bit strings as in peers.db.
// A new section is a field here and one source in buildStatus.

import type { AddressSource } from "../advertise";
import type { BabelNeighbour } from "../babel-control";
import { isLegacyNegotiation, type Negotiation } from "../ovpn-log";
import type { CloseReason, TunnelState } from "../tunnel";
import { bitsToIpv6, prefixToCn } from "../utils/address";
import type { AdvertisedStatus } from "./advertiser";
import type { RenewalReason } from "../renewal";
import type { BabelStatus } from "./babel";
import type { CaStatus } from "./ca-refresh";
import type { Identity } from "./host";
import type { RegistryStatus } from "./peers";
import type { RenewalStatus } from "./renewal";
import type { RevocationStatus } from "./revocations";
import type { ServerStatus } from "./servers";
import type { ChildStatus } from "./supervisor";
import type { RefreshStatus } from "./tunnel-refresh";
import type { TunnelInfo } from "./tunnels";

export const STATUS_VERSION = 1;

type Time = string | null;

export interface CertificateView {
  path: string;
  notAfter: string;
  /** Whole days until notAfter (negative once expired). */
  daysLeft: number;
}

/** What a tunnel negotiated (lib/ovpn-log.ts); all null until OpenVPN logged it. */
export interface NegotiationView {
  tlsVersion: string | null;
  tlsCipher: string | null;
  dataCipher: string | null;
  /** A legacy peer's terms: TLS below 1.2 or a data cipher without AEAD (BF-CBC). */
  legacy: boolean | null;
}

export interface Status {
  version: typeof STATUS_VERSION;
  pid: number;
  startedAt: string;
  time: string;
  node: { address: string; subnet: string; prefix: string; commonName: string; network: string; addressRestores: number; lastAddressRestore: Time };
  certificate: CertificateView & {
    sha1: boolean;
    renewal: { due: RenewalReason | null; lastAttempt: Time; lastError: { at: string; message: string } | null; renewedAt: Time; nextCheck: Time };
  };
  ca: CertificateView & { checked: Time; renewedAt: Time; mismatch: string | null };
  advertised: {
    addresses: string | null;
    source: AddressSource;
    since: Time;
    reports: Array<{ prefix: string; ip: string; at: string }>;
    decision: string | null;
    waitingUntil: Time;
  };
  registry: { url: string; lastSuccess: Time; lastError: { at: string; message: string } | null; nextRefresh: Time; declared: boolean | null };
  servers: Array<{
    interface: string; port: number; proto: string; pid: number | null; running: boolean; refused: number;
    peers: Array<{ prefix: string | null; commonName: string; remote: string | null; since: string } & NegotiationView>;
  }>;
  tunnels: Array<{
    interface: string; prefix: string; address: string; remote: string | null; state: TunnelState; since: string; openedAt: string;
    pid: number | null; bytes: number | null; routes: number;
  } & NegotiationView>;
  revocation: {
    issued: Time; revoked: Array<{ prefix: string; commonName: string; since: string; reason: string | null }>;
    fetched: Time; lastError: { at: string; message: string } | null;
  };
  refresh: { wanted: number; last: Time; next: Time; closed: Record<CloseReason, number> };
  babel: {
    answered: boolean; error: string | null; neighbours: Array<Omit<BabelNeighbour, "iface"> & { interface: string }>; routes: number;
    reachable: Array<{ prefix: string; address: string; metric: number; interface: string }>;
  };
  children: Array<{ name: string; pid: number | null; running: boolean; restarts: number; since: Time; lastExit: { at: string; status: string } | null; restartAt: Time }>;
}

/** What each service reports, as the composition root gathers it. */
export interface StatusSources {
  startedAt: number;
  now: number;
  id: Identity;
  certificate: RenewalStatus;
  ca: CaStatus;
  revocation: RevocationStatus;
  subnet: string;
  addressRestores: { count: number; last: number | null };
  advertised: AdvertisedStatus;
  registry: RegistryStatus;
  servers: ServerStatus[];
  tunnels: TunnelInfo[];
  bytes: (iface: string) => number | null;
  routes: ReadonlyMap<string, number>;
  refresh: RefreshStatus & { closed: Record<CloseReason, number> };
  babel: BabelStatus;
  children: ChildStatus[];
}

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): Time => (ms === null ? null : iso(ms));
const DAY_MS = 86_400_000;

function negotiationView(n: Negotiation | null): NegotiationView {
  return n === null
    ? { tlsVersion: null, tlsCipher: null, dataCipher: null, legacy: null }
    : { tlsVersion: n.tlsVersion, tlsCipher: n.tlsCipher, dataCipher: n.dataCipher, legacy: isLegacyNegotiation(n) };
}

function certificate(path: string, notAfter: number, now: number): CertificateView {
  return { path, notAfter: iso(notAfter), daysLeft: Math.floor((notAfter - now) / DAY_MS) };
}

const error = (e: { at: number; message: string } | null): { at: string; message: string } | null => e && { at: iso(e.at), message: e.message };

export function buildStatus(s: StatusSources): Status {
  const { id, now } = s;
  return {
    version: STATUS_VERSION, pid: process.pid, startedAt: iso(s.startedAt), time: iso(now),
    node: {
      address: id.address, subnet: s.subnet, prefix: id.prefix, commonName: id.commonName,
      network: `${bitsToIpv6(id.network)}/${id.network.length}`,
      addressRestores: s.addressRestores.count, lastAddressRestore: isoOrNull(s.addressRestores.last),
    },
    certificate: {
      ...certificate(s.certificate.path, s.certificate.notAfter, now), sha1: s.certificate.sha1,
      renewal: {
        due: s.certificate.due, lastAttempt: isoOrNull(s.certificate.lastAttempt), lastError: error(s.certificate.lastError),
        renewedAt: isoOrNull(s.certificate.renewedAt), nextCheck: isoOrNull(s.certificate.nextCheck),
      },
    },
    ca: { ...certificate(s.ca.path, s.ca.notAfter, now), checked: isoOrNull(s.ca.checked), renewedAt: isoOrNull(s.ca.renewedAt), mismatch: s.ca.mismatch },
    advertised: {
      addresses: s.advertised.addresses, source: s.advertised.source, since: isoOrNull(s.advertised.since),
      reports: s.advertised.reports.map((r) => ({ prefix: r.prefix, ip: r.ip, at: iso(r.at) })),
      decision: s.advertised.decision, waitingUntil: isoOrNull(s.advertised.waitingUntil),
    },
    registry: {
      url: s.registry.url, lastSuccess: isoOrNull(s.registry.lastSuccess), nextRefresh: isoOrNull(s.registry.nextRefresh),
      lastError: error(s.registry.lastError), declared: s.registry.declared,
    },
    servers: s.servers.map((v) => ({
      interface: v.iface, port: v.port, proto: v.proto, pid: v.child.pid, running: v.child.running, refused: v.refused,
      peers: v.peers.map((p) => ({ prefix: p.prefix, commonName: p.commonName, remote: p.remote, since: iso(p.since), ...negotiationView(p.negotiation) })),
    })),
    tunnels: s.tunnels.map((t) => ({
      interface: t.iface, prefix: t.prefix, address: t.address, remote: t.remote, state: t.state, since: iso(t.since), openedAt: iso(t.openedAt),
      pid: t.pid, bytes: s.bytes(t.iface), routes: s.routes.get(t.iface) ?? 0, ...negotiationView(t.negotiation),
    })),
    revocation: {
      issued: isoOrNull(s.revocation.issued), fetched: isoOrNull(s.revocation.fetched), lastError: error(s.revocation.lastError),
      revoked: s.revocation.revoked.map((r) => ({ prefix: r.prefix, commonName: r.cn, since: iso(r.since * 1000), reason: r.reason })),
    },
    refresh: { wanted: s.refresh.wanted, last: isoOrNull(s.refresh.last), next: isoOrNull(s.refresh.next), closed: { ...s.refresh.closed } },
    babel: {
      answered: s.babel.answered, error: s.babel.error, routes: s.babel.routes,
      neighbours: s.babel.neighbours.map(({ iface, ...n }) => ({ ...n, interface: iface })),
      reachable: s.babel.reachable.map(({ iface, ...r }) => ({ ...r, interface: iface })),
    },
    children: s.children.map((c) => ({
      name: c.name, pid: c.pid, running: c.running, restarts: c.restarts, since: isoOrNull(c.since),
      lastExit: c.lastExit && { at: iso(c.lastExit.at), status: c.lastExit.status }, restartAt: isoOrNull(c.restartAt),
    })),
  };
}

// ---- the human view --------------------------------------------------------

/** "42 s", "3 min", "5 h 2 min", "12 days". */
function duration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} days`;
}

function ago(t: string | null, now: number): string {
  if (t === null) return "never";
  const ms = Date.parse(t) - now;
  return ms > 0 ? `in ${duration(ms)}` : `${duration(ms)} ago`;
}

const cn = (prefix: string | null): string => (prefix === null ? "?" : prefixToCn(prefix));

function bytes(n: number | null): string {
  if (n === null) return "-";
  return n < 10_000 ? `${n} B` : n < 10_000_000 ? `${(n / 1000).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

/** Lines of `rows`, columns padded to their widest cell. */
function columns(rows: string[][], indent = "  "): string[] {
  const widths = rows.reduce<number[]>((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), []);
  return rows.map((r) => (indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).trimEnd());
}

/** "TLSv1.3 AES-256-GCM", "TLSv1 BF-CBC (legacy)", or "" before the handshake. */
function negotiated(n: NegotiationView): string {
  if (n.tlsVersion === null) return "";
  return `${n.tlsVersion} ${n.dataCipher ?? "?"}${n.legacy ? " (legacy)" : ""}`;
}

const SOURCE: Record<AddressSource, string> = { ip: "--ip", upnp: "UPnP mapping", peers: "learned from peers", none: "nothing yet" };

/** The compact view `vifibnet status` prints without --json. */
export function formatStatus(s: Status): string {
  const now = Date.parse(s.time);
  const out: string[] = [];
  const n = s.node;
  out.push(`node ${n.address} (${n.commonName}, ${n.subnet}) in ${n.network}, pid ${s.pid}, up ${duration(now - Date.parse(s.startedAt))}` +
    (n.addressRestores > 0 ? `; address restored ${n.addressRestores} time(s), last ${ago(n.lastAddressRestore, now)}` : ""));
  const c = s.certificate, rn = c.renewal;
  out.push(`certificate until ${c.notAfter.slice(0, 10)} (${c.daysLeft} days)${c.sha1 ? ", signed with SHA-1" : ""}` +
    (rn.renewedAt ? `, renewed ${ago(rn.renewedAt, now)}` : "") + (rn.due ? `; due for renewal (${rn.due === "sha1" ? "SHA-1" : "expiring"}), next attempt ${ago(rn.nextCheck, now)}` : "") +
    (rn.lastError ? `; last renewal error ${ago(rn.lastError.at, now)}: ${rn.lastError.message}` : "") +
    `; CA until ${s.ca.notAfter.slice(0, 10)} (${s.ca.daysLeft} days)${s.ca.renewedAt ? `, renewed ${ago(s.ca.renewedAt, now)}` : ""}` +
    (s.ca.mismatch ? `; the registry's CA differs, not installed: ${s.ca.mismatch}` : ""));
  const a = s.advertised;
  out.push(`advertising ${a.addresses ?? "nothing"} (${SOURCE[a.source]}${a.since ? `, since ${ago(a.since, now)}` : ""})` +
    (a.source === "none" && a.reports.length > 0 ? `; peers report: ${a.reports.map((r) => `${r.ip} (${cn(r.prefix)})`).join(", ")}` +
      (a.waitingUntil ? `, believed ${ago(a.waitingUntil, now)} unless another peer disagrees` : "") : ""));
  const r = s.registry;
  out.push(`registry ${r.url}: last success ${ago(r.lastSuccess, now)}, next refresh ${ago(r.nextRefresh, now)}` +
    (r.lastError ? `; last error ${ago(r.lastError.at, now)}: ${r.lastError.message}` : ""));
  for (const v of s.servers) {
    out.push(`server ${v.interface} ${v.port}/${v.proto}: ${v.running ? `pid ${v.pid}` : "not running"}, ${v.peers.length} peer(s)` +
      (v.refused > 0 ? `; refused ${v.refused} revoked connection(s)` : ""));
    out.push(...columns(v.peers.map((p) => [cn(p.prefix), p.remote ?? "?", `since ${ago(p.since, now)}`, negotiated(p)])));
  }
  const rv = s.revocation;
  if (rv.issued !== null || rv.lastError !== null)
    out.push(`revocation list ${rv.issued ? `of ${rv.issued.slice(0, 19)}Z` : "none"}: ${rv.revoked.length} revoked` +
      (rv.revoked.length > 0 ? ` (${rv.revoked.map((r) => r.commonName).join(", ")})` : "") + `, fetched ${ago(rv.fetched, now)}` +
      (rv.lastError ? `; last error ${ago(rv.lastError.at, now)}: ${rv.lastError.message}` : ""));
  const closed = Object.entries(s.refresh.closed).filter(([, k]) => k > 0).map(([why, k]) => `${k} ${why}`).join(", ");
  out.push(`tunnels: ${s.tunnels.length} of ${s.refresh.wanted} wanted; next refresh ${ago(s.refresh.next, now)}${closed ? `; closed so far: ${closed}` : ""}`);
  out.push(...columns(s.tunnels.map((t) => [
    t.interface, cn(t.prefix), t.state, t.remote ?? t.address, `since ${ago(t.since, now)}`, bytes(t.bytes), `${t.routes} route(s)`, negotiated(t),
  ])));
  const b = s.babel;
  if (!b.answered) out.push(`babel: no answer (${b.error})`);
  else {
    out.push(`babel: ${b.neighbours.length} neighbour(s), ${b.routes} route(s), ${b.reachable.length} node(s) reachable`);
    out.push(...columns(b.neighbours.map((x) => ["neighbour", x.address, `on ${x.interface}`, `rxcost ${x.rxcost}`, `txcost ${x.txcost}`])));
    out.push(...columns(b.reachable.map((x) => ["reaches", x.address, `(${cn(x.prefix)})`, `via ${x.interface}`, `metric ${x.metric}`])));
  }
  out.push("children:");
  out.push(...columns(s.children.map((c) => [
    c.name, c.running ? `pid ${c.pid}` : c.restartAt ? `restarting ${ago(c.restartAt, now)}` : "stopped", `${c.restarts} restart(s)`,
    c.lastExit ? `last: ${c.lastExit.status} ${ago(c.lastExit.at, now)}` : "",
  ])));
  return out.join("\n") + "\n";
}
