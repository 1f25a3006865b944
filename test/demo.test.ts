// The README's main job, `npm run demo`: a real overlay (registry and nodes
// in network namespaces, vifibnet daemons with OpenVPN and babeld) that
// converges, is drawn as SVG, and is torn down after --duration seconds
// counted from convergence. Needs root; skipped otherwise.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "../harness/paths";
import { OVERLAY_PACKAGES, installPackages } from "../harness/netns";

const isRoot = process.getuid?.() === 0;

test("--nodes beyond what the underlay holds is a usage error before anything is built", () => {
  const r = spawnSync(process.execPath, [join(ROOT, "dist", "scripts", "demo.js"), "--nodes", "500"], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /error: argument --nodes: from 2 to 244 \(the underlay is one \/24\), not 500\n$/);
  assert.doesNotMatch(r.stdout, /Building/);
});

test("the demo builds a 3-node overlay, draws it, keeps its files (--keep) and tears it down", { skip: isRoot ? false : "needs root: network namespaces and tun devices", timeout: 300_000 }, () => {
  installPackages(OVERLAY_PACKAGES);
  const dir = mkdtempSync(join(tmpdir(), "vfb-demo-test-"));
  try {
    const svgPath = join(dir, "overlay.svg");
    const r = spawnSync(process.execPath, [join(ROOT, "dist", "scripts", "demo.js"), "--nodes", "3", "--duration", "1", "--timeout", "150", "--svg", svgPath, "--keep"],
      { encoding: "utf8", timeout: 240_000, killSignal: "SIGTERM" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /all pairs reachable after \d+\.\d s/);
    const kept = /Kept the network's files \(certificates, logs, registry database\) in (\S+)\n/.exec(r.stdout)?.[1];
    assert.ok(kept, `the kept directory is named: ${r.stdout}${r.stderr}`);
    try {
      assert.doesNotMatch(r.stderr, /could not keep/);
      for (const f of ["registry/registry.db", "node-0/cert.crt", "node-0/peers.db", "node-0/vifibnet.stderr", "node-0/log/vifibnet.babeld.log"])
        assert.ok(existsSync(join(kept, f)), `${f} kept`);
      assert.ok(!readdirSync(join(kept, "node-0")).some((f) => f.endsWith(".sock")), "no socket copied");
    } finally {
      rmSync(kept, { recursive: true, force: true });
    }
    assert.match(r.stdout, /node1 +2001:db8:42:\S* +198\.51\.100\.11 .* 2\/2 ✓/);
    assert.ok(existsSync(svgPath), "the SVG is written");
    const svg = readFileSync(svgPath, "utf8");
    assert.match(svg, /^<\?xml[^]*<svg [^]*<\/svg>\s*$/);
    for (const name of ["node1", "node2", "node3"]) assert.match(svg, new RegExp(`>${name}<`), `${name} is labelled`);
    assert.equal((svg.match(/>2001:db8:42:[0-9a-f:]*</g) ?? []).length, 3, "each node labelled with its overlay address");
    assert.ok((svg.match(/<line class="tunnel"/g) ?? []).length >= 2, "at least 2 tunnels drawn");
    const left = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.startsWith(`vfb-${r.pid}-`));
    assert.deepEqual(left, [], "no namespace of the demo remains");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
