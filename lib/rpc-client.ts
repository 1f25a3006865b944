// A small XML-RPC client, as Python's xmlrpc.client.ServerProxy talks to the
// registry (SPEC section 4): POST /RPC2, text/xml, one value back or a fault.
// It speaks nothing beyond that, so it works with the legacy registry too.

import http from "node:http";
import { isIPv6 } from "node:net";
import { gunzipSync } from "node:zlib";
import { XmlRpcFault, XmlRpcParseError, XmlRpcValue, parseMethodResponse, serializeMethodCall } from "./xmlrpc";

// The faults it rejects with are the codec's (lib/xmlrpc.ts), re-exported for its callers.
export { XmlRpcFault } from "./xmlrpc";

/** The call did not get an XML-RPC answer: unreachable, timed out, not a registry. */
export class RpcTransportError extends Error {
  override name = "RpcTransportError";
}

export interface RpcClientOptions {
  /** Whole-call limit, connection included; default 30 s. */
  timeoutMs?: number;
}

/** Largest answer accepted: a certificate is ~2 KiB, a peer list of 999 ~100 KiB. */
const MAX_RESPONSE = 4 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;

/** "http://host:port/RPC2", with an IPv6 address in brackets as URLs need. */
export function rpcUrl(host: string, port: number): string {
  return `http://${isIPv6(host) ? `[${host.replace(/%/g, "%25")}]` : host}:${port}/RPC2`;
}

function describeNetError(e: NodeJS.ErrnoException, timeoutMs: number): string {
  switch (e.code) {
    case "ECONNREFUSED": return "connection refused (is the registry running, on that port?)";
    case "ETIMEDOUT": case "ESOCKETTIMEDOUT": return `no answer within ${timeoutMs / 1000} s`;
    case "EHOSTUNREACH": return "host unreachable";
    case "ENETUNREACH": return "network unreachable";
    case "ENOTFOUND": case "EAI_AGAIN": return "unknown host name";
    case "ECONNRESET": case "EPIPE": return "the connection was closed by the server";
    case "EADDRNOTAVAIL": return "address not available on this host";
    default: return e.message;
  }
}

export class RpcClient {
  readonly url: string;
  // One connection per call, as the legacy client: a kept-alive socket may be
  // closed by the server while the user reads the token mail.
  private readonly agent = new http.Agent({ keepAlive: false });
  private readonly timeoutMs: number;

  constructor(private readonly host: string, private readonly port: number, opts: RpcClientOptions = {}) {
    this.url = rpcUrl(host, port);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Calls `method`; resolves with its value, rejects with XmlRpcFault or RpcTransportError. */
  call(method: string, params: readonly XmlRpcValue[] = []): Promise<XmlRpcValue> {
    const body = Buffer.from(serializeMethodCall(method, params));
    const fail = (why: string): RpcTransportError => new RpcTransportError(`${method}: cannot reach the registry at ${this.url}: ${why}`);
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (f: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      };
      const req = http.request(
        {
          host: this.host,
          port: this.port,
          path: "/RPC2",
          method: "POST",
          agent: this.agent,
          headers: { "Content-Type": "text/xml", "Content-Length": body.length, "User-Agent": "vifibnet-setup" },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE) req.destroy(new Error(`answer over ${MAX_RESPONSE} bytes`));
            else chunks.push(c);
          });
          res.on("error", (e) => done(() => reject(fail(e.message))));
          res.on("end", () => done(() => {
            if (res.statusCode !== 200) {
              return reject(new RpcTransportError(`${method}: ${this.url} answered HTTP ${res.statusCode} ${res.statusMessage ?? ""}`.trimEnd() + ": is it a vifibnet registry?"));
            }
            try {
              let raw = Buffer.concat(chunks);
              // Python's server compresses large answers when asked; we never ask, but accept it.
              if (res.headers["content-encoding"] === "gzip") raw = gunzipSync(raw, { maxOutputLength: MAX_RESPONSE });
              const parsed = parseMethodResponse(raw.toString("utf8"));
              if ("fault" in parsed) reject(new XmlRpcFault(method, parsed.fault.faultCode, parsed.fault.faultString));
              else resolve(parsed.result);
            } catch (e) {
              const why = e instanceof XmlRpcParseError ? e.message : (e as Error).message;
              reject(new RpcTransportError(`${method}: the answer from ${this.url} is not XML-RPC (${why}): is it a vifibnet registry?`));
            }
          }));
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        done(() => reject(fail(`no answer within ${this.timeoutMs / 1000} s`)));
      }, this.timeoutMs);
      req.on("error", (e: NodeJS.ErrnoException) => done(() => reject(fail(describeNetError(e, this.timeoutMs)))));
      req.end(body);
    });
  }

  /** Drops any connection still open (an interrupted call), so the process can exit. */
  close(): void {
    this.agent.destroy();
  }
}
