// The node certificate's renewal as a service of the daemon (policy in
// lib/renewal.ts): at start and then daily (and when the certificate enters
// its renewal window, if that comes sooner), it warns when the certificate or
// the CA has fewer than 30 days left, and renews the certificate when it
// expires within 30 days or is SHA-1: renewCertificate(cert, csr) with a
// request made from the node's own key (`-- --key`) and subject, the answer
// checked, installed atomically (cert.crt.old kept), then the OpenVPN
// servers restarted one at a time (client tunnels take it at their next
// start). A failure is logged, shown in `vifibnet status`, and tried again
// after 10 min, doubling to 6 h; a registry without the method (a legacy
// one) is said so once a day. A certificate renewed by hand in the file
// (vifibnet-setup --renew) is taken at the next look.

import type { KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { type RpcCaller, unknownMethod } from "../peers-refresh";
import {
  CHECK_EVERY_MS, CertificateFacts, RENEW_CERTIFICATE, RenewalReason, certificateFacts, checkRenewed, expiryWarnings, renewalReason, retryDelay,
  untilNextLook,
} from "../renewal";
import { replaceKeepingOld } from "../utils/files";
import type { Logger } from "../utils/log";
import type { Timer, Timers } from "../utils/timers";
import { checkNodeCertificate, renewalRequest } from "../utils/x509";
import { XmlRpcFault } from "../xmlrpc";

export interface RenewalStatus {
  path: string;
  notAfter: number;
  sha1: boolean;
  /** Why it is due for renewal now, or null. */
  due: RenewalReason | null;
  lastAttempt: number | null;
  lastError: { at: number; message: string } | null;
  /** When it was last renewed (by this daemon, or by hand in the file). */
  renewedAt: number | null;
  nextCheck: number | null;
}

export interface RenewalDeps {
  rpc: RpcCaller;
  /** The node's private key (`-- --key`), or null when there is none. */
  key(): KeyObject | null;
  /** The CA's path and expiry now (the CA may be renewed meanwhile). */
  ca(): { path: string; notAfter: number };
  /** Restarts the OpenVPN servers one at a time, so that they read the new certificate (./servers.ts ServerRestarts). */
  restartServers(why: string): Promise<void>;
  timers: Timers;
  now: () => number;
  logger: Logger;
}

export class CertificateRenewal {
  private timer: Timer | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private failures = 0;
  /** The certificate the servers run with. */
  private pem: string;
  private facts: CertificateFacts;
  private readonly state: Omit<RenewalStatus, "path" | "notAfter" | "sha1" | "due"> = { lastAttempt: null, lastError: null, renewedAt: null, nextCheck: null };

  constructor(private readonly certPath: string, private readonly deps: RenewalDeps) {
    this.pem = readFileSync(certPath, "utf8");
    this.facts = certificateFacts(this.pem);
  }

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.state.nextCheck = this.deps.now() + ms;
    this.timer = this.deps.timers.after(ms, () => {
      this.timer = null;
      this.running = this.check()
        .catch((e: unknown) => {
          this.deps.logger.warn(`certificate renewal: ${(e as Error).stack ?? String(e)}`);
          return CHECK_EVERY_MS;
        })
        .then((next) => {
          this.running = null;
          this.schedule(next);
        });
    });
  }

  /** One look; resolves with the wait until the next. */
  private async check(): Promise<number> {
    const { deps } = this;
    this.takeFromFile();
    for (const w of expiryWarnings({ path: this.certPath, notAfter: this.facts.notAfter }, deps.ca(), deps.now())) deps.logger.warn(w);
    const reason = renewalReason(this.facts, deps.now());
    if (reason === null) return untilNextLook(this.facts, deps.now());
    const why = reason === "sha1" ? "it is signed with SHA-1" : `it expires on ${new Date(this.facts.notAfter).toISOString()}`;
    deps.logger.log(1, `Renewing the certificate ${this.certPath}: ${why}`);
    this.state.lastAttempt = deps.now();
    let error: string;
    try {
      if (await this.renew()) return untilNextLook(this.facts, deps.now());
      error = "";
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    if (error === "") {
      // A registry without the method: nothing to retry before tomorrow.
      error = `the registry does not offer ${RENEW_CERTIFICATE} (a legacy registry?): renew ${this.certPath} by hand (vifibnet-setup --renew) or move the network to a vifibnet registry`;
      this.failures = 0;
      this.fail(error);
      return CHECK_EVERY_MS;
    }
    this.failures++;
    const delay = retryDelay(this.failures);
    this.fail(`${error}; trying again in ${Math.round(delay / 60_000)} min`);
    return delay;
  }

  private fail(message: string): void {
    this.state.lastError = { at: this.deps.now(), message };
    this.deps.logger.warn(`cannot renew the certificate: ${message}`);
  }

  /** Asks the registry; true once installed, false when it has no such method; throws with the reason otherwise. */
  private async renew(): Promise<boolean> {
    const { deps } = this;
    const key = deps.key();
    if (key === null) throw new Error("no readable key among the OpenVPN arguments (-- --key FILE): the renewal request is signed with it");
    const csr = renewalRequest(this.pem, key);
    let answer: unknown;
    try {
      answer = await deps.rpc.call(RENEW_CERTIFICATE, [this.pem, csr]);
    } catch (e) {
      if (unknownMethod(e)) return false;
      throw e instanceof XmlRpcFault ? new Error(`the registry refused: ${e.detail}`) : e;
    }
    if (typeof answer !== "string") throw new Error(`the registry's answer to ${RENEW_CERTIFICATE} is not a certificate`);
    const caPath = deps.ca().path;
    const facts = checkRenewed(this.pem, answer, readFileSync(caPath, "utf8"), deps.now());
    replaceKeepingOld(this.certPath, answer);
    this.installed(answer, facts, "renewed by the registry");
    this.failures = 0;
    this.state.lastError = null;
    void deps.restartServers("a renewed certificate");
    return true;
  }

  /** The file holds another certificate than the servers use, one that works with the CA (renewed by hand): take it. */
  private takeFromFile(): void {
    let pem: string;
    try {
      pem = readFileSync(this.certPath, "utf8");
    } catch {
      return;
    }
    if (pem === this.pem) return;
    try {
      checkNodeCertificate(pem, readFileSync(this.deps.ca().path, "utf8"), new Date(this.deps.now()));
    } catch (e) {
      this.deps.logger.warn(`${this.certPath} changed but cannot be used (${(e as Error).message}); the servers keep the certificate they started with`);
      return;
    }
    this.installed(pem, certificateFacts(pem), "replaced in the file");
    void this.deps.restartServers("a certificate replaced in its file");
  }

  private installed(pem: string, facts: CertificateFacts, how: string): void {
    this.pem = pem;
    this.facts = facts;
    this.state.renewedAt = this.deps.now();
    this.deps.logger.log(1, `Certificate ${this.certPath} ${how}: valid until ${new Date(facts.notAfter).toISOString()}${facts.sha1 ? ", signed with SHA-1" : ""}`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.state.nextCheck = null;
    await this.running;
  }

  status(): RenewalStatus {
    return {
      path: this.certPath, notAfter: this.facts.notAfter, sha1: this.facts.sha1, due: renewalReason(this.facts, this.deps.now()), ...this.state,
    };
  }
}
