// The network's CA on a node, kept current (policy in lib/renewal.ts
// compareCa): at each peers DB refresh the daemon asks the registry for its
// CA (getCa). The same CA re-issued to expire later (vifibnet-ca --renew:
// same key, subject and serial) replaces ca.pem atomically, ca.pem.old
// kept, and the OpenVPN servers are restarted one at a time; any other
// difference is warned about (once per CA the registry serves), never
// installed: ca.pem is what this node trusts.

import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { RpcCaller } from "../peers-refresh";
import { GET_CA, compareCa } from "../renewal";
import { replaceKeepingOld } from "../utils/files";
import type { Logger } from "../utils/log";

export interface CaStatus {
  path: string;
  notAfter: number;
  /** When the registry's CA was last compared with ca.pem. */
  checked: number | null;
  /** When a renewed CA was last installed. */
  renewedAt: number | null;
  /** Why the registry's CA, which differs from ca.pem, was not installed; null when it does not differ. */
  mismatch: string | null;
}

export interface CaRefreshDeps {
  /** Restarts the OpenVPN servers one at a time, so that they read the new CA. */
  restartServers(why: string): Promise<void>;
  now: () => number;
  logger: Logger;
}

export class CaRefresh {
  private pem: string;
  private notAfter: number;
  private readonly state: Omit<CaStatus, "path" | "notAfter"> = { checked: null, renewedAt: null, mismatch: null };
  /** The registry's CA last warned about, so that each is warned about once. */
  private warned: string | null = null;

  constructor(private readonly caPath: string, private readonly deps: CaRefreshDeps) {
    this.pem = readFileSync(caPath, "utf8");
    this.notAfter = Date.parse(new X509Certificate(this.pem).validTo);
  }

  /** The CA's path and expiry now. */
  current(): { path: string; notAfter: number } {
    return { path: this.caPath, notAfter: this.notAfter };
  }

  /** One comparison (a round of the peers DB refresh). Never throws: an unreachable registry is the peers refresh's to report. */
  async check(rpc: RpcCaller): Promise<void> {
    const { deps } = this;
    let offered: unknown;
    try {
      offered = await rpc.call(GET_CA, []);
    } catch (e) {
      deps.logger.log(2, `Not comparing the CA with the registry's: ${(e as Error).message}`);
      return;
    }
    this.state.checked = deps.now();
    if (typeof offered !== "string") return this.mismatch("its answer to getCa is not a certificate", String(offered));
    const verdict = compareCa(this.pem, offered, deps.now());
    if (verdict.kind === "same") {
      this.state.mismatch = null;
      this.warned = null;
      return;
    }
    if (verdict.kind === "different") return this.mismatch(verdict.why, offered);
    try {
      replaceKeepingOld(this.caPath, offered);
    } catch (e) {
      deps.logger.warn(`cannot install the registry's renewed CA in ${this.caPath}: ${(e as Error).message}`);
      return;
    }
    this.pem = offered;
    this.notAfter = verdict.notAfter;
    this.state.renewedAt = deps.now();
    this.state.mismatch = null;
    deps.logger.log(1, `Installed the registry's renewed CA in ${this.caPath} (the old one in ${this.caPath}.old): valid until ${new Date(verdict.notAfter).toISOString()}`);
    void deps.restartServers("a renewed CA");
  }

  private mismatch(why: string, offered: string): void {
    this.state.mismatch = why;
    if (this.warned === offered) return;
    this.warned = offered;
    this.deps.logger.warn(`the registry's CA differs from ${this.caPath} and is not installed: ${why}. Only the same CA (key, subject, serial) renewed to expire later replaces it`);
  }

  status(): CaStatus {
    return { path: this.caPath, notAfter: this.notAfter, ...this.state };
  }
}
