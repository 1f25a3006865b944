// The signed revocation list (lib/revocation.ts): what verifies, what is
// refused and why. OpenSSL checks the signature too: it is plain PKCS#1
// v1.5 SHA-256 over the list's bytes, which any tool can verify.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { RevocationList, RevocationListError, signRevocationList, verifyRevocationList } from "../lib/revocation";
import { makeCa } from "../harness/pki";

const dir = mkdtempSync(join(tmpdir(), "vifibnet-revocation-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCa();
const otherCa = makeCa("2001:db8:42::/48", "test CA"); // same network and name, another key

const list: RevocationList = {
  version: 1,
  issued: 1_800_000_000,
  revoked: [
    { prefix: "0000000000000101", cn: "5/16", since: 1_799_000_000, reason: "laptop stolen — Société" },
    { prefix: "0000000000000010", cn: "2/16", since: 1_799_500_000, reason: null },
  ],
};

function refused(answer: unknown, message: RegExp, pem = ca.pem): void {
  assert.throws(() => verifyRevocationList(answer, pem), (e: unknown) => e instanceof RevocationListError && message.test(e.message));
}

/** Signs arbitrary text as the registry would sign a list. */
function signText(text: string, keyPem = ca.keyPem): { list: string; signature: string } {
  return { list: text, signature: sign("sha256", Buffer.from(text, "utf8"), createPrivateKey(keyPem)).toString("base64") };
}

test("a signed list verifies against its CA and reads back as it was", () => {
  const answer = signRevocationList(list, ca.key);
  assert.deepEqual(JSON.parse(answer.list), list);
  assert.deepEqual(verifyRevocationList(answer, ca.pem), list);
  assert.deepEqual(verifyRevocationList(signRevocationList(list, ca.keyPem), ca.pem), list, "a PEM key signs too");
  const empty = signRevocationList({ version: 1, issued: 5, revoked: [] }, ca.key);
  assert.deepEqual(verifyRevocationList(empty, ca.pem), { version: 1, issued: 5, revoked: [] });
});

test("OpenSSL verifies the signature with the CA certificate's key", () => {
  const answer = signRevocationList(list, ca.key);
  writeFileSync(join(dir, "list.json"), answer.list);
  writeFileSync(join(dir, "list.sig"), Buffer.from(answer.signature, "base64"));
  writeFileSync(join(dir, "ca.pem"), ca.pem);
  const pub = execFileSync("openssl", ["x509", "-in", join(dir, "ca.pem"), "-noout", "-pubkey"]);
  writeFileSync(join(dir, "ca.pub"), pub);
  const out = execFileSync("openssl", ["dgst", "-sha256", "-verify", join(dir, "ca.pub"), "-signature", join(dir, "list.sig"), join(dir, "list.json")], { encoding: "utf8" });
  assert.match(out, /Verified OK/);
});

test("a tampered list is refused: a changed byte, a dropped entry, a swapped signature", () => {
  const answer = signRevocationList(list, ca.key);
  refused({ ...answer, list: answer.list.replace("0000000000000101", "0000000000000111") }, /signature is not the network CA's/);
  const dropped = JSON.stringify({ ...list, revoked: list.revoked.slice(1) });
  refused({ list: dropped, signature: answer.signature }, /signature is not the network CA's/);
  const other = signRevocationList({ ...list, issued: list.issued + 1 }, ca.key);
  refused({ list: answer.list, signature: other.signature }, /signature is not the network CA's/);
  refused({ ...answer, signature: "not base64!" }, /signature is not the network CA's/);
  refused({ ...answer, signature: "" }, /signature is not the network CA's/);
});

test("a list signed by another CA is refused, even of the same network and name", () => {
  refused(signRevocationList(list, otherCa.key), /signature is not the network CA's.*another network than ca\.pem/);
  refused(signRevocationList(list, ca.key), /signature is not the network CA's/, otherCa.pem);
  refused(signRevocationList(list, ca.key), /the CA file is not a PEM certificate/, "not a certificate");
});

test("an answer that is not the struct of two strings is refused", () => {
  const answer = signRevocationList(list, ca.key);
  for (const bad of [null, "text", 3, [answer.list, answer.signature], { list: answer.list }, { signature: answer.signature },
    { list: JSON.parse(answer.list) as unknown, signature: answer.signature }, { list: answer.list, signature: Buffer.from(answer.signature, "base64") }])
    refused(bad, /not a struct of two strings, list and signature/);
});

test("a correctly signed list of the wrong shape is refused, saying what is wrong", () => {
  const cases: Array<[unknown, RegExp]> = [
    ["not json", /text is not JSON/],
    [[], /not a JSON object/],
    [{ ...list, version: 2 }, /version 2, this node reads version 1/],
    [{ version: 1, revoked: [] }, /no time "issued"/],
    [{ ...list, issued: -1 }, /no time "issued"/],
    [{ ...list, issued: "1800000000" }, /no time "issued"/],
    [{ ...list, revoked: {} }, /"revoked" is not an array/],
    [{ ...list, revoked: [5] }, /entry 0 is not an object/],
    [{ ...list, revoked: [{ ...list.revoked[0], prefix: "012" }] }, /entry 0 has no prefix bit string/],
    [{ ...list, revoked: [{ ...list.revoked[0], prefix: "" }] }, /entry 0 has no prefix bit string/],
    [{ ...list, revoked: [list.revoked[1], { ...list.revoked[0], cn: "6/16" }] }, /entry 1: cn "6\/16" is not that of prefix 0000000000000101 \(5\/16\)/],
    [{ ...list, revoked: [{ ...list.revoked[0], since: 1.5 }] }, /entry 0 has no time "since"/],
    [{ ...list, revoked: [{ ...list.revoked[0], reason: 7 }] }, /entry 0: reason is neither a string nor null/],
  ];
  for (const [data, message] of cases) refused(signText(typeof data === "string" ? data : JSON.stringify(data)), message);
});

test("extra fields are ignored, so a later registry may add some", () => {
  const text = JSON.stringify({ ...list, next: 1, revoked: list.revoked.map((r) => ({ ...r, serial: "00" })) });
  assert.deepEqual(verifyRevocationList(signText(text), ca.pem), list);
});
