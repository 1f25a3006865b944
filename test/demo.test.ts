import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "./helpers/registry";

test("the demo joins nodes to a registry and cleans up after itself", () => {
  const r = spawnSync(process.execPath, [join(ROOT, "dist", "scripts", "demo.js"), "--nodes", "2", "--duration", "1"], { encoding: "utf8", timeout: 90_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /node1: token [a-z]{8} by mail, certificate CN 0\/16, node address 2001:db8:42:: /);
  assert.match(r.stdout, /node2: token [a-z]{8} by mail, certificate CN 1\/16, node address 2001:db8:42:1:: /);
  assert.match(r.stdout, /getPeerList\(3\) for node1: .*198\.51\.100\.2,1194,udp/);
  const dir = /--dir (\/\S+vifibnet-demo-\w+) /.exec(r.stdout)?.[1];
  assert.ok(dir, "the demo names its directory");
  assert.equal(existsSync(dir), false, "its directory is removed");
});
