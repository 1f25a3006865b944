// The peers DB refresh (SPEC section 6, legacy PeerManager.refresh): every
// --peers-db-refresh seconds, declare our address list to the registry (when
// we know it; signed when the registry offers it, lib/declaration.ts), then
// fetch getPeerList(200, node address) into peers.db. The
// registry being down must never stop the node: it retries in 30 s and keeps
// tunnelling to the peers it already knows. The RPC client, the database,
// the clock and the timer come from the caller, so tests need no network.

import type { KeyObject } from "node:crypto";
import { DECLARE_SIGNED, declareSignedParams } from "./declaration";
import type { Bits } from "./utils/address";
import type { Logger } from "./utils/log";
import type { PeerListItem, PopulateResult } from "./db";
import type { Timer, Timers } from "./utils/timers";
import { XmlRpcFault, type XmlRpcValue } from "./xmlrpc";

/** What the refresh needs of an XML-RPC client (RpcClient fits). */
export interface RpcCaller {
  call(method: string, params: readonly XmlRpcValue[]): Promise<unknown>;
}

/** What the refresh needs of peers.db (PeersDb fits). */
export interface PeerStore {
  populate(list: readonly PeerListItem[], ownPrefix: string, maxSize: number, exclude?: Iterable<string>): PopulateResult;
}

/** Peers asked for at each refresh, as the legacy asks. */
export const PEER_LIST_SIZE = 200;
/** Bound of peers.db: the legacy keeps as many rows as it asks for. */
export const PEERS_DB_SIZE = 200;
/** Seconds before trying an unreachable registry again. */
export const REGISTRY_RETRY_S = 30;

export interface PeersRefreshDeps {
  rpc: RpcCaller;
  db: PeerStore;
  /** Our node address, which the registry checks is inside its network. */
  nodeIp: string;
  ownPrefix: Bits;
  /** Our address list ("ip,port,proto;..."), or null while unknown (no --ip, no UPnP yet). */
  address: string | null;
  /**
   * Our certificate's key: with it we declare signed (declareSigned) to a
   * registry that offers it, and unsigned to one that does not (a legacy
   * registry). Null: unsigned only.
   */
  key?: KeyObject | null;
  /** --peers-db-refresh, seconds. */
  refreshInterval: number;
  /** Milliseconds, same clock as the caller's timers. */
  now: () => number;
  logger: Logger;
  /** Peers on our LAN: never stored. */
  lan?: Iterable<Bits>;
  listSize?: number;
  maxSize?: number;
}

export interface PeersRefreshResult {
  /** The peer list was fetched and stored. */
  ok: boolean;
  /** The registry's answer to declare; null when we did not declare or it failed. */
  declared: boolean | null;
  /** Seconds until the next refresh: refreshInterval, or REGISTRY_RETRY_S after a failure. */
  delayS: number;
  /** now() + delayS, in milliseconds. */
  nextAt: number;
  populate: PopulateResult | null;
  /** Why the round failed (ok false), or why the declaration was refused; null otherwise. */
  error: string | null;
}

/** A fault saying the registry has no such method: a legacy registry, or one older than the method. */
export function unknownMethod(e: unknown): boolean {
  return e instanceof XmlRpcFault && /is not supported|no such method|unknown method/i.test(e.faultString);
}

/**
 * Declares our address list: signed when we have the key and the registry
 * offers it, unsigned otherwise (also when the registry refuses the signed
 * one: it may still take the legacy declare). Resolves with the registry's
 * answer; rejects only when the registry cannot be reached.
 */
async function declare(deps: PeersRefreshDeps, address: string): Promise<boolean | { fault: string }> {
  const { rpc, logger } = deps;
  if (deps.key) {
    try {
      const params = declareSignedParams({ nodeIp: deps.nodeIp, addressList: address, time: String(Math.floor(deps.now())) }, deps.key);
      if ((await rpc.call(DECLARE_SIGNED, params)) === true) return true;
      logger.warn("the registry did not accept our signed declaration; declaring unsigned");
    } catch (e) {
      if (!(e instanceof XmlRpcFault)) throw e;
      if (unknownMethod(e)) logger.log(3, "The registry does not offer signed declarations: declaring unsigned");
      else logger.warn(`our signed declaration was refused (${explain(e)}); declaring unsigned`);
    }
  }
  try {
    return (await rpc.call("declare", [[deps.nodeIp, address]])) === true;
  } catch (e) {
    if (!(e instanceof XmlRpcFault)) throw e;
    return { fault: `cannot declare ourselves: ${explain(e)}` };
  }
}

function explain(e: unknown): string {
  if (e instanceof XmlRpcFault) return `the registry refused ${e.method}: ${e.detail}`;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Keeps the well-shaped `[prefix, address]` items of a getPeerList answer,
 * or null when the answer is not a list at all. Content (bit strings,
 * address lists) is checked by populate.
 */
export function peerListItems(value: unknown): { items: PeerListItem[]; bad: number } | null {
  if (!Array.isArray(value)) return null;
  const items: PeerListItem[] = [];
  let bad = 0;
  for (const v of value as unknown[]) {
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string") items.push([v[0], v[1]]);
    else bad++;
  }
  return { items, bad };
}

/**
 * One refresh. Never throws: every failure is logged and turns into a retry
 * in REGISTRY_RETRY_S. A declare the registry refuses (fault or false) is
 * logged and the peer list is still fetched; an unreachable registry skips
 * the rest of the round.
 */
export async function refreshPeers(deps: PeersRefreshDeps): Promise<PeersRefreshResult> {
  const { logger } = deps;
  let error: string | null = null;
  const done = (ok: boolean, declared: boolean | null, populate: PopulateResult | null): PeersRefreshResult => {
    const delayS = ok ? deps.refreshInterval : REGISTRY_RETRY_S;
    return { ok, declared, delayS, nextAt: deps.now() + delayS * 1000, populate, error };
  };
  const retry = (why: string, declared: boolean | null): PeersRefreshResult => {
    logger.warn(`cannot refresh the peers DB: ${why}; retrying in ${REGISTRY_RETRY_S} s with the peers known`);
    error = why;
    return done(false, declared, null);
  };

  logger.log(2, "Refreshing the peers DB");
  let declared: boolean | null = null;
  if (deps.address === null) {
    logger.log(3, "Not declaring ourselves to the registry: our external address is not known yet");
  } else {
    try {
      const answer = await declare(deps, deps.address);
      if (answer === true) {
        declared = true;
        logger.log(3, `Declared ${deps.address} to the registry`);
      } else {
        if (answer === false) declared = false;
        error = answer === false
          ? `the registry did not accept our declaration (is ${deps.nodeIp} inside its network? does it run with --strict-source or --strict-signed?)`
          : answer.fault;
        logger.warn(error);
      }
    } catch (e) {
      return retry(explain(e), null);
    }
  }

  let answer: unknown;
  try {
    answer = await deps.rpc.call("getPeerList", [deps.listSize ?? PEER_LIST_SIZE, deps.nodeIp]);
  } catch (e) {
    return retry(explain(e), declared);
  }
  const list = peerListItems(answer);
  if (list === null) return retry("getPeerList did not answer a list", declared);

  let result: PopulateResult;
  try {
    result = deps.db.populate(list.items, deps.ownPrefix, deps.maxSize ?? PEERS_DB_SIZE, deps.lan ?? []);
  } catch (e) {
    // A locked or broken peers.db: keep running on what it holds, try again soon.
    return retry(`peers.db: ${explain(e)}`, declared);
  }
  result = { ...result, skipped: result.skipped + list.bad };
  logger.log(2, `Peers DB refreshed: ${result.added} new, ${result.updated} known, ${result.skipped} refused, ${result.dropped} dropped`);
  return done(true, declared, result);
}

/**
 * Runs refreshPeers now and then forever, each round when the previous one
 * says. `deps` is called before each round so the address list and LAN
 * peers are current. Returns a function that stops the loop.
 */
export function runPeersRefresh(deps: () => PeersRefreshDeps, timers: Timers, onRound?: (r: PeersRefreshResult) => void): () => void {
  let stopped = false;
  let handle: Timer | null = null;
  const round = (): void => {
    handle = null;
    let pending: Promise<PeersRefreshResult>;
    try {
      pending = refreshPeers(deps());
    } catch (e) {
      pending = Promise.reject(e);
    }
    // Whatever fails here (deps, onRound) must not end the loop: retry as for an unreachable registry.
    void pending
      .then((r) => {
        onRound?.(r);
        return r.delayS;
      })
      .catch(() => REGISTRY_RETRY_S)
      .then((delayS) => {
        if (!stopped) handle = timers.after(delayS * 1000, round);
      });
  };
  round();
  return () => {
    stopped = true;
    handle?.cancel();
  };
}
