// The allowances for legacy peers and what a stricter setting costs
// (lib/legacy-peers.ts): the lines the daemon says at start.

import assert from "node:assert/strict";
import { test } from "node:test";
import { LEGACY_DATA_CIPHERS, legacyAllowances, strictnessCosts } from "../lib/legacy-peers";

const causes = (args: string[], legacy = true): string[] => strictnessCosts(args, legacy).map((c) => c.cause);

test("the allowances: security level 0, TLS 1.0, BF-CBC last and optional, the legacy provider", () => {
  assert.deepEqual(legacyAllowances(), [
    "--tls-cert-profile", "insecure", "--tls-version-min", "1.0", "--data-ciphers", LEGACY_DATA_CIPHERS, "--providers", "legacy", "default",
  ]);
  assert.match(LEGACY_DATA_CIPHERS, /^AES-256-GCM:.*:\?BF-CBC$/);
});

test("by default nothing is said; harmless or looser user arguments neither", () => {
  assert.deepEqual(strictnessCosts([], true), []);
  assert.deepEqual(causes(["--key", "k", "--tls-version-min", "1.0", "--data-ciphers", "AES-256-GCM:BF-CBC", "--providers", "default", "legacy", "--verb", "4"]), []);
  assert.deepEqual(causes(["--tls-cert-profile", "preferred", "--tls-cert-profile", "insecure"]), [], "OpenVPN keeps the last");
});

test("--no-legacy: said once, with who is lost", () => {
  const costs = strictnessCosts(["--key", "k"], false);
  assert.equal(costs.length, 1);
  assert.equal(costs[0]!.cause, "--no-legacy");
  assert.equal(costs[0]!.cost,
    "no tunnel with peers whose certificates are signed with SHA-1 (the legacy registry's) or with nodes on OpenVPN 2.2/2.3 (TLS 1.0 only, the BF-CBC cipher)");
  // Arguments only cost more when they take away what --no-legacy kept.
  assert.deepEqual(causes(["--tls-cert-profile", "preferred", "--tls-version-min", "1.2"], false), ["--no-legacy"]);
  assert.deepEqual(causes(["--tls-version-max", "1.2"], false), ["--no-legacy", "--tls-version-max 1.2"]);
});

test("a strict profile passed to OpenVPN costs the SHA-1 peers and the 2012 nodes", () => {
  for (const profile of ["preferred", "legacy"]) {
    const costs = strictnessCosts(["--tls-cert-profile", profile], true);
    assert.deepEqual(costs, [{
      cause: `--tls-cert-profile ${profile}`,
      cost: "no tunnel with peers whose certificates are signed with SHA-1 (the legacy registry's) or with nodes on OpenVPN 2.2/2.3 (TLS 1.0 only)",
    }]);
  }
  assert.match(strictnessCosts(["--tls-cert-profile", "suiteb"], true)[0]!.cost, /^refuses every vifibnet node/);
});

test("TLS versions, data ciphers and providers, each named with its cost", () => {
  const cost = (args: string[]): string => strictnessCosts(args, true).map((c) => `${c.cause}: ${c.cost}`).join(" | ");
  assert.equal(cost(["--tls-version-min", "1.2"]), "--tls-version-min 1.2: no tunnel with nodes on OpenVPN 2.2/2.3 (TLS 1.0 only)");
  assert.equal(cost(["--tls-version-min", "1.4", "or-highest"]), "--tls-version-min 1.4 or-highest: no tunnel with nodes on OpenVPN 2.2/2.3 (TLS 1.0 only)");
  assert.equal(cost(["--data-ciphers", "AES-256-GCM"]), "--data-ciphers AES-256-GCM: no tunnel with nodes on OpenVPN 2.2/2.3 (the BF-CBC cipher)");
  assert.equal(cost(["--providers", "default"]), "--providers default: no tunnel with nodes on OpenVPN 2.2/2.3 (the BF-CBC cipher)");
  assert.equal(cost(["--tls-version-max", "1.2"]), "--tls-version-max 1.2: tunnels between our own nodes lose TLS 1.3 and its downgrade protection");
  assert.deepEqual(causes(["--providers", "default", "--tls-version-min", "1.3"]), ["--providers default", "--tls-version-min 1.3"]);
});
