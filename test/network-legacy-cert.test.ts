// A certificate signed with SHA-1, as the legacy registry issues them, in a
// real vifibnet network (test/helpers/overlay.ts, 3 nodes): after setup,
// node 0's cert.crt is re-signed with SHA-1 by the CA for the same key and
// subject; nodes 1 and 2 keep their SHA-256 certificates. Node 0 warns about
// it, and tunnels directly with both others, which accept it (every node runs
// OpenVPN with --tls-cert-profile insecure, docs/decisions.md); all pairs
// ping. Needs root; skipped otherwise.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import forge from "node-forge";
import { checkNodeCertificate } from "../lib/utils/x509";
import { Overlay } from "./helpers/overlay";
import { OVERLAY_PACKAGES, installPackages } from "./helpers/netns";

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : "needs root: network namespaces and tap devices";
const HELLO = 2;

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s = ${(ms / 1000 / HELLO).toFixed(1)} hello intervals`;

/** `certPem` re-signed with SHA-1 by the CA: same key, subject, serial, validity and extensions. */
function resignSha1(certPem: string, caPem: string, caKeyPem: string): string {
  const orig = forge.pki.certificateFromPem(certPem);
  const caCert = forge.pki.certificateFromPem(caPem);
  const c = forge.pki.createCertificate();
  c.publicKey = orig.publicKey;
  c.serialNumber = orig.serialNumber;
  c.validity.notBefore = orig.validity.notBefore;
  c.validity.notAfter = orig.validity.notAfter;
  c.setSubject(orig.subject.attributes);
  c.setIssuer(caCert.subject.attributes);
  if (orig.extensions.length > 0) c.setExtensions(orig.extensions);
  c.sign(forge.pki.privateKeyFromPem(caKeyPem), forge.md.sha1.create());
  return forge.pki.certificateToPem(c);
}

describe("legacy certificates: a node with a SHA-1 signed certificate", { skip, timeout: 150_000 }, () => {
  let net: Overlay | undefined;
  before(() => {
    installPackages(OVERLAY_PACKAGES);
  });
  after(async () => net?.destroy());

  test("tunnels with the SHA-256 nodes, and its daemon warns about SHA-1", { timeout: 140_000 }, async (t) => {
    net = await Overlay.create({ nodes: 3, hello: HELLO, connectionCount: 4, tunnelRefresh: 5, peersDbRefresh: 5, start: false });
    const caKeyPem = readFileSync(join(net.tmp, "registry", "ca.key"), "utf8");
    const legacy = net.nodes[0]!;
    const certPath = join(legacy.dir, "cert.crt");
    const caPem = readFileSync(join(legacy.dir, "ca.pem"), "utf8");
    const before = checkNodeCertificate(readFileSync(certPath, "utf8"), caPem);
    assert.equal(before.sha1, false, "setup issued a SHA-256 certificate");
    writeFileSync(certPath, resignSha1(readFileSync(certPath, "utf8"), caPem, caKeyPem));
    const now = checkNodeCertificate(readFileSync(certPath, "utf8"), caPem);
    assert.equal(now.sha1, true, "the certificate is now signed with SHA-1");
    assert.equal(now.prefix, before.prefix, "same subject");
    const text = spawnSync("openssl", ["x509", "-noout", "-text", "-in", certPath], { encoding: "utf8" }).stdout;
    assert.match(text, /Signature Algorithm: sha1WithRSAEncryption/);
    for (const n of net.nodes.slice(1)) assert.equal(checkNodeCertificate(readFileSync(join(n.dir, "cert.crt"), "utf8"), caPem).sha1, false);

    for (const n of net.nodes) net.startDaemon(n.index);
    const took = await net.waitAllPairs(60_000);
    t.diagnostic(`legacy cert: all pairs ping ${seconds(took)} after start (node 0 with a SHA-1 certificate)`);

    const err = legacy.daemon!.err();
    assert.match(err, /cert\.crt is signed with SHA-1/, `node 0's daemon warns about SHA-1:\n${err.slice(-3000)}`);
    for (const n of net.nodes.slice(1)) assert.doesNotMatch(n.daemon!.err(), /SHA-1/, `node ${n.index} has a SHA-256 certificate`);
    t.diagnostic(`legacy cert: warning: ${/.*SHA-1.*/.exec(err)![0]}`);
    // Not merely reachable through each other: the SHA-256 nodes' OpenVPN
    // accepted node 0's certificate on a direct tunnel.
    const direct = await net.directPairs();
    t.diagnostic(`legacy cert: direct pairs ${[...direct].sort().join(" ")}`);
    assert.ok(direct.has("0-1") && direct.has("0-2"), `node 0 tunnels directly with nodes 1 and 2: ${[...direct].sort().join(" ")}`);
  });
});
