// The signed revocation list: what the registry method `getRevocationList`
// answers and what a node checks before it acts on it. Revocation names
// prefixes, not serials: every legacy certificate has serial 0. The list is
// JSON text signed, as bytes, by the CA key, so a node verifies exactly what
// the registry signed (no canonical form of XML or JSON to agree on), and can
// keep the answer as it came and verify it again after a restart.
//
// On the wire: a struct { list: <string>, signature: <string> } where
//   list      = {"version":1,"issued":<unix s>,"revoked":[{"prefix":"<bits>",
//                "cn":"<N/len>","since":<unix s>,"reason":<string|null>}]}
//   signature = base64 of RSA PKCS#1 v1.5 SHA-256 over list's UTF-8 bytes.

import { KeyObject, X509Certificate, createPrivateKey, sign, verify } from "node:crypto";
import { Bits, prefixToCn } from "./utils/address";

export const GET_REVOCATION_LIST = "getRevocationList";
export const REVOCATION_LIST_VERSION = 1;

/** One revoked node prefix. */
export interface RevokedPrefix {
  /** The prefix as the registry stores it: a bit string ("0000000000000101"). */
  prefix: Bits;
  /** Its certificate's common name ("5/16"). */
  cn: string;
  /** When it was revoked, seconds since the epoch. */
  since: number;
  /** Why, as the operator said, or null. */
  reason: string | null;
}

export interface RevocationList {
  version: typeof REVOCATION_LIST_VERSION;
  /** When the registry made this list, seconds since the epoch: of two lists, the later one holds. */
  issued: number;
  revoked: RevokedPrefix[];
}

/** The XML-RPC answer of getRevocationList. */
export interface SignedRevocationList {
  /** The list as JSON text: exactly the bytes signed. */
  list: string;
  /** Base64 RSA PKCS#1 v1.5 SHA-256 signature of `list` (UTF-8) by the CA key. */
  signature: string;
}

/** A revocation list that must not be used; the message says why and what to check. */
export class RevocationListError extends Error {
  override name = "RevocationListError";
}

/** The list as JSON text, and its signature by the CA key. */
export function signRevocationList(list: RevocationList, caKey: KeyObject | string): SignedRevocationList {
  const key = typeof caKey === "string" ? createPrivateKey(caKey) : caKey;
  const text = JSON.stringify({
    version: list.version,
    issued: list.issued,
    revoked: list.revoked.map((r) => ({ prefix: r.prefix, cn: r.cn, since: r.since, reason: r.reason })),
  });
  return { list: text, signature: sign("sha256", Buffer.from(text, "utf8"), key).toString("base64") };
}

const BITS = /^[01]{1,128}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** Longest list text accepted: about 100 bytes per entry, so a million entries. */
export const MAX_LIST_BYTES = 100 * 1024 * 1024;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isTime(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function shapeError(what: string): RevocationListError {
  return new RevocationListError(`the registry's revocation list is malformed: ${what} (a registry of another version?)`);
}

function checkEntry(e: unknown, i: number): RevokedPrefix {
  if (!isRecord(e)) throw shapeError(`entry ${i} is not an object`);
  const { prefix, cn, since, reason } = e;
  if (typeof prefix !== "string" || !BITS.test(prefix)) throw shapeError(`entry ${i} has no prefix bit string`);
  if (cn !== prefixToCn(prefix)) throw shapeError(`entry ${i}: cn ${JSON.stringify(cn)} is not that of prefix ${prefix} (${prefixToCn(prefix)})`);
  if (!isTime(since)) throw shapeError(`entry ${i} has no time "since"`);
  if (reason !== null && typeof reason !== "string") throw shapeError(`entry ${i}: reason is neither a string nor null`);
  return { prefix, cn, since, reason };
}

/** Parses and checks the JSON text of a list (the signature already checked). */
function parseList(text: string): RevocationList {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw shapeError(`its text is not JSON (${(e as Error).message})`);
  }
  if (!isRecord(data)) throw shapeError("it is not a JSON object");
  if (data["version"] !== REVOCATION_LIST_VERSION) throw shapeError(`version ${JSON.stringify(data["version"])}, this node reads version ${REVOCATION_LIST_VERSION}`);
  if (!isTime(data["issued"])) throw shapeError(`no time "issued"`);
  const revoked = data["revoked"];
  if (!Array.isArray(revoked)) throw shapeError(`"revoked" is not an array`);
  return { version: REVOCATION_LIST_VERSION, issued: data["issued"], revoked: revoked.map(checkEntry) };
}

/**
 * Checks an answer of getRevocationList (or one kept from earlier) against
 * the network's CA certificate, and returns the list. Throws
 * RevocationListError when the answer is not the struct, the signature is
 * not the CA's over the list, or the list is not of the documented shape.
 */
export function verifyRevocationList(answer: unknown, caPem: string): RevocationList {
  if (!isRecord(answer) || typeof answer["list"] !== "string" || typeof answer["signature"] !== "string")
    throw new RevocationListError("the registry's answer to getRevocationList is not a struct of two strings, list and signature (is it a vifibnet registry?)");
  const { list, signature } = answer as { list: string; signature: string };
  if (Buffer.byteLength(list, "utf8") > MAX_LIST_BYTES) throw shapeError(`its text is over ${MAX_LIST_BYTES} bytes`);
  let caKey: KeyObject;
  try {
    caKey = new X509Certificate(caPem).publicKey;
  } catch (e) {
    throw new RevocationListError(`cannot check the revocation list: the CA file is not a PEM certificate (${(e as Error).message})`);
  }
  const sig = signature.replace(/\s+/g, "");
  let good = false;
  if (BASE64.test(sig)) {
    try {
      good = verify("sha256", Buffer.from(list, "utf8"), caKey, Buffer.from(sig, "base64"));
    } catch {
      good = false;
    }
  }
  if (!good)
    throw new RevocationListError("the revocation list's signature is not the network CA's (tampered on the way, or a registry of another network than ca.pem); the list was not used");
  return parseList(list);
}
