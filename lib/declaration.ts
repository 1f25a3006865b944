// Signed declarations: the registry method `declareSigned`, which legacy
// nodes never call. A node signs what it declares with its certificate's key;
// the registry checks the signature against the certificate it issued for
// that prefix (table `vpn`), so only the holder of a node's key can change
// where other nodes dial it. The time makes each declaration newer than the
// last one accepted: a recorded declaration cannot be played again.

import { KeyObject, X509Certificate, createPrivateKey, sign, verify } from "node:crypto";
import { readFileSync } from "node:fs";

export const DECLARE_SIGNED = "declareSigned";

export interface Declaration {
  /** The node's address (inside the network), as for `declare`. */
  nodeIp: string;
  /** The address list, as for `declare`. */
  addressList: string;
  /** Milliseconds since the epoch, as a decimal integer: XML-RPC ints stop at 2^31. */
  time: string;
}

/** The bytes signed: every field, in order, under a label no other signature of the key covers. */
function signedBytes(d: Declaration): Buffer {
  return Buffer.from(`vifibnet declaration\n${d.nodeIp}\n${d.addressList}\n${d.time}`, "utf8");
}

/** The XML-RPC params of `declareSigned`: node_ip, address_list, time, signature (base64). */
export function declareSignedParams(d: Declaration, key: KeyObject): [string, string, string, Buffer] {
  return [d.nodeIp, d.addressList, d.time, sign("sha256", signedBytes(d), key)];
}

/** Whether `signature` is the declaration signed by the key of `certPem`. */
export function verifyDeclaration(d: Declaration, signature: Buffer, certPem: string): boolean {
  try {
    return verify("sha256", signedBytes(d), new X509Certificate(certPem).publicKey, signature);
  } catch {
    return false;
  }
}

/**
 * The node's private key, from the OpenVPN arguments it is given to
 * (`-- --key FILE`), or null when there is none or it cannot be read:
 * the node then declares unsigned, as legacy nodes do.
 */
export function declarationKey(openvpnArgs: readonly string[]): KeyObject | null {
  const at = openvpnArgs.lastIndexOf("--key");
  const path = at >= 0 ? openvpnArgs[at + 1] : undefined;
  if (path === undefined) return null;
  try {
    return createPrivateKey(readFileSync(path));
  } catch {
    return null;
  }
}
