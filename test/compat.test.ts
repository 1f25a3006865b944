// The Python interoperability suites (compat/test_*.py), one test each, run
// under Node's test runner so `npm test` covers them: legacy Python clients
// (xmlrpc.client, pyOpenSSL, sqlite3) against the real programs.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const ROOT = join(__dirname, "..", "..");
const PYTHON = "/usr/bin/python3";
const TIMEOUT_MS = 240_000;
const KILL_GRACE_MS = 10_000;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  timedOut: boolean;
}

/** Runs a command with stdout and stderr merged; SIGTERM at the timeout, SIGKILL after a grace period. */
function run(command: string, args: string[], timeoutMs: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => chunks.push(c));
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM"); // the suite stops its registries and sinks on SIGTERM
      killer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      resolve({ code, signal, output: Buffer.concat(chunks).toString("utf8"), timedOut });
    });
  });
}

const modules = readdirSync(join(ROOT, "compat")).filter((f) => /^test_\w+\.py$/.test(f)).map((f) => f.slice(0, -3));

test("every Python suite is found", () => assert.ok(modules.length >= 2, `found ${modules.join(", ")}`));

for (const module of modules) {
  test(`legacy Python clients: compat/${module}.py`, { timeout: TIMEOUT_MS + 2 * KILL_GRACE_MS }, async () => {
    // compat/ has no __init__.py: from the root it imports as a namespace package.
    const r = await run(PYTHON, ["-m", "unittest", "-v", `compat.${module}`], TIMEOUT_MS);
    const how = r.timedOut ? `timed out after ${TIMEOUT_MS / 1000} s` : `exited with ${r.code ?? r.signal}`;
    assert.ok(r.code === 0 && !r.timedOut, `python3 -m unittest ${how}:\n${r.output}`);
    assert.match(r.output, /^OK/m, r.output);
    assert.doesNotMatch(r.output, /skipped/, `no test may be skipped here:\n${r.output}`);
  });
}
