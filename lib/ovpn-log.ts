// What a tunnel negotiated, read from OpenVPN's own log: the TLS version and
// cipher suite of its control channel, and its data channel cipher. OpenVPN
// 2.6 reports these nowhere else (no script variable, no management command;
// the server's --status file has the data cipher only), and logs them at
// --verb 2 and above (D_HANDSHAKE), on every handshake and renegotiation:
//
//   Control Channel: TLSv1.3, cipher TLSv1.3 TLS_AES_256_GCM_SHA384, peer certificate: ...
//   [1/16] Peer Connection Initiated with [AF_INET]198.51.100.1:1194
//   Data Channel: cipher 'AES-256-GCM', peer-id: 0
//
// A server's log prefixes each line with the client: its address until the
// client is authenticated ("198.51.100.2:36875 Control Channel: ..."), then
// "<common name>/<address>". Pure: lines (or the chunks a pipe delivers) in,
// the latest state out.

/** The minimum --verb at which OpenVPN logs what this module reads. */
export const NEGOTIATION_VERB = 2;
/** A longer line is no line this module reads: it is cut there rather than buffered without bound. */
const MAX_LINE = 4096;

export interface Negotiation {
  /** The peer's certificate common name (a vifibnet CN is "<decimal>/<length>"), once authenticated. */
  peer: string | null;
  /** As OpenSSL names it: "TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1" (1.0), "SSLv3". */
  tlsVersion: string;
  /** The TLS cipher suite, e.g. "TLS_AES_256_GCM_SHA384" or "DHE-RSA-AES256-SHA". */
  tlsCipher: string;
  /** The data channel cipher, e.g. "AES-256-GCM" or "BF-CBC"; null until the data channel is set up. */
  dataCipher: string | null;
  /** The data channel's HMAC for a non-AEAD cipher (e.g. "SHA1"); null otherwise. */
  dataAuth: string | null;
}

const AEAD = /^(AES-(128|192|256)-GCM|CHACHA20-POLY1305)$/i;

/** A negotiation a legacy peer forced: TLS below 1.2, or a data cipher without AEAD. */
export function isLegacyNegotiation(n: Negotiation): boolean {
  const weakTls = !/^TLSv1\.[23]$/.test(n.tlsVersion);
  return weakTls || (n.dataCipher !== null && !AEAD.test(n.dataCipher));
}

// "2026-12-01 20:54:24 " (2.5+ on stdout), "Mon Dec  1 20:54:24 2026 " (older), then "us=123456 " at --verb 4+.
const STAMP = /^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d |[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} )?(?:us=\d+ )?/;
const BANNER = /^OpenVPN \d+\.\d+/;
const CONTROL = /^(?:(\S+) )?Control Channel: (\S+), cipher \S+ ([^\s,]+)/;
const INITIATED = /^(?:(\S+) )?\[([^\]]*)\] Peer Connection Initiated with /;
const DATA = /^(?:(\S+) )?Data Channel: (?:using negotiated )?cipher '([^']+)'(?:, auth '([^']+)')?/;

/**
 * Follows one OpenVPN log, line by line: a client's (one tunnel) or a
 * server's (one negotiation per client common name). A new OpenVPN process
 * in the same file (its start banner) forgets what the previous one said.
 */
export class NegotiationLog {
  private own: Negotiation | null = null;
  /** Server: handshakes of clients not yet authenticated, by their address. */
  private readonly pending = new Map<string, Negotiation>();
  private readonly byPeer = new Map<string, Negotiation>();
  /** What `chunk` received after its last newline. */
  private partial = "";

  /** Feeds what OpenVPN wrote, in whatever pieces it arrives: each complete line goes to line(). */
  chunk(data: Buffer | string): void {
    const lines = (this.partial + data.toString()).split("\n");
    this.partial = lines.pop()!.slice(-MAX_LINE);
    for (const l of lines) this.line(l);
  }

  /** Feeds one line of the log. */
  line(raw: string): void {
    const text = raw.replace(STAMP, "");
    if (BANNER.test(text)) {
      this.own = null;
      this.pending.clear();
      this.byPeer.clear();
      return;
    }
    let m = CONTROL.exec(text);
    if (m) {
      const tls = { tlsVersion: m[2]!, tlsCipher: m[3]! };
      const prefix = m[1];
      if (prefix === undefined) this.own = { peer: this.own?.peer ?? null, dataCipher: null, dataAuth: null, ...this.own, ...tls };
      else {
        const cn = commonNameOf(prefix);
        // A renegotiation keeps the data cipher (OpenVPN never changes it within a session).
        if (cn === null) this.pending.set(prefix, { peer: null, dataCipher: null, dataAuth: null, ...tls });
        else this.byPeer.set(cn, { dataCipher: null, dataAuth: null, ...this.byPeer.get(cn), ...tls, peer: cn });
      }
      return;
    }
    m = INITIATED.exec(text);
    if (m) {
      const [, prefix, cn] = m as unknown as [string, string | undefined, string];
      if (prefix === undefined) {
        if (this.own) this.own = { ...this.own, peer: cn };
      } else {
        const tls = this.pending.get(prefix);
        this.pending.delete(prefix);
        if (tls) this.byPeer.set(cn, { ...tls, peer: cn });
      }
      return;
    }
    m = DATA.exec(text);
    if (m) {
      const data = { dataCipher: m[2]!, dataAuth: m[3] ?? null };
      const prefix = m[1];
      if (prefix === undefined) {
        if (this.own) this.own = { ...this.own, ...data };
      } else {
        const cn = commonNameOf(prefix);
        const known = cn === null ? undefined : this.byPeer.get(cn);
        if (cn !== null && known) this.byPeer.set(cn, { ...known, ...data });
      }
    }
  }

  /** A client tunnel's negotiation, or null while none completed. */
  tunnel(): Negotiation | null {
    return this.own;
  }

  /** A server's negotiations, by the client's common name (the latest of each). */
  peers(): ReadonlyMap<string, Negotiation> {
    return this.byPeer;
  }
}

/** "<common name>/<address>" → the common name; an address alone (no "/") → null. */
function commonNameOf(prefix: string): string | null {
  const slash = prefix.lastIndexOf("/");
  return slash <= 0 ? null : prefix.slice(0, slash);
}

function feed(text: string): NegotiationLog {
  const log = new NegotiationLog();
  for (const line of text.split("\n")) log.line(line);
  return log;
}

/** The negotiation in a client tunnel's log (e.g. vifibnet.client.<prefix>.log), or null. */
export function tunnelNegotiation(logText: string): Negotiation | null {
  return feed(logText).tunnel();
}

/** The negotiations in a server's log (vifibnet.server.<proto>.log), by client common name. */
export function serverNegotiations(logText: string): ReadonlyMap<string, Negotiation> {
  return feed(logText).peers();
}
