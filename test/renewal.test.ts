// A node's certificates over the years (lib/renewal.ts and the daemon's
// services around it, lib/daemon/renewal.ts and lib/daemon/ca-refresh.ts),
// with a fake registry, real files in a temporary directory and a manual
// clock: when the daemon renews, what it accepts as the renewed certificate
// and which CA it installs; a refused or failed renewal is retried with a
// backoff and shown; a legacy registry gets one warning a day.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { KeyObject, createPublicKey, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { CaRefresh } from "../lib/daemon/ca-refresh";
import { CertificateRenewal } from "../lib/daemon/renewal";
import type { RpcCaller } from "../lib/peers-refresh";
import {
  CHECK_EVERY_MS, FIRST_RETRY_MS, MAX_RETRY_MS, RENEW_BEFORE_DAYS, checkRenewed, compareCa, expiryWarnings, renewalReason, retryDelay, untilNextLook,
} from "../lib/renewal";
import { parseIpv6Prefix, serialFromNetwork } from "../lib/utils/address";
import { CertificateAuthority, checkRequest, createCaCertificate, createCertificateRequest, issueCertificate, loadCa, renewCaCertificate, renewNodeCertificate } from "../lib/utils/cert";
import { createLogger } from "../lib/utils/log";
import { renewalRequest } from "../lib/utils/x509";
import { XmlRpcFault } from "../lib/xmlrpc";
import { ManualTimers, settle } from "./helpers/manual-timers";

const DAY = 86_400_000;
const T0 = Date.parse("2026-12-01T10:00:00Z");
const tmp = mkdtempSync(join(tmpdir(), "vfb-renewal-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const rsa = (): KeyObject => generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
const caKey = rsa();
const SUBJECT = [{ name: "O", value: "vifibnet tests" }, { name: "CN", value: "test CA" }];
const SERIAL = serialFromNetwork(parseIpv6Prefix("2001:db8:42::/48")!);
/** The network's CA, valid `days` from `from`. */
const caPem = (from: number, days: number, key = caKey, subject = SUBJECT, serial = SERIAL): string =>
  createCaCertificate(key, serial, subject, new Date(from), days);
const CA_PEM = caPem(T0 - 300 * DAY, 3650);
const ca: CertificateAuthority = loadCa(CA_PEM, caKey.export({ type: "pkcs8", format: "pem" }).toString());
const nodeKey = rsa();
/** A node certificate for `key` (CN 5/16, O and C kept from the request), valid `days` from `from`. */
function issue(key: KeyObject, from: number, days: number, authority = ca): string {
  const req = checkRequest(renewalRequestFor(key));
  return issueCertificate(authority, req, "5/16", new Date(from), days);
}
/** A request with a subject, made the setup way (forge is fine in tests). */
const renewalRequestFor = (key: KeyObject): string =>
  createCertificateRequest(key, [{ name: "C", value: "FR" }, { name: "O", value: "Nexedi" }, { name: "CN", value: "x" }]);

describe("the policy", () => {
  test("renew with fewer than 30 days left, or when signed with SHA-1; retry after 10 min, doubling to 6 h", () => {
    assert.equal(RENEW_BEFORE_DAYS, 30);
    assert.equal(renewalReason({ notAfter: T0 + 31 * DAY, sha1: false }, T0), null);
    assert.equal(renewalReason({ notAfter: T0 + 29 * DAY, sha1: false }, T0), "expiring");
    assert.equal(renewalReason({ notAfter: T0 - DAY, sha1: false }, T0), "expiring");
    assert.equal(renewalReason({ notAfter: T0 + 300 * DAY, sha1: true }, T0), "sha1");
    assert.deepEqual([1, 2, 3, 6, 7, 50].map(retryDelay), [FIRST_RETRY_MS, 2 * FIRST_RETRY_MS, 4 * FIRST_RETRY_MS, 32 * FIRST_RETRY_MS, MAX_RETRY_MS, MAX_RETRY_MS]);
    assert.deepEqual([FIRST_RETRY_MS, MAX_RETRY_MS, CHECK_EVERY_MS], [600_000, 21_600_000, DAY]);
    assert.equal(untilNextLook({ notAfter: T0 + 100 * DAY }, T0), DAY, "a look a day");
    assert.equal(untilNextLook({ notAfter: T0 + 30 * DAY + 45_000 }, T0), 45_000, "or when it becomes due, if sooner");
  });

  test("expiry warnings name the file, the days left and what to do", () => {
    const w = expiryWarnings({ path: "/etc/v/cert.crt", notAfter: T0 + 10 * DAY + 1000 }, { path: "/etc/v/ca.pem", notAfter: T0 + 400 * DAY }, T0);
    assert.equal(w.length, 1);
    assert.match(w[0]!, /^the certificate \/etc\/v\/cert\.crt expires in 10 day\(s\), on 2026-12-11T10:00:01\.000Z: the daemon renews it/);
    const both = expiryWarnings({ path: "c", notAfter: T0 - 1 }, { path: "/etc/v/ca.pem", notAfter: T0 + 2 * DAY }, T0);
    assert.match(both[0]!, /^the certificate c has expired: peers refuse it/);
    assert.match(both[1]!, /^the CA certificate \/etc\/v\/ca\.pem expires in 2 day\(s\).*vifibnet-ca --renew/);
    assert.deepEqual(expiryWarnings({ path: "c", notAfter: T0 + 31 * DAY }, { path: "a", notAfter: T0 + 31 * DAY }, T0), []);
  });

  test("the renewal request: the certificate's subject and key, signed with it; the registry's parser and OpenSSL accept it", () => {
    const cert = issue(nodeKey, T0, 365);
    const csr = renewalRequest(cert, nodeKey);
    const checked = checkRequest(csr);
    assert.deepEqual(checked.subject, [{ name: "C", value: "FR" }, { name: "O", value: "Nexedi" }, { name: "CN", value: "" }], "the subject, CN where it was");
    assert.ok(checked.publicKey.equals(spkiOf(nodeKey)));
    const file = join(tmp, "req.pem");
    writeFileSync(file, csr);
    const r = spawnSync("openssl", ["req", "-in", file, "-noout", "-verify", "-subject"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /verify OK/i);
    assert.match(r.stdout, /CN ?= ?5\/16/);
    assert.throws(() => renewalRequest(cert, rsa()), /the key given to OpenVPN \(--key\) is not the certificate's/);
  });

  test("a renewed certificate is accepted only with our key and subject, from our CA, valid now and lasting longer", () => {
    const current = issue(nodeKey, T0 - 355 * DAY, 365);
    const renewed = issue(nodeKey, T0, 365);
    assert.equal(checkRenewed(current, renewed, CA_PEM, T0).notAfter, T0 + 365 * DAY);
    assert.throws(() => checkRenewed(current, issue(rsa(), T0, 365), CA_PEM, T0), /holds another key than ours/);
    const otherSubject = issueCertificate(ca, checkRequest(renewalRequest(current, nodeKey)), "6/16", new Date(T0), 365);
    assert.throws(() => checkRenewed(current, otherSubject, CA_PEM, T0), /names another subject .*CN=6\/16/);
    assert.equal(checkRenewed(current, renewNodeCertificate(ca, current, new Date(T0)), CA_PEM, T0).notAfter, T0 + 365 * DAY, "what the registry's renewal makes");
    const foreignKey = rsa();
    const foreign = loadCa(caPem(T0 - DAY, 3650, foreignKey), foreignKey.export({ type: "pkcs8", format: "pem" }).toString());
    assert.throws(() => checkRenewed(current, issue(nodeKey, T0, 365, foreign), CA_PEM, T0), /not issued by our CA/);
    assert.throws(() => checkRenewed(current, issue(nodeKey, T0 - 355 * DAY, 365), CA_PEM, T0), /expires no later than ours/);
    assert.throws(() => checkRenewed(current, issue(nodeKey, T0 + 2 * DAY, 365), CA_PEM, T0), /not valid now .* is a clock wrong\?/);
    assert.throws(() => checkRenewed(current, "garbage", CA_PEM, T0), /the registry's answer is not a PEM certificate/);
  });

  test("the registry's CA: the same one renewed is installed; any other difference is not", () => {
    assert.deepEqual(compareCa(CA_PEM, CA_PEM, T0), { kind: "same" });
    const renewed = renewCaCertificate(CA_PEM, caKey.export({ type: "pkcs8", format: "pem" }).toString(), new Date(T0), 3650); // vifibnet-ca --renew
    assert.deepEqual(compareCa(CA_PEM, renewed, T0), { kind: "renewed", notAfter: T0 + 3650 * DAY });
    const other = (pem: string): string => (compareCa(CA_PEM, pem, T0) as { why?: string }).why ?? "installed";
    assert.equal(other(caPem(T0, 3650, rsa())), "it holds another key");
    assert.match(other(caPem(T0, 3650, caKey, [{ name: "CN", value: "another CA" }])), /^its subject is CN=another CA/);
    assert.match(other(caPem(T0, 3650, caKey, SUBJECT, serialFromNetwork(parseIpv6Prefix("2001:db8:43::/48")!))), /^its serial \(the network\) is 0x/);
    assert.match(other(caPem(T0 - 400 * DAY, 3650)), /^it expires no later than ours/);
    assert.match(other(caPem(T0 - 400 * DAY, 10)), /^it expired on/);
    assert.match(other("not a certificate"), /^it is not a PEM certificate/);
    // A forgery: the same key, subject and serial, a later expiry, a signature the CA key never made.
    const forged = flipSignatureBit(renewed);
    assert.equal(other(forged), "its signature is not the CA key's");
  });
});

const spkiOf = (key: KeyObject): KeyObject => createPublicKey(key);

/** The certificate with one bit of its signature changed. */
function flipSignatureBit(pem: string): string {
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
  der[der.length - 1] ^= 1;
  return `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----\n`;
}

// ---- the services ----------------------------------------------------------

let dirs = 0;
/** A node directory: cert.crt (mode 0644) and ca.pem. */
function nodeDir(certPem: string, ca = CA_PEM): { cert: string; ca: string } {
  const dir = join(tmp, `node-${dirs++}`);
  spawnSync("mkdir", ["-p", dir]);
  writeFileSync(join(dir, "cert.crt"), certPem, { mode: 0o644 });
  writeFileSync(join(dir, "ca.pem"), ca);
  return { cert: join(dir, "cert.crt"), ca: join(dir, "ca.pem") };
}

/** A registry whose renewCertificate answers what `answer` says (a value, a fault, an error). */
function registry(answer: (cert: string, csr: string) => unknown): RpcCaller & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async call(method, params) {
      calls.push(method);
      const r = answer(String(params[0]), String(params[1]));
      if (r instanceof Error) throw r;
      return r;
    },
  };
}

function renewalService(files: { cert: string; ca: string }, rpc: RpcCaller, timers: ManualTimers, lines: string[], key: KeyObject | null = nodeKey) {
  const restarts: string[] = [];
  const s = new CertificateRenewal(files.cert, {
    rpc, key: () => key, ca: () => ({ path: files.ca, notAfter: T0 + 3000 * DAY }), timers, now: timers.now, logger: createLogger(1, (l) => lines.push(l)),
    restartServers: async (why) => void restarts.push(why),
  });
  return { s, restarts };
}

describe("the daemon's renewal", () => {
  test("a certificate expiring in 10 days: renewed at start, installed with cert.crt.old kept, the servers restarted, then a look a day", async () => {
    const timers = new ManualTimers(T0);
    const old = issue(nodeKey, T0 - 355 * DAY, 365);
    const files = nodeDir(old);
    let requested = "";
    const rpc = registry((cert, csr) => {
      assert.equal(cert, old, "the current certificate is sent");
      requested = csr;
      return issue(nodeKey, T0, 365);
    });
    const lines: string[] = [];
    const { s, restarts } = renewalService(files, rpc, timers, lines);
    assert.deepEqual([s.status().due, s.status().notAfter], ["expiring", T0 + 10 * DAY]);
    s.start();
    timers.fireNext();
    await settle();
    assert.deepEqual(rpc.calls, ["renewCertificate"]);
    assert.ok(checkRequest(requested).publicKey.equals(spkiOf(nodeKey)), "a request from our own key");
    assert.equal(readFileSync(files.cert + ".old", "utf8"), old);
    assert.equal(checkRenewed(old, readFileSync(files.cert, "utf8"), CA_PEM, T0).notAfter, T0 + 365 * DAY, "the renewed one is in place");
    assert.equal(statSync(files.cert).mode & 0o777, 0o644);
    assert.deepEqual(restarts, ["a renewed certificate"]);
    const st = s.status();
    assert.deepEqual([st.notAfter, st.due, st.lastError, st.renewedAt, st.lastAttempt, st.nextCheck], [T0 + 365 * DAY, null, null, T0, T0, T0 + DAY]);
    assert.ok(lines.some((l) => /WARNING: the certificate .* expires in 10 day\(s\)/.test(l)), "warned first");
    assert.ok(lines.some((l) => /Certificate .*cert\.crt renewed by the registry: valid until 2027-12-01/.test(l)));
    timers.advance(DAY);
    await settle();
    assert.deepEqual(rpc.calls, ["renewCertificate"], "a day later, nothing to do");
    await s.stop();
    assert.deepEqual(timers.delays(), []);
  });

  test("refused, unreachable, or a wrong answer: nothing installed, the error shown, tried again after 10 min, 20 min...", async () => {
    const timers = new ManualTimers(T0);
    const old = issue(nodeKey, T0 - 360 * DAY, 365);
    const files = nodeDir(old);
    const answers: unknown[] = [
      new XmlRpcFault("renewCertificate", 1, "<class 'PermissionError'>:prefix 0000000000000101 is revoked"),
      new Error("renewCertificate: cannot reach the registry at http://198.51.100.1:8000/RPC2: connection refused"),
      issue(rsa(), T0, 365),
      issue(nodeKey, T0, 365),
    ];
    const rpc = registry(() => answers.shift());
    const lines: string[] = [];
    const { s, restarts } = renewalService(files, rpc, timers, lines);
    s.start();
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      timers.fireNext();
      await settle();
      assert.equal(readFileSync(files.cert, "utf8"), old, "not installed");
      waits.push(s.status().nextCheck! - timers.time);
    }
    assert.deepEqual(waits, [10 * 60_000, 20 * 60_000, 40 * 60_000]);
    assert.match(s.status().lastError!.message, /holds another key than ours; trying again in 40 min$/);
    assert.ok(lines.some((l) => /cannot renew the certificate: the registry refused: .*is revoked; trying again in 10 min/.test(l)));
    assert.ok(lines.some((l) => /connection refused; trying again in 20 min/.test(l)));
    assert.equal(existsSync(files.cert + ".old"), false);
    assert.deepEqual(restarts, []);
    timers.fireNext();
    await settle();
    assert.equal(s.status().lastError, null, "the fourth attempt worked");
    assert.deepEqual(restarts, ["a renewed certificate"]);
    await s.stop();
  });

  test("a legacy registry (no renewCertificate): one warning a day, no retry before, nothing installed", async () => {
    const timers = new ManualTimers(T0);
    const files = nodeDir(issue(nodeKey, T0 - 350 * DAY, 365));
    const rpc = registry(() => new XmlRpcFault("renewCertificate", 1, `<class 'Exception'>:method "renewCertificate" is not supported`));
    const lines: string[] = [];
    const { s } = renewalService(files, rpc, timers, lines);
    s.start();
    timers.fireNext();
    await settle();
    timers.advance(DAY - 1);
    await settle();
    assert.equal(rpc.calls.length, 1, "not asked again within the day");
    timers.advance(1);
    await settle();
    assert.equal(rpc.calls.length, 2);
    const said = lines.filter((l) => /does not offer renewCertificate \(a legacy registry\?\)/.test(l));
    assert.equal(said.length, 2, "once a day");
    assert.match(s.status().lastError!.message, /vifibnet-setup --renew/);
    await s.stop();
  });

  test("no key among the OpenVPN arguments: said, retried; a certificate renewed by hand in the file is taken", async () => {
    const timers = new ManualTimers(T0);
    const files = nodeDir(issue(nodeKey, T0 - 350 * DAY, 365));
    const rpc = registry(() => assert.fail("no request without a key"));
    const lines: string[] = [];
    const { s, restarts } = renewalService(files, rpc, timers, lines, null);
    s.start();
    timers.fireNext();
    await settle();
    assert.match(s.status().lastError!.message, /^no readable key among the OpenVPN arguments \(-- --key FILE\)/);
    writeFileSync(files.cert, issue(nodeKey, T0, 365)); // vifibnet-setup --renew
    timers.fireNext();
    await settle();
    assert.deepEqual([s.status().notAfter, s.status().due, s.status().renewedAt], [T0 + 365 * DAY, null, T0 + 10 * 60_000]);
    assert.deepEqual(restarts, ["a certificate replaced in its file"]);
    await s.stop();
  });
});

describe("the daemon's CA refresh", () => {
  test("the registry serves the same CA renewed: installed with ca.pem.old kept, the servers restarted; then nothing more", async () => {
    const files = nodeDir(issue(nodeKey, T0, 365));
    const renewed = caPem(T0, 3650);
    const restarts: string[] = [];
    const lines: string[] = [];
    const c = new CaRefresh(files.ca, { now: () => T0, logger: createLogger(1, (l) => lines.push(l)), restartServers: async (w) => void restarts.push(w) });
    const rpc = registry(() => renewed);
    await c.check(rpc);
    assert.equal(readFileSync(files.ca, "utf8"), renewed);
    assert.equal(readFileSync(files.ca + ".old", "utf8"), CA_PEM);
    assert.deepEqual(restarts, ["a renewed CA"]);
    assert.deepEqual(c.current(), { path: files.ca, notAfter: T0 + 3650 * DAY });
    assert.deepEqual([c.status().renewedAt, c.status().checked, c.status().mismatch], [T0, T0, null]);
    await c.check(rpc);
    assert.deepEqual(restarts, ["a renewed CA"], "the same again: nothing to do");
  });

  test("another CA: warned about once, shown, never installed; an unreachable registry changes nothing", async () => {
    const files = nodeDir(issue(nodeKey, T0, 365));
    const restarts: string[] = [];
    const lines: string[] = [];
    const c = new CaRefresh(files.ca, { now: () => T0, logger: createLogger(1, (l) => lines.push(l)), restartServers: async (w) => void restarts.push(w) });
    const foreign = caPem(T0, 3650, rsa());
    await c.check(registry(() => foreign));
    await c.check(registry(() => foreign));
    await c.check(registry(() => new Error("getCa: cannot reach the registry")));
    assert.equal(readFileSync(files.ca, "utf8"), CA_PEM);
    assert.equal(existsSync(files.ca + ".old"), false);
    assert.deepEqual(restarts, []);
    assert.equal(lines.filter((l) => /WARNING: the registry's CA differs from .*ca\.pem and is not installed: it holds another key/.test(l)).length, 1);
    assert.equal(c.status().mismatch, "it holds another key");
    await c.check(registry(() => CA_PEM));
    assert.equal(c.status().mismatch, null, "the registry serves ours again");
  });
});
