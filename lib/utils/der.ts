// A strict, bounded DER reader: enough of ASN.1 to take certificate requests
// and certificates apart (the registry before any signature work, the daemon
// without node-forge). Definite lengths only, single-byte tags, every element
// inside its parent: hostile input ends in a DerError, never in a long loop.

/** The input is not the DER structure expected. */
export class DerError extends Error {
  override name = "DerError";
}

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  VISIBLE_STRING: 0x1a,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
  /** [0] IMPLICIT/EXPLICIT, constructed: a request's attributes, a certificate's version. */
  CONTEXT_0: 0xa0,
} as const;

/** One element: its tag, and where it starts, its content starts and it ends in the buffer. */
export interface DerElement {
  tag: number;
  start: number;
  content: number;
  end: number;
}

/** The element at `at`, which must end by `limit`. */
export function readElement(der: Uint8Array, at: number, limit = der.length): DerElement {
  if (at + 2 > limit) throw new DerError("truncated element");
  const tag = der[at]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not used here");
  let len = der[at + 1]!;
  let content = at + 2;
  if (len & 0x80) {
    const bytes = len & 0x7f;
    if (bytes === 0 || bytes > 4) throw new DerError(bytes === 0 ? "indefinite length (BER, not DER)" : "element too long");
    if (content + bytes > limit) throw new DerError("truncated length");
    len = 0;
    for (let i = 0; i < bytes; i++) len = len * 256 + der[content + i]!;
    content += bytes;
  }
  const end = content + len;
  if (end > limit) throw new DerError("element runs past its parent");
  return { tag, start: at, content, end };
}

/** The element at `at`, checked to carry `tag`. */
export function expectElement(der: Uint8Array, at: number, tag: number, limit = der.length, what = "element"): DerElement {
  const el = readElement(der, at, limit);
  if (el.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${el.tag.toString(16)}`);
  return el;
}

/** The elements directly inside a constructed element, at most `max`. */
export function children(der: Uint8Array, parent: DerElement, max = 64): DerElement[] {
  const out: DerElement[] = [];
  for (let at = parent.content; at < parent.end; ) {
    if (out.length >= max) throw new DerError(`more than ${max} elements in one structure`);
    const el = readElement(der, at, parent.end);
    out.push(el);
    at = el.end;
  }
  return out;
}

/** The content bytes of an element. */
export function contentOf(der: Uint8Array, el: DerElement): Buffer {
  return Buffer.from(der.buffer, der.byteOffset + el.content, el.end - el.content);
}

/** The whole element, header included (what a signature covers). */
export function bytesOf(der: Uint8Array, el: DerElement): Buffer {
  return Buffer.from(der.buffer, der.byteOffset + el.start, el.end - el.start);
}

/** An OBJECT IDENTIFIER in dotted form. */
export function oidOf(der: Uint8Array, el: DerElement): string {
  if (el.tag !== TAG.OID || el.end === el.content || el.end - el.content > 64) throw new DerError("malformed object identifier");
  const arcs: number[] = [];
  let value = 0;
  for (let i = el.content; i < el.end; i++) {
    const b = der[i]!;
    if (value > 0x1ffffff) throw new DerError("object identifier arc too large");
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  if (der[el.end - 1]! & 0x80) throw new DerError("truncated object identifier");
  const first = arcs.shift()!;
  const top = first < 80 ? Math.floor(first / 40) : 2;
  return [top, first - top * 40, ...arcs].join(".");
}

/** One DER element: `tag` and its content, with the definite length DER wants. */
export function derElement(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
