// What a tunnel negotiated, read from OpenVPN's log (lib/ovpn-log.ts), on logs
// recorded from OpenVPN 2.6.14 at --verb 3 (fixtures/ovpn-log/, paths and
// names replaced): a server (udp6, the legacy allowances) with a client of
// ours over IPv4 that renegotiates every 4 s, and an emulated 2012 node over
// IPv6 (TLS 1.0, BF-CBC); and the logs of those two clients.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Negotiation, NegotiationLog, isLegacyNegotiation, serverNegotiations, tunnelNegotiation } from "../lib/ovpn-log";

const FIXTURES = join(__dirname, "..", "..", "fixtures", "ovpn-log");
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), "utf8");

const MODERN: Negotiation = { peer: "1/16", tlsVersion: "TLSv1.3", tlsCipher: "TLS_AES_256_GCM_SHA384", dataCipher: "AES-256-GCM", dataAuth: null };
const LEGACY: Negotiation = { peer: "1/16", tlsVersion: "TLSv1", tlsCipher: "ECDHE-RSA-AES256-SHA", dataCipher: "BF-CBC", dataAuth: "SHA1" };

test("a client tunnel: TLS version and suite, data cipher, the peer's CN", () => {
  assert.deepEqual(tunnelNegotiation(fixture("client-modern.log")), MODERN);
  const legacy = tunnelNegotiation(fixture("client-legacy.log"))!;
  assert.deepEqual(legacy, LEGACY);
  assert.equal(isLegacyNegotiation(legacy), true);
  assert.equal(isLegacyNegotiation(MODERN), false);
});

test("a server: one negotiation per client CN, whether it came over IPv4 or IPv6; renegotiations keep the data cipher", () => {
  const peers = serverNegotiations(fixture("server.log"));
  assert.deepEqual([...peers.keys()].sort(), ["2/16", "3/16"]);
  assert.deepEqual(peers.get("2/16"), { ...MODERN, peer: "2/16" });
  assert.deepEqual(peers.get("3/16"), { ...LEGACY, peer: "3/16" });
});

test("a new OpenVPN process in the same (appended) log forgets the previous one", () => {
  const restarted = fixture("client-modern.log") + fixture("client-legacy.log").split("\n").slice(0, 3).join("\n");
  assert.equal(tunnelNegotiation(restarted), null, "the new process has not negotiated yet");
  assert.deepEqual(tunnelNegotiation(fixture("client-legacy.log") + fixture("client-modern.log")), MODERN);
  assert.equal(serverNegotiations(fixture("server.log") + "2026-12-01 21:40:00 OpenVPN 2.6.14 x86_64-pc-linux-gnu\n").size, 0);
});

test("below --verb 2 there is nothing to read; a handshake without its data channel yet", () => {
  const verb1 = fixture("client-modern.log").split("\n").filter((l) => !/Control Channel|Data Channel/.test(l)).join("\n");
  assert.equal(tunnelNegotiation(verb1), null);
  const log = new NegotiationLog();
  log.line("2026-12-01 21:30:08 us=123456 Control Channel: TLSv1.2, cipher TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384, peer certificate: 2048 bits RSA");
  assert.deepEqual(log.tunnel(), { peer: null, tlsVersion: "TLSv1.2", tlsCipher: "ECDHE-RSA-AES256-GCM-SHA384", dataCipher: null, dataAuth: null });
  // OpenVPN 2.5's wording of the data channel line.
  log.line("Mon Dec  1 21:30:08 2026 Data Channel: using negotiated cipher 'CHACHA20-POLY1305'");
  assert.equal(log.tunnel()!.dataCipher, "CHACHA20-POLY1305");
  assert.equal(isLegacyNegotiation(log.tunnel()!), false);
  assert.equal(isLegacyNegotiation({ ...log.tunnel()!, tlsVersion: "TLSv1.1" }), true);
});

test("a server's unauthenticated handshake is nobody's until the client is authenticated", () => {
  const log = new NegotiationLog();
  log.line("2026-12-01 21:30:08 198.51.100.2:37135 Control Channel: TLSv1.3, cipher TLSv1.3 TLS_AES_256_GCM_SHA384, peer certificate: 2048 bits RSA");
  log.line("2026-12-01 21:30:08 198.51.100.9:4000 Data Channel: cipher 'AES-256-GCM', peer-id: 0");
  assert.equal(log.peers().size, 0);
  log.line("2026-12-01 21:30:08 198.51.100.2:37135 [2/16] Peer Connection Initiated with [AF_INET6]::ffff:198.51.100.2:37135");
  log.line("2026-12-01 21:30:09 2/16/198.51.100.2:37135 Data Channel: cipher 'AES-128-GCM', peer-id: 0");
  assert.deepEqual(log.peers().get("2/16"), { peer: "2/16", tlsVersion: "TLSv1.3", tlsCipher: "TLS_AES_256_GCM_SHA384", dataCipher: "AES-128-GCM", dataAuth: null });
  assert.equal(log.tunnel(), null, "a server log has no tunnel of its own");
});

test("chunks as a pipe delivers them: lines split anywhere, several in one", () => {
  const text = fixture("client-modern.log");
  const log = new NegotiationLog();
  for (let at = 0; at < text.length; at += 7) log.chunk(Buffer.from(text.slice(at, at + 7)));
  assert.deepEqual(log.tunnel(), MODERN);
  const whole = new NegotiationLog();
  whole.chunk(fixture("server.log"));
  assert.deepEqual(whole.peers(), serverNegotiations(fixture("server.log")));
});
