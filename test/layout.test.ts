// The shape of lib/ (README "Layout"): no import cycle between modules, so
// each one can be read, tested and replaced on its own.

import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { ROOT } from "../harness/paths";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

test("no import cycle in lib/", () => {
  const lib = join(ROOT, "lib");
  const graph = new Map<string, string[]>();
  for (const f of sources(lib)) {
    const deps: string[] = [];
    for (const m of readFileSync(f, "utf8").matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"(\.[^"]+)"/gm)) {
      const target = resolve(dirname(f), m[1]!) + ".ts";
      if (existsSync(target)) deps.push(target);
    }
    graph.set(f, deps);
  }
  assert.ok(graph.size > 40, `read lib/ (${graph.size} modules)`);
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (f: string, path: string[]): void => {
    state.set(f, "open");
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === "open") cycles.push([...path.slice(path.indexOf(d)), d].map((x) => relative(lib, x)).join(" -> "));
      else if (!state.has(d)) visit(d, [...path, d]);
    }
    state.set(f, "done");
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f, [f]);
  assert.deepEqual(cycles, []);
});

test("lib/ imports only Node's modules and the production dependencies (the package prunes the others)", () => {
  const { dependencies } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  const wrong: string[] = [];
  let imports = 0;
  for (const f of sources(join(ROOT, "lib"))) {
    for (const m of readFileSync(f, "utf8").matchAll(/^(import|export)(\s+type)?\b[^;]*?\bfrom\s+"([^."][^"]*)"/gm)) {
      imports++;
      const spec = m[3]!;
      const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
      if (m[2] || spec.startsWith("node:") || name in dependencies) continue;
      wrong.push(`${relative(ROOT, f)}: ${spec}`);
    }
  }
  assert.ok(imports > 20, `read lib/'s package imports (${imports})`);
  assert.deepEqual(wrong, []);
});
