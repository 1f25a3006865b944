// `npm run package`: the Debian package, built with Debian's own tools
// (dpkg-deb; dpkg-shlibdeps for the native module's libraries; go-md2man for
// the man pages) from a checkout after `npm ci`. Writes
// dist/vifibnet_<version>_<arch>.deb and prints its path. Layout:
//
//   /usr/lib/vifibnet/            the program: dist/lib, bin/ (with the OpenVPN
//                                 hooks), compat/ (legacy names), production node_modules
//   /usr/bin/vifibnet{,-setup,-registry,-ca}   links into /usr/lib/vifibnet/bin
//   /usr/lib/systemd/system/      vifibnet.service, vifibnet-registry.service
//   /etc/vifibnet/registry.conf   the registry's arguments (a conffile)
//   /etc/logrotate.d/vifibnet     rotation of the node's logs (a conffile)
//   /usr/share/man/, /usr/share/doc/vifibnet/
//
// The native module (better-sqlite3) is built for this Node's ABI, so the
// package depends on this Node major version.

import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync, cpSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { COMMAND_NAMES } from "../lib/registry/commands";
import { manPage } from "./man";

const ROOT = join(__dirname, "..", "..");
const SRC = join(ROOT, "packaging");
const OUT = join(ROOT, "dist");
const STAGE = join(OUT, "deb");
const APP = "usr/lib/vifibnet";
/** The packaged programs, their man page sections, and the first words they take as commands. */
export const PROGRAMS: ReadonlyArray<{ name: string; section: number; commands?: readonly string[] }> = [
  { name: "vifibnet", section: 8, commands: ["status"] },
  { name: "vifibnet-setup", section: 1 },
  { name: "vifibnet-registry", section: 8, commands: COMMAND_NAMES },
  { name: "vifibnet-ca", section: 1 },
];
const LEGACY_NAMES = ["vifibnet.py", "setup.py", "registry.py"];
const HOOKS = ["ovpn-server", "ovpn-client"];
const UNITS = ["vifibnet.service", "vifibnet-registry.service"];

function run(cmd: string, args: string[], cwd = ROOT): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout;
}

const at = (path: string): string => join(STAGE, path);

function install(from: string, to: string, mode: number): void {
  mkdirSync(dirname(at(to)), { recursive: true });
  cpSync(from, at(to));
  chmodSync(at(to), mode);
}

/** Every path under `dir`, depth first; links are not followed. */
function walk(dir: string, visit: (path: string) => void): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (lstatSync(p).isDirectory()) walk(p, visit);
    visit(p);
  }
}

/** The compiled program, its executables and production node_modules under /usr/lib/vifibnet. */
function stageProgram(): void {
  const app = at(APP);
  mkdirSync(app, { recursive: true });
  cpSync(join(ROOT, "dist", "lib"), join(app, "dist", "lib"), { recursive: true, filter: (p) => !p.endsWith(".map") });
  for (const f of ["vifibnet", "vifibnet-setup", "vifibnet-registry", "vifibnet-ca", ...HOOKS]) install(join(ROOT, "bin", f), `${APP}/bin/${f}`, 0o755);
  for (const f of LEGACY_NAMES) install(join(ROOT, "compat", f), `${APP}/compat/${f}`, 0o755);
  for (const f of ["package.json", "package-lock.json"]) cpSync(join(ROOT, f), join(app, f));
  // The checkout's modules without the dev ones: no network, no rebuild of the native module.
  cpSync(join(ROOT, "node_modules"), join(app, "node_modules"), { recursive: true, verbatimSymlinks: true });
  run("npm", ["prune", "--omit=dev", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], app);
  rmSync(join(app, "package-lock.json"));
  // better-sqlite3 needs only its compiled module at run time, not its sources and build tree.
  const sqlite = join(app, "node_modules", "better-sqlite3");
  const addon = join(sqlite, "build", "Release", "better_sqlite3.node");
  const keep = readFileSync(addon);
  for (const d of ["deps", "src", "build"]) rmSync(join(sqlite, d), { recursive: true, force: true });
  mkdirSync(dirname(addon), { recursive: true });
  writeFileSync(addon, keep);
  for (const p of PROGRAMS) {
    mkdirSync(at("usr/bin"), { recursive: true });
    symlinkSync(`../lib/vifibnet/bin/${p.name}`, at(`usr/bin/${p.name}`));
  }
}

function stageSystemFiles(version: string): void {
  for (const u of UNITS) install(join(SRC, "systemd", u), `usr/lib/systemd/system/${u}`, 0o644);
  install(join(SRC, "etc", "registry.conf"), "etc/vifibnet/registry.conf", 0o644);
  install(join(SRC, "etc", "logrotate.d", "vifibnet"), "etc/logrotate.d/vifibnet", 0o644);
  const doc = "usr/share/doc/vifibnet";
  install(join(SRC, "debian", "copyright"), `${doc}/copyright`, 0o644);
  for (const f of ["README.md", "docs/deploy.md"]) install(join(ROOT, f), `${doc}/${f.split("/").pop()}`, 0o644);
  const date = new Date(sourceDateEpoch() * 1000).toISOString().slice(0, 10);
  for (const p of PROGRAMS) {
    const page = manPage(at(`${APP}/bin/${p.name}`), join(ROOT, "docs", "man", `${p.name}.${p.section}.md`), { ...p, version, date }, p.commands);
    const path = `usr/share/man/man${p.section}/${p.name}.${p.section}.gz`;
    mkdirSync(dirname(at(path)), { recursive: true });
    writeFileSync(at(path), gzipSync(page, { level: 9 }));
  }
}

/** Reproducible dates: SOURCE_DATE_EPOCH, else the last commit's, else now. */
function sourceDateEpoch(): number {
  const env = Number(process.env["SOURCE_DATE_EPOCH"]);
  if (Number.isInteger(env) && env > 0) return env;
  const git = spawnSync("git", ["log", "-1", "--format=%ct"], { cwd: ROOT, encoding: "utf8" });
  const t = Number(git.stdout?.trim());
  return git.status === 0 && t > 0 ? t : Math.floor(Date.now() / 1000);
}

/** Root-owned files 0644 or 0755 (executables), directories 0755, whatever the checkout's umask. */
function normalizeModes(): void {
  walk(STAGE, (p) => {
    const st = lstatSync(p);
    if (relative(STAGE, p).startsWith("DEBIAN")) return;
    if (st.isDirectory()) chmodSync(p, 0o755);
    else if (st.isFile()) chmodSync(p, st.mode & 0o111 ? 0o755 : 0o644);
  });
}

/** The native modules' shared libraries, as Debian's dpkg-shlibdeps computes them. */
function sharedLibraryDepends(): string {
  const natives: string[] = [];
  walk(at(APP), (p) => { if (p.endsWith(".node")) natives.push(p); });
  if (natives.length === 0) return "";
  // dpkg-shlibdeps wants a source tree: an empty debian/control in a scratch directory is enough.
  const scratch = join(OUT, "deb-shlibs");
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(join(scratch, "debian"), { recursive: true });
  writeFileSync(join(scratch, "debian", "control"), "");
  try {
    // The V8 symbols come from node itself, which the package depends on.
    const out = run("dpkg-shlibdeps", ["--warnings=0", "-O", ...natives], scratch);
    return /^shlibs:Depends=(.*)$/m.exec(out)?.[1]?.trim() ?? "";
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function writeControl(version: string, arch: string): void {
  const debian = at("DEBIAN");
  mkdirSync(debian, { recursive: true });
  const major = Number(process.versions.node.split(".")[0]);
  const depends = [`nodejs (>= ${major})`, `nodejs (<< ${major + 1})`, "openvpn", "babeld", "iproute2", sharedLibraryDepends()].filter((d) => d !== "").join(", ");
  const size = Number(run("du", ["-sk", "--exclude=DEBIAN", STAGE]).split(/\s/)[0]);
  const control = readFileSync(join(SRC, "debian", "control"), "utf8")
    .replace("@VERSION@", version).replace("@ARCH@", arch).replace("@INSTALLED_SIZE@", String(size)).replace("@DEPENDS@", depends);
  writeFileSync(join(debian, "control"), control);
  const conffiles: string[] = [];
  walk(at("etc"), (p) => { if (lstatSync(p).isFile()) conffiles.push("/" + relative(STAGE, p)); });
  writeFileSync(join(debian, "conffiles"), conffiles.sort().join("\n") + "\n");
  const sums: string[] = [];
  walk(STAGE, (p) => {
    const rel = relative(STAGE, p);
    if (rel.startsWith("DEBIAN") || rel.startsWith("etc/") || !lstatSync(p).isFile()) return;
    sums.push(`${createHash("md5").update(readFileSync(p)).digest("hex")}  ${rel}`);
  });
  writeFileSync(join(debian, "md5sums"), sums.sort((a, b) => a.slice(34).localeCompare(b.slice(34))).join("\n") + "\n");
  for (const s of ["postinst", "prerm", "postrm"]) install(join(SRC, "debian", s), `DEBIAN/${s}`, 0o755);
}

export function build(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  const arch = run("dpkg", ["--print-architecture"]).trim();
  rmSync(STAGE, { recursive: true, force: true });
  stageProgram();
  stageSystemFiles(pkg.version);
  normalizeModes();
  writeControl(pkg.version, arch);
  const deb = join(OUT, `vifibnet_${pkg.version}_${arch}.deb`);
  process.env["SOURCE_DATE_EPOCH"] ??= String(sourceDateEpoch());
  execFileSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", STAGE, deb], { stdio: ["ignore", "ignore", "inherit"] });
  rmSync(STAGE, { recursive: true, force: true });
  return deb;
}

if (require.main === module) {
  try {
    process.stdout.write(`${build()}\n`);
  } catch (e) {
    process.stderr.write(`npm run package: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
