// A certificate signed with SHA-1, as the legacy registry issues them, in a
// real vifibnet network (harness/overlay.ts, 3 nodes): after setup,
// node 0's cert.crt is re-signed with SHA-1 by the CA for the same key and
// subject; nodes 1 and 2 keep their SHA-256 certificates. Node 0's status
// says so, and it tunnels directly with both others, which accept it (every node runs
// OpenVPN with --tls-cert-profile insecure, docs/decisions.md); all pairs
// ping. Needs root; skipped otherwise.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import forge from "node-forge";
import { checkNodeCertificate } from "../lib/utils/x509";
import { inHellos, scenario } from "../harness/scenario";

const HELLO = 2;
const seconds = (ms: number): string => inHellos(ms, HELLO);

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

scenario("legacy certificates: a node with a SHA-1 signed certificate tunnels with the SHA-256 nodes, and its status says SHA-1",
  { nodes: 3, hello: HELLO, connectionCount: 4, tunnelRefresh: 5, peersDbRefresh: 5, start: false, timeoutMs: 150_000 }, async (net, t) => {
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

    const certs = await Promise.all(net.nodes.map(async (n) => (await net.status(n.index)).certificate));
    assert.deepEqual(certs.map((c) => c.sha1), [true, false, false], "node 0's status reports its SHA-1 certificate, the others' not");
    assert.equal(certs[0]!.path, certPath);
    // Not merely reachable through each other: the SHA-256 nodes' OpenVPN
    // accepted node 0's certificate on a direct tunnel.
    const direct = await net.directPairs();
    t.diagnostic(`legacy cert: direct pairs ${[...direct].sort().join(" ")}`);
    assert.ok(direct.has("0-1") && direct.has("0-2"), `node 0 tunnels directly with nodes 1 and 2: ${[...direct].sort().join(" ")}`);
  });
