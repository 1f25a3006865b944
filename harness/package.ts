// The Debian package as `npm run package` builds it from a clean clone of
// this repository (its committed files only), built once per test run
// (dist/ is new each run) and shared by the tests that need it. The clone
// gets the checkout's node_modules in place of `npm ci` (same lockfile; no
// network, no rebuild of the native module).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./paths";

const CACHE = join(ROOT, "dist", "test-package");
const LOCK = CACHE + ".lock";

export interface BuiltPackage {
  deb: string;
  /** What `npm run package` printed. */
  output: string;
}

function build(): BuiltPackage {
  const clone = mkdtempSync(join(tmpdir(), "vfb-package-clone-"));
  try {
    const git = spawnSync("git", ["clone", "--quiet", "--no-hardlinks", ROOT, clone], { encoding: "utf8", timeout: 120_000 });
    assert.equal(git.status, 0, `git clone: ${git.stderr}`);
    cpSync(join(ROOT, "node_modules"), join(clone, "node_modules"), { recursive: true, verbatimSymlinks: true });
    const r = spawnSync("npm", ["run", "--silent", "package"], { cwd: clone, encoding: "utf8", timeout: 600_000 });
    assert.equal(r.status, 0, `npm run package in a clean clone:\n${r.stdout}\n${r.stderr}`);
    const built = r.stdout.trim().split("\n").at(-1)!;
    assert.match(built, /\/dist\/vifibnet_[^/]+\.deb$/, `npm run package prints the path of the .deb: ${r.stdout}`);
    const deb = join(CACHE, built.split("/").at(-1)!);
    cpSync(built, deb);
    writeFileSync(join(CACHE, "output"), r.stdout + r.stderr);
    return { deb, output: r.stdout + r.stderr };
  } finally {
    rmSync(clone, { recursive: true, force: true });
  }
}

/** The package's path, building it if no test did yet in this run (several test files may ask at once). */
export function builtPackage(): BuiltPackage {
  for (let round = 0; ; round++) {
    const done = join(CACHE, "done");
    if (existsSync(done)) {
      const deb = readFileSync(done, "utf8");
      return { deb, output: readFileSync(join(CACHE, "output"), "utf8") };
    }
    let fd: number;
    try {
      fd = openSync(LOCK, "wx");
    } catch {
      // Another test file is building; a lock older than the build's bound was left by a killed run.
      const lock = statSync(LOCK, { throwIfNoEntry: false });
      if (lock && Date.now() - lock.mtimeMs > 900_000) rmSync(LOCK, { force: true });
      assert.ok(round < 3600, "waited too long for another test's package build");
      spawnSync("sleep", ["0.5"]);
      continue;
    }
    try {
      rmSync(CACHE, { recursive: true, force: true });
      mkdirSync(CACHE, { recursive: true });
      const built = build();
      writeFileSync(done, built.deb);
      return built;
    } finally {
      closeSync(fd);
      rmSync(LOCK, { force: true });
    }
  }
}
