// The npm xmlrpc package's internals, used by the tests as a reference codec.
declare module "xmlrpc/lib/serializer" {
  export function serializeMethodCall(method: string, params: unknown[]): string;
}
declare module "xmlrpc/lib/deserializer" {
  import type { Readable } from "node:stream";
  export default class Deserializer {
    deserializeMethodResponse(stream: Readable, callback: (error: unknown, value: unknown) => void): void;
  }
}
