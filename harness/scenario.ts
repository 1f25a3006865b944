// One namespace-test scenario in a few lines (the preamble every
// test/network*.test.ts shared): skipped unless root, the Debian packages
// installed, an overlay built (./overlay.ts), always destroyed.
//
//   scenario("bootstrap: 6 nodes from nothing", { nodes: 6 }, async (net, t) => {
//     t.diagnostic(`all pairs ping after ${inHellos(await net.waitAllPairs(120_000), 2)}`);
//   });

import { test, type TestContext } from "node:test";
import { OVERLAY_PACKAGES, installPackages } from "./netns";
import { Overlay, OverlayOptions } from "./overlay";

export interface ScenarioOptions extends OverlayOptions {
  /** Of the whole scenario, building included; default 180 s. */
  timeoutMs?: number;
  /** Debian packages beyond OVERLAY_PACKAGES (NAT_PACKAGES, say). */
  packages?: readonly string[];
}

export function scenario(name: string, opts: ScenarioOptions, body: (net: Overlay, t: TestContext) => Promise<void>): void {
  const skip = process.getuid?.() === 0 ? false : "needs root: network namespaces and tap devices";
  test(name, { skip, timeout: opts.timeoutMs ?? 180_000 }, async (t) => {
    installPackages([...OVERLAY_PACKAGES, ...(opts.packages ?? [])]);
    const net = await Overlay.create(opts);
    t.after(() => net.destroy());
    await body(net, t);
  });
}

/** "12.3 s = 6.2 hello intervals". */
export function inHellos(ms: number, hello: number): string {
  return `${(ms / 1000).toFixed(1)} s = ${(ms / 1000 / hello).toFixed(1)} hello intervals`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
