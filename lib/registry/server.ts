// The registry over HTTP, as Python's SimpleXMLRPCServer serves it:
// POST on / and /RPC2, on 0.0.0.0 and [::] (v6-only) at one port.

import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { gunzipSync } from "node:zlib";
import { clientSource } from "../utils/address";
import { Logger } from "../utils/log";
import { XmlRpcParseError, parseMethodCall, serializeFault, serializeResponse } from "../xmlrpc";
import { Caller, RpcFault } from "./call";
import { dispatch } from "./methods";
import { Registry } from "./service";

/** Largest request body accepted: a CSR is ~1 KiB, an address list less. */
export const MAX_BODY = 64 * 1024;
const RPC_PATHS = new Set(["/", "/RPC2"]);

/**
 * Bounds on slow or idle clients, which would otherwise hold a connection
 * (a file descriptor) for minutes: the headers within 10 s of connecting,
 * the whole request within 30 s, at most MAX_CONNECTIONS connections per
 * process and MAX_PER_SOURCE from one IPv4 address or IPv6 /64, so that one
 * client's flood cannot take the slots of everyone else.
 */
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const MAX_CONNECTIONS = 1000;
export const MAX_PER_SOURCE = 64;

function reply(res: http.ServerResponse, status: number, body: string, type = "text/plain", close = false): void {
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": Buffer.byteLength(body),
    ...(close ? { Connection: "close" } : {}),
  });
  res.end(body);
}

function faultOf(e: unknown): { faultCode: number; faultString: string } {
  if (e instanceof RpcFault) return { faultCode: 1, faultString: e.faultString };
  if (e instanceof XmlRpcParseError) return { faultCode: 1, faultString: `<class 'xml.parsers.expat.ExpatError'>:${e.message}` };
  return { faultCode: 1, faultString: `<class 'Exception'>:internal error: ${(e as Error).message}` };
}

export class RegistryServer {
  private readonly servers: http.Server[] = [];
  private connections = 0;
  private readonly perSource = new Map<string, number>();
  /** Each connection's number, which tells a method whether two calls came on one connection. */
  private readonly ids = new WeakMap<Socket, number>();
  private lastId = 0;

  constructor(private readonly registry: Registry, private readonly log: Logger) {}

  /** Counts a new connection against the bounds; refuses it (at once, freeing its descriptor) over them. */
  private admit(socket: Socket): void {
    const source = clientSource(socket.remoteAddress ?? null);
    const fromSource = this.perSource.get(source) ?? 0;
    if (this.connections >= MAX_CONNECTIONS || fromSource >= MAX_PER_SOURCE) {
      socket.destroy();
      return;
    }
    this.connections++;
    this.perSource.set(source, fromSource + 1);
    this.ids.set(socket, ++this.lastId);
    socket.once("close", () => {
      this.connections--;
      const left = this.perSource.get(source)! - 1;
      if (left > 0) this.perSource.set(source, left);
      else this.perSource.delete(source);
    });
    // Node's headersTimeout starts with the first byte: a client that sends none is closed here.
    socket.setTimeout(HEADERS_TIMEOUT_MS, () => socket.destroy());
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.socket.setTimeout(0); // the request arrived: requestTimeout and keepAliveTimeout take over
    const path = req.url ?? "";
    if (!RPC_PATHS.has(path)) {
      req.resume();
      return reply(res, 404, "No such page\n");
    }
    if (req.method !== "POST") {
      req.resume();
      res.setHeader("Allow", "POST");
      return reply(res, 405, "XML-RPC takes POST requests only\n");
    }
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > MAX_BODY) {
      req.resume();
      return reply(res, 413, `Request body over ${MAX_BODY} bytes\n`, "text/plain", true);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) tooBig = true;
      else chunks.push(chunk);
    });
    req.on("end", () => {
      if (tooBig) return reply(res, 413, `Request body over ${MAX_BODY} bytes\n`, "text/plain", true);
      let body: Buffer = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (req.headers["content-encoding"] === "gzip") {
        try {
          body = gunzipSync(body, { maxOutputLength: MAX_BODY });
        } catch {
          return reply(res, 400, "Bad gzip request body\n");
        }
      } else if (req.headers["content-encoding"] && req.headers["content-encoding"] !== "identity") {
        return reply(res, 415, "Unsupported Content-Encoding\n");
      }
      const caller: Caller = { address: req.socket.remoteAddress ?? null };
      const connection = this.ids.get(req.socket);
      if (connection !== undefined) caller.connection = connection;
      const xml = this.call(body.toString("utf8"), caller);
      if (typeof xml === "string") reply(res, 200, xml, "text/xml");
      else void xml.then((text) => reply(res, 200, text, "text/xml"));
    });
    req.on("error", () => res.destroy());
  }

  /** One request: parse, dispatch, serialize; never throws. Synchronous when the method is. */
  private call(body: string, caller: Caller): string | Promise<string> {
    const start = process.hrtime.bigint();
    const client = caller.address ?? "?";
    let method = "?";
    try {
      const call = parseMethodCall(body);
      method = call.method;
      const result = dispatch(this.registry, call.method, call.params, caller);
      if (result instanceof Promise) {
        return result.then(
          (value) => this.done(client, method, start, serializeResponse(value), "ok"),
          (e: unknown) => this.failed(client, method, start, e),
        );
      }
      return this.done(client, method, start, serializeResponse(result), "ok");
    } catch (e) {
      return this.failed(client, method, start, e);
    }
  }

  private failed(client: string, method: string, start: bigint, e: unknown): string {
    const fault = faultOf(e);
    if (!(e instanceof RpcFault) && !(e instanceof XmlRpcParseError)) this.log.warn(`${method} failed: ${(e as Error).stack}`);
    return this.done(client, method, start, serializeFault(fault), "fault " + fault.faultString);
  }

  private done(client: string, method: string, start: bigint, xml: string, outcome: string): string {
    if (this.log.verbose >= 3) {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      this.log.log(3, `${client} ${method} ${ms.toFixed(1)} ms ${outcome}`);
    }
    return xml;
  }

  private listenOne(host: string, port: number, ipv6Only: boolean): Promise<http.Server> {
    const server = http.createServer(
      { keepAliveTimeout: 15_000, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1_000 },
      (req, res) => this.handle(req, res),
    );
    server.on("connection", (socket: Socket) => this.admit(socket));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host, port, ipv6Only }, () => {
        server.off("error", reject);
        resolve(server);
      });
    });
  }

  /** Listens on 0.0.0.0:port and [::]:port; returns the port (useful with 0). */
  async listen(port: number): Promise<number> {
    const v4 = await this.listenOne("0.0.0.0", port, false);
    this.servers.push(v4);
    const bound = (v4.address() as AddressInfo).port;
    try {
      this.servers.push(await this.listenOne("::", bound, true));
    } catch (e) {
      this.log.warn(`not listening on IPv6 [::]:${bound}: ${(e as Error).message}`);
    }
    return bound;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map((s) => new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      })),
    );
    this.servers.length = 0;
  }
}
