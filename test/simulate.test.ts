// npm run simulate and npm run simulate:scale, as a user runs them: the
// same seed gives the same figures and the same table, another seed others;
// bad arguments get a one-line error and status 2.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { simulate } from "../sim/run";

const MAIN = join(__dirname, "..", "sim", "main.js");
const SCALE = join(__dirname, "..", "sim", "scale.js");

function run(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe("simulate", () => {
  test("the same seed gives the same run, sampled distances and kill experiments included; another seed another", () => {
    const opts = { nodes: 400, tunnels: 4, rounds: 14, sources: 96, kill: [0.3] }; // 14 rounds: a peers DB refresh at round 13
    const a = simulate({ ...opts, seed: 9 });
    const b = simulate({ ...opts, seed: 9 });
    assert.deepEqual(a, b);
    assert.ok(a.rounds.at(-1)!.distanceError > 0, "distances were sampled");
    const c = simulate({ ...opts, seed: 10 });
    assert.notDeepEqual(c.rounds, a.rounds);
    const shuffled = simulate({ ...opts, seed: 9, ties: "random", kill: [] });
    assert.deepEqual(simulate({ ...opts, seed: 9, ties: "random", kill: [] }), shuffled);
    assert.notDeepEqual(shuffled.rounds, a.rounds, "ties decide routes, routes decide the plans");
  });

  test("the table on stdout, twice the same for one seed; --json holds every round", async () => {
    const args = ["--nodes", "120", "--tunnels", "3", "--rounds", "6", "--seed", "4", "--kill", "0.2"];
    const first = await run(MAIN, args);
    const second = await run(MAIN, args);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, second.stdout);
    const lines = first.stdout.split("\n");
    assert.match(lines[0]!, /^120 nodes, 3 client tunnels wanted each: --connection-count 6/);
    assert.equal(lines.filter((l) => /^\s+[1-6]\s/.test(l)).length, 6, "one line per round");
    assert.ok(lines.some((l) => /^\s+at random\s+0\.2\s+24\s/.test(l)), "the kill experiment at random");
    assert.match(first.stderr, /^simulated in [0-9.]+ s \(CPU [0-9.]+ s\), peak RSS [0-9]+ MB\n$/);
    const json = await run(MAIN, [...args, "--json"]);
    const r = JSON.parse(json.stdout) as { rounds: unknown[]; kill: unknown[]; perf: { peakRssMB: number } };
    assert.equal(r.rounds.length, 6);
    assert.equal(r.kill.length, 2);
    assert.ok(r.perf.peakRssMB > 0);
  });

  test("the scale table is one command, the same twice", async () => {
    const args = ["--nodes", "60,90", "--tunnels", "2,3", "--kill", "0.3", "--rounds", "5"];
    const first = await run(SCALE, args);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, (await run(SCALE, args)).stdout);
    for (const row of ["| 60 | 2 (2) |", "| 60 | 3 (3) |", "| 90 | 2 (2) |", "| 90 | 3 (3) |", "| 90 | 3 | 0.3 |"])
      assert.ok(first.stdout.includes(row), row);
  });

  test("bad arguments: one line saying what is wrong, status 2", async () => {
    for (const [args, message] of [
      [["--nodes", "1", "--tunnels", "3"], /argument --nodes: a network needs at least 2 nodes/],
      [["--nodes", "10", "--tunnels", "3", "--kill", "1.5"], /argument --kill: a fraction between 0 and 1/],
      [["--nodes", "10"], /the following arguments are required: --tunnels/],
      [["--nodes", "ten", "--tunnels", "3"], /argument --nodes: invalid 'int' value: 'ten'/],
    ] as Array<[string[], RegExp]>) {
      const r = await run(MAIN, args);
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.stdout, "");
      const last = r.stderr.trimEnd().split("\n").at(-1)!;
      assert.match(last, message);
    }
  });
});
