// The methods on the wire: the six of SPEC section 4 and ours, one
// declaration each in METHODS, the one table of them, with the XML-RPC
// types of their parameters, checked before a method runs.

import { DECLARE_SIGNED } from "../declaration";
import { GET_REVOCATION_LIST } from "../revocation";
import type { RawXml, XmlRpcValue } from "../xmlrpc";
import { Caller, RpcFault, UNKNOWN_CALLER } from "./call";
import type { Registry } from "./service";

/** The XML-RPC type of a parameter, checked before the method runs, as Python would reject a bad call. */
type Shape = "string" | "int" | "pair" | "binary";
type ValueOf<S extends Shape> = S extends "string" ? string : S extends "int" ? number : S extends "pair" ? [string, string] : Buffer;
type ValuesOf<T extends readonly Shape[]> = { -readonly [K in keyof T]: T[K] extends Shape ? ValueOf<T[K]> : never };

type Result = XmlRpcValue | RawXml | Promise<XmlRpcValue>;

interface Method {
  params: readonly Shape[];
  run(registry: Registry, params: XmlRpcValue[], caller: Caller): Result;
}

/** One method: its parameters' shapes, and what it does with them (typed by the shapes). */
function method<const T extends readonly Shape[]>(params: T, run: (registry: Registry, args: ValuesOf<T>, caller: Caller) => Result): Method {
  return { params, run: (registry, values, caller) => run(registry, values as ValuesOf<T>, caller) };
}

/**
 * Every method the registry serves, by name. A Map: a name such as
 * "toString" or "constructor" finds nothing here, as it would in Python.
 */
export const METHODS: ReadonlyMap<string, Method> = new Map([
  ["getCa", method([], (r) => r.getCa())],
  ["requestToken", method(["string"], (r, [email], caller) => r.requestToken(email, caller))],
  ["requestCertificate", method(["string", "string"], (r, [token, csr], caller) => r.requestCertificate(token, csr, caller))],
  ["getBootstrapPeer", method([], (r) => r.getBootstrapPeer())],
  ["declare", method(["pair"], (r, [[ip, list]], caller) => r.declare(ip, list, caller))],
  ["getPeerList", method(["int", "string"], (r, [n, ip], caller) => r.getPeerListXml(n, ip, caller))],
  [DECLARE_SIGNED, method(["string", "string", "string", "binary"], (r, [ip, list, time, sig]) => r.declareSigned(ip, list, time, sig))],
  ["renewCertificate", method(["string", "string"], (r, [cert, csr]) => r.renewCertificate(cert, csr))],
  [GET_REVOCATION_LIST, method([], (r) => ({ ...r.getRevocationList() }))],
]);

const SHAPE_TEST: Record<Shape, (p: XmlRpcValue | undefined) => boolean> = {
  string: (p) => typeof p === "string",
  int: (p) => typeof p === "number" && Number.isInteger(p),
  pair: (p) => Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string",
  binary: (p) => Buffer.isBuffer(p),
};
const SHAPE_NAME: Record<Shape, string> = {
  string: "a string", int: "an int", pair: "an array [node_ip, address_list] of two strings", binary: "base64 data",
};

function checkParams(name: string, m: Method, params: XmlRpcValue[]): void {
  if (params.length !== m.params.length)
    throw new RpcFault("TypeError", `${name}() takes ${m.params.length} argument(s) (${params.length} given)`);
  m.params.forEach((shape, i) => {
    if (!SHAPE_TEST[shape](params[i])) throw new RpcFault("TypeError", `${name}() argument ${i + 1} must be ${SHAPE_NAME[shape]}`);
  });
}

/**
 * Runs one call; throws (or rejects) RpcFault. Synchronous unless the method
 * is: a promise per request was a measurable share of the hot path.
 */
export function dispatch(registry: Registry, name: string, params: XmlRpcValue[], caller: Caller = UNKNOWN_CALLER): Result {
  const m = METHODS.get(name);
  if (!m) throw new RpcFault("Exception", `method "${name}" is not supported`);
  checkParams(name, m, params);
  return m.run(registry, params, caller);
}
