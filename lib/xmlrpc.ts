// XML-RPC wire format, as Python's xmlrpc.client speaks it.
//
// The npm `xmlrpc` package parses with sax and serializes with xmlbuilder:
// about 0.5 ms for one getPeerList(50) request, which alone caps the registry
// near 2,000 requests/s (docs/decisions.md). XML-RPC uses a tiny subset of
// XML, so this module reads that subset strictly (no DTD, no entities beyond
// the five predefined and character references) and writes what Python writes.

export type XmlRpcValue =
  | null
  | boolean
  | number
  | string
  | Buffer
  | Date
  | XmlRpcValue[]
  | { [key: string]: XmlRpcValue };

/** The document is not well-formed XML-RPC. */
export class XmlRpcParseError extends Error {
  override name = "XmlRpcParseError";
}

/** A value already serialized by serializeValue: lets a caller cache hot answers. */
export class RawXml {
  constructor(readonly xml: string) {}
}

export interface MethodCall {
  method: string;
  params: XmlRpcValue[];
}

export interface Fault {
  faultCode: number;
  faultString: string;
}

/** A server answered `method` with an XML-RPC fault: the call was refused. */
export class XmlRpcFault extends Error {
  override name = "XmlRpcFault";
  constructor(readonly method: string, readonly faultCode: number, readonly faultString: string) {
    super(`${method}: ${faultString}`);
  }
  /**
   * The fault's message without the Python class prefix: a legacy registry
   * sends "<class 'LookupError'>:text" (Python 2: "<type 'exceptions.X'>:text").
   * Falls back to the class name when the message is empty.
   */
  get detail(): string {
    const m = /^<(?:class|type) '(?:exceptions\.)?([\w.]+)'>:([\s\S]*)$/.exec(this.faultString);
    if (!m) return this.faultString;
    return m[2]!.trim() || m[1]!;
  }
}

interface Elem {
  name: string;
  children: Elem[];
  text: string;
}

const MAX_DEPTH = 64;
const NAME = /^([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*$/;
const ENTITY = /&(?:#x([0-9a-fA-F]{1,6})|#([0-9]{1,7})|(lt|gt|amp|quot|apos));|&/g;
const NAMED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function fail(message: string): never {
  throw new XmlRpcParseError(message);
}

function decodeText(raw: string): string {
  let text = raw.includes("\r") ? raw.replace(/\r\n?/g, "\n") : raw;
  if (!text.includes("&")) return text;
  text = text.replace(ENTITY, (whole, hex?: string, dec?: string, named?: string) => {
    if (named) return NAMED[named]!;
    if (hex === undefined && dec === undefined) fail(`a bare '&' in text (write &amp;)`);
    const cp = hex !== undefined ? parseInt(hex, 16) : parseInt(dec!, 10);
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(`invalid character reference ${whole}`);
    return String.fromCodePoint(cp);
  });
  return text;
}

/** Parses an XML document into a small element tree. */
function parseXml(doc: string): Elem {
  const stack: Elem[] = [];
  let root: Elem | null = null;
  let i = doc.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (i < doc.length) {
    const lt = doc.indexOf("<", i);
    const textEnd = lt < 0 ? doc.length : lt;
    if (textEnd > i) {
      const raw = doc.slice(i, textEnd);
      const top = stack[stack.length - 1];
      if (top) top.text += decodeText(raw);
      else if (raw.trim() !== "") fail("text outside the root element");
    }
    if (lt < 0) break;
    if (doc.startsWith("<?", lt)) {
      const end = doc.indexOf("?>", lt + 2);
      if (end < 0) fail("unterminated processing instruction");
      i = end + 2;
    } else if (doc.startsWith("<!--", lt)) {
      const end = doc.indexOf("-->", lt + 4);
      if (end < 0) fail("unterminated comment");
      i = end + 3;
    } else if (doc.startsWith("<![CDATA[", lt)) {
      const end = doc.indexOf("]]>", lt + 9);
      const top = stack[stack.length - 1];
      if (end < 0) fail("unterminated CDATA section");
      if (!top) fail("CDATA outside the root element");
      top.text += doc.slice(lt + 9, end).replace(/\r\n?/g, "\n");
      i = end + 3;
    } else if (doc.startsWith("<!", lt)) {
      fail("document type declarations are not accepted");
    } else if (doc.charCodeAt(lt + 1) === 0x2f /* / */) {
      const gt = doc.indexOf(">", lt);
      if (gt < 0) fail("unterminated end tag");
      const name = doc.slice(lt + 2, gt).trimEnd();
      const open = stack.pop();
      if (!open) fail(`unexpected end tag </${name}>`);
      if (open.name !== name) fail(`</${name}> closes <${open.name}>`);
      i = gt + 1;
    } else {
      const gt = doc.indexOf(">", lt);
      if (gt < 0) fail("unterminated start tag");
      let inner = doc.slice(lt + 1, gt);
      const selfClosing = inner.endsWith("/");
      if (selfClosing) inner = inner.slice(0, -1);
      const m = NAME.exec(inner);
      if (!m) fail(`malformed tag <${inner.slice(0, 40)}>`);
      const el: Elem = { name: m[1]!, children: [], text: "" };
      const top = stack[stack.length - 1];
      if (top) top.children.push(el);
      else if (root) fail("more than one root element");
      else root = el;
      if (!selfClosing) {
        if (stack.length >= MAX_DEPTH) fail("elements nested too deeply");
        stack.push(el);
      }
      i = gt + 1;
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]!.name}> is never closed`);
  if (!root) fail("empty document");
  return root;
}

function only(el: Elem, name: string): Elem {
  if (el.children.length !== 1 || el.children[0]!.name !== name || el.text.trim() !== "")
    fail(`<${el.name}> must hold exactly one <${name}>`);
  return el.children[0]!;
}

function leafText(el: Elem): string {
  if (el.children.length > 0) fail(`<${el.name}> must not hold elements`);
  return el.text;
}

const DATETIME = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):(\d{2}):(\d{2})$/;

function toValue(v: Elem): XmlRpcValue {
  if (v.name !== "value") fail(`expected <value>, found <${v.name}>`);
  if (v.children.length === 0) return v.text; // an untyped value is a string
  const t = only(v, v.children[0]!.name);
  switch (t.name) {
    case "int": case "i4": case "i8": case "i1": case "i2": case "biginteger": {
      const s = leafText(t).trim();
      const n = Number(s);
      if (!/^[+-]?\d+$/.test(s) || !Number.isSafeInteger(n)) fail(`bad integer '${s.slice(0, 40)}'`);
      return n;
    }
    case "boolean": {
      const s = leafText(t).trim();
      if (s !== "0" && s !== "1") fail(`bad boolean '${s.slice(0, 40)}'`);
      return s === "1";
    }
    case "double": case "float": case "bigdecimal": {
      const s = leafText(t).trim();
      const n = Number(s);
      if (s === "" || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) || !Number.isFinite(n)) fail(`bad double '${s.slice(0, 40)}'`);
      return n;
    }
    case "string": return leafText(t);
    case "nil": case "ex:nil": leafText(t); return null;
    case "base64": return Buffer.from(leafText(t), "base64");
    case "dateTime.iso8601": {
      const m = DATETIME.exec(leafText(t).trim());
      if (!m) fail("bad dateTime.iso8601");
      const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
      return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
    }
    case "array": {
      const data = only(t, "data");
      if (data.text.trim() !== "") fail("text inside <data>");
      return data.children.map(toValue);
    }
    case "struct": {
      if (t.text.trim() !== "") fail("text inside <struct>");
      const out: { [key: string]: XmlRpcValue } = {};
      for (const member of t.children) {
        if (member.name !== "member" || member.text.trim() !== "") fail("<struct> must hold only <member>s");
        const name = member.children.find((c) => c.name === "name");
        const value = member.children.find((c) => c.name === "value");
        if (member.children.length !== 2 || !name || !value) fail("<member> must hold one <name> and one <value>");
        out[leafText(name)] = toValue(value);
      }
      return out;
    }
    default:
      return fail(`unknown value type <${t.name}>`);
  }
}

function paramsOf(el: Elem | undefined): XmlRpcValue[] {
  if (!el) return [];
  if (el.text.trim() !== "") fail("text inside <params>");
  return el.children.map((p) => {
    if (p.name !== "param") fail(`expected <param>, found <${p.name}>`);
    return toValue(only(p, "value"));
  });
}

/** Parses a request body. Throws XmlRpcParseError with a readable message. */
export function parseMethodCall(doc: string): MethodCall {
  const root = parseXml(doc);
  if (root.name !== "methodCall") fail(`expected <methodCall>, found <${root.name}>`);
  let nameEl: Elem | undefined, paramsEl: Elem | undefined;
  for (const c of root.children) {
    if (c.name === "methodName" && !nameEl) nameEl = c;
    else if (c.name === "params" && !paramsEl) paramsEl = c;
    else fail(`unexpected <${c.name}> in <methodCall>`);
  }
  if (!nameEl) fail("<methodCall> has no <methodName>");
  const method = leafText(nameEl).trim();
  if (!/^[\w.:/]+$/.test(method)) fail("bad method name");
  return { method, params: paramsOf(paramsEl) };
}

/** Parses a response body: the result, or a Fault object (not thrown). */
export function parseMethodResponse(doc: string): { result: XmlRpcValue } | { fault: Fault } {
  const root = parseXml(doc);
  if (root.name !== "methodResponse") fail(`expected <methodResponse>, found <${root.name}>`);
  const body = only(root, root.children[0]?.name ?? "params");
  if (body.name === "fault") {
    const v = toValue(only(body, "value"));
    if (v === null || typeof v !== "object" || Array.isArray(v) || Buffer.isBuffer(v) || v instanceof Date)
      fail("malformed fault");
    const f = v as { [key: string]: XmlRpcValue };
    const code = f["faultCode"], text = f["faultString"];
    return { fault: { faultCode: typeof code === "number" ? code : 0, faultString: String(text ?? "") } };
  }
  if (body.name !== "params") fail(`unexpected <${body.name}> in <methodResponse>`);
  const params = paramsOf(body);
  if (params.length !== 1) fail("a response holds exactly one value");
  return { result: params[0]! };
}

function escape(s: string): string {
  return /[&<>]/.test(s) ? s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;") : s;
}

function pad2(n: number): string {
  return n < 10 ? "0" + n : String(n);
}

/** One value, as Python's xmlrpc.client.dumps writes it (its newline quirks included). */
export function serializeValue(v: XmlRpcValue): string {
  if (v === null) return "<value><nil/></value>";
  switch (typeof v) {
    case "string": return "<value><string>" + escape(v) + "</string></value>\n";
    case "boolean": return v ? "<value><boolean>1</boolean></value>\n" : "<value><boolean>0</boolean></value>\n";
    case "number":
      if (Number.isInteger(v) && v >= -2147483648 && v <= 2147483647) return "<value><int>" + v + "</int></value>\n";
      if (!Number.isFinite(v)) throw new TypeError("cannot marshal a non-finite number");
      return "<value><double>" + v + "</double></value>\n";
  }
  if (Array.isArray(v)) {
    let out = "<value><array><data>\n";
    for (const item of v) out += serializeValue(item);
    return out + "</data></array></value>\n";
  }
  if (Buffer.isBuffer(v)) return "<value><base64>\n" + v.toString("base64") + "\n</base64></value>\n";
  if (v instanceof Date) {
    const d = v;
    return `<value><dateTime.iso8601>${d.getUTCFullYear()}${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}T${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}</dateTime.iso8601></value>\n`;
  }
  let out = "<value><struct>\n";
  for (const [k, item] of Object.entries(v)) out += "<member>\n<name>" + escape(k) + "</name>\n" + serializeValue(item) + "</member>\n";
  return out + "</struct></value>\n";
}

export function serializeResponse(result: XmlRpcValue | RawXml): string {
  const value = result instanceof RawXml ? result.xml : serializeValue(result);
  return "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n" + value + "</param>\n</params>\n</methodResponse>\n";
}

export function serializeFault(fault: Fault): string {
  return "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n" + serializeValue({ faultCode: fault.faultCode, faultString: fault.faultString }) + "</fault>\n</methodResponse>\n";
}

export function serializeMethodCall(method: string, params: readonly XmlRpcValue[]): string {
  let out = "<?xml version='1.0'?>\n<methodCall>\n<methodName>" + escape(method) + "</methodName>\n<params>\n";
  for (const p of params) out += "<param>\n" + serializeValue(p) + "</param>\n";
  return out + "</params>\n</methodCall>\n";
}
