// A client of babeld's local configuration interface (babeld -G PATH, a
// UNIX socket; babeld(8) "LOCAL CONFIGURATION INTERFACE"): babeld greets
// with "BABEL <version>" and informational lines ended by "ok", then answers
// each request line with data ending in "ok", "no" or "bad". The daemon uses
// it to move babel's routes off a tunnel before closing it (plib's
// babelRetireLines). One short connection per use: babeld serves few.

import { connect } from "node:net";

export class BabelControlError extends Error {}

/** How long one exchange may take; babeld answers in microseconds. */
export const BABEL_CONTROL_TIMEOUT_MS = 2_000;

/**
 * Sends `lines` to babeld at `socketPath`, one request each, in order, and
 * resolves when all were answered "ok", with each request's data lines (a
 * `dump`'s routes, say; most requests have none). Rejects with a BabelControlError
 * naming the first refused request, a connection failure, or the timeout.
 */
export function babelRequest(socketPath: string, lines: readonly string[], timeoutMs = BABEL_CONTROL_TIMEOUT_MS): Promise<string[][]> {
  for (const l of lines)
    if (/[\r\n]/.test(l)) return Promise.reject(new BabelControlError(`a babeld request is one line: ${JSON.stringify(l)}`));
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let buf = "";
    let next = -1; // -1: reading the greeting; then the index of the request awaiting its answer
    const answers: string[][] = [];
    const finish = (err: Error | null): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(answers);
    };
    const timer = setTimeout(() => finish(new BabelControlError(`babeld at ${socketPath} did not answer within ${timeoutMs} ms`)), timeoutMs);
    const send = (): void => {
      next++;
      if (next === lines.length) finish(null);
      else {
        answers.push([]);
        sock.write(`${lines[next]}\n`);
      }
    };
    sock.setEncoding("utf8");
    sock.on("error", (e) => finish(new BabelControlError(`babeld's control socket ${socketPath}: ${e.message}`)));
    sock.on("close", () => finish(new BabelControlError(`babeld closed its control socket ${socketPath} before answering`)));
    sock.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (next === -1) {
          if (line === "ok") send();
          else if (line === "no" || line === "bad") return finish(new BabelControlError(`babeld at ${socketPath} refused the connection (${line})`));
          continue;
        }
        if (line === "ok") send();
        else if (line === "no" || line === "bad") return finish(new BabelControlError(`babeld answered "${line}" to "${lines[next]}"`));
        else answers[next]!.push(line);
      }
    });
  });
}
