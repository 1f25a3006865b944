// What every registry method shares: who made the call, and the fault a
// refused call ends in, with the times and durations its message names.

import { CertificateError } from "../utils/x509";
import { IssueError } from "./db";

/** A method failure, sent as a fault shaped like the Python exception it stands for. */
export class RpcFault extends Error {
  constructor(readonly pythonClass: string, message: string) {
    super(message);
  }
  get faultString(): string {
    return `<class '${this.pythonClass}'>:${this.message}`;
  }
}

/** Who made a call: the address of the connection it came on (null when unknown), and which connection. */
export interface Caller {
  address: string | null;
  /** Unique per connection within this process; absent when unknown. */
  connection?: number;
}

export const UNKNOWN_CALLER: Caller = { address: null };

/** The fault for a refused certificate request or a failed issue; anything else as it is. */
export function requestFault(e: unknown): unknown {
  if (e instanceof CertificateError) return new RpcFault("ValueError", `certificate request refused: ${e.message}`);
  if (e instanceof IssueError) return new RpcFault(e.kind === "unknown-token" ? "LookupError" : "RuntimeError", e.message);
  return e;
}

/** Seconds since the epoch, as a fault message writes them: ISO 8601 to the second. */
export function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A duration in days, for a message: "1 day", "90 days", "0.5 days". */
export function days(seconds: number): string {
  const d = seconds / 86_400;
  return `${Number.isInteger(d) ? d : d.toFixed(1)} day${d === 1 ? "" : "s"}`;
}
