// lib/babel-control.ts against a stand-in for babeld's local configuration
// interface on a UNIX socket (the real babeld is exercised by the namespace
// tests and bench/network.ts).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { Server, Socket, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { BabelControlError, babelRequest } from "../lib/babel-control";

const dir = mkdtempSync(join(tmpdir(), "vfb-babel-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A fake babeld: greets, then answers each line with answer(line), recording the lines. */
async function fakeBabeld(answer: (line: string) => string | null, greeting = "BABEL 1.0\nversion babeld-1.12.1\nhost node\nmy-id 2c:a3:36:8d:49:fa:f3:ff\nok\n"): Promise<{ path: string; lines: string[]; server: Server }> {
  const path = join(dir, `babeld-${n++}.sock`);
  const lines: string[] = [];
  const server = createServer((s: Socket) => {
    s.setEncoding("utf8");
    s.write(greeting);
    let buf = "";
    s.on("data", (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        const a = answer(line);
        if (a !== null) s.write(a);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, lines, server };
}

test("sends each request in order, after the greeting, each answered ok", async () => {
  const b = await fakeBabeld((l) => (l.startsWith("dump") ? "add neighbour x\nok\n" : "ok\n"));
  try {
    const answers = await babelRequest(b.path, ["flush interface client3", "dump", "interface client3 rxcost 4096 link-quality true"]);
    assert.deepEqual(answers, [[], ["add neighbour x"], []], "each request's data lines");
    assert.deepEqual(b.lines, ["flush interface client3", "dump", "interface client3 rxcost 4096 link-quality true"]);
  } finally {
    b.server.close();
  }
});

test("a request answered bad stops the exchange and names the request", async () => {
  const b = await fakeBabeld((l) => (l === "frobnicate" ? "bad\n" : "ok\n"));
  try {
    await assert.rejects(babelRequest(b.path, ["flush interface client1", "frobnicate", "interface client1"]),
      (e: Error) => e instanceof BabelControlError && /answered "bad" to "frobnicate"/.test(e.message));
    assert.deepEqual(b.lines, ["flush interface client1", "frobnicate"]);
  } finally {
    b.server.close();
  }
});

test("no babeld listening: a BabelControlError naming the socket", async () => {
  const path = join(dir, "nobody.sock");
  await assert.rejects(babelRequest(path, ["dump"]), (e: Error) => e instanceof BabelControlError && e.message.includes(path));
});

test("a babeld that never answers: bounded by the timeout", async () => {
  const b = await fakeBabeld(() => null, "BABEL 1.0\n"); // greeting never ends
  try {
    const t0 = Date.now();
    await assert.rejects(babelRequest(b.path, ["dump"], 200), (e: Error) => e instanceof BabelControlError && /did not answer within 200 ms/.test(e.message));
    assert.ok(Date.now() - t0 < 2_000);
    assert.deepEqual(b.lines, [], "nothing sent before the greeting ended");
  } finally {
    b.server.close();
  }
});

test("a request with a newline is refused before connecting", async () => {
  await assert.rejects(babelRequest(join(dir, "unused.sock"), ["dump\nquit"]), /one line/);
});
