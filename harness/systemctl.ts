// A stand-in for `systemctl` inside a test machine (harness/machine.ts),
// where systemd is not PID 1: it reads the real unit files the package
// installed and does what systemd does with the parts our units use:
// ExecStart (Type=exec: started when exec'd), ExecReload with $MAINPID,
// KillMode=mixed with TimeoutStopSec, LogsDirectory=/StateDirectory=, and
// [Install] WantedBy= links for enable/disable. Restart=, sandboxing and
// cgroups are not emulated (systemd-analyze verify checks the files).
// State (pid files, each service's output) lives in $VFB_SYSTEMD_STATE.
// Run as `node systemctl.js VERB [--now] UNIT...`, through a `systemctl`
// wrapper first on the machine's PATH.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];
const STOP_CAP_S = 30;

interface Unit {
  name: string;
  path: string;
  get(section: string, key: string): string[];
}

function fail(message: string, code = 1): never {
  process.stderr.write(`systemctl: ${message}\n`);
  process.exit(code);
}

function loadUnit(name: string): Unit {
  for (const dir of UNIT_DIRS) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    const values = new Map<string, string[]>();
    let section = "";
    for (const raw of readFileSync(path, "utf8").split("\n")) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
      const s = /^\[(.+)\]$/.exec(line);
      if (s) { section = s[1]!; continue; }
      const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (!kv) continue;
      const key = `${section}.${kv[1]}`;
      values.set(key, kv[2] === "" ? [] : [...(values.get(key) ?? []), kv[2]!]); // an empty value resets, as in systemd
    }
    return { name, path, get: (sec, key) => values.get(`${sec}.${key}`) ?? [] };
  }
  return fail(`Unit ${name} not found.`, 5);
}

const stateDir = (): string => {
  const d = process.env["VFB_SYSTEMD_STATE"];
  if (!d) fail("VFB_SYSTEMD_STATE is not set (this is the test machines' stand-in for systemctl)");
  mkdirSync(d, { recursive: true });
  return d;
};
const pidFile = (unit: string): string => join(stateDir(), `${unit}.pid`);
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
};
function mainPid(unit: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile(unit), "utf8"));
    return alive(pid) ? pid : null;
  } catch {
    return null;
  }
}
const sleep = (ms: number): void => void spawnSync("sleep", [String(ms / 1000)]);

/** A command line of ExecStart=/ExecReload=: its prefix characters dropped, split on blanks (our units quote nothing). */
function commandLine(value: string, pid?: number): string[] {
  return value.replace(/^[-@:+!]+/, "").replace(/\$MAINPID/g, String(pid ?? "")).split(/\s+/).filter((w) => w !== "");
}

function start(unit: Unit): void {
  if (mainPid(unit.name) !== null) return;
  const exec = unit.get("Service", "ExecStart");
  if (exec.length !== 1) fail(`${unit.name}: expected one ExecStart=, found ${exec.length}`);
  for (const d of unit.get("Service", "LogsDirectory").flatMap((v) => v.split(/\s+/))) mkdirSync(join("/var/log", d), { recursive: true, mode: 0o755 });
  for (const d of unit.get("Service", "StateDirectory").flatMap((v) => v.split(/\s+/))) mkdirSync(join("/var/lib", d), { recursive: true, mode: 0o755 });
  const argv = commandLine(exec[0]!);
  if (!existsSync(argv[0]!)) fail(`${unit.name}: ExecStart ${argv[0]} does not exist`, 1);
  const out = openSync(join(stateDir(), `${unit.name}.log`), "a");
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ["ignore", out, out], cwd: "/" });
  writeFileSync(pidFile(unit.name), String(child.pid));
  child.unref();
}

function stop(unit: Unit): void {
  const pid = mainPid(unit.name);
  rmSync(pidFile(unit.name), { force: true });
  if (pid === null) return;
  const timeout = Math.min(Number(unit.get("Service", "TimeoutStopSec")[0] ?? 90), STOP_CAP_S);
  process.kill(pid, "SIGTERM"); // KillMode=mixed: the main process only
  for (let t = 0; t < timeout * 10 && alive(pid); t++) sleep(100);
  try {
    process.kill(-pid, "SIGKILL"); // then whatever is left of its process group
  } catch {
    // all gone
  }
}

function wantedByLinks(unit: Unit): string[] {
  return unit.get("Install", "WantedBy").flatMap((v) => v.split(/\s+/)).map((t) => join("/etc/systemd/system", `${t}.wants`, unit.name));
}

function enable(unit: Unit): void {
  for (const link of wantedByLinks(unit)) {
    if (existsSync(link)) continue;
    mkdirSync(join(link, ".."), { recursive: true });
    symlinkSync(unit.path, link);
    process.stderr.write(`Created symlink ${link} → ${unit.path}.\n`);
  }
}

function enabled(unit: Unit): boolean {
  return wantedByLinks(unit).some((l) => {
    try {
      return readlinkSync(l) !== "";
    } catch {
      return false;
    }
  });
}

function disable(unit: Unit): void {
  for (const link of wantedByLinks(unit)) {
    if (!existsSync(link)) continue;
    rmSync(link);
    process.stderr.write(`Removed "${link}".\n`);
  }
}

function main(argv: string[]): void {
  const flags = new Set(argv.filter((a) => a.startsWith("-")));
  const [verb, ...names] = argv.filter((a) => !a.startsWith("-"));
  for (const f of flags) if (!["--now", "--quiet", "-q", "--system", "--no-block", "--no-pager"].includes(f)) fail(`unsupported option ${f}`);
  const unitNames = names.map((n) => (n.includes(".") ? n : `${n}.service`));
  const units = (): Unit[] => unitNames.map(loadUnit);
  const quiet = flags.has("--quiet") || flags.has("-q");
  switch (verb) {
    case "daemon-reload":
      return;
    case "enable":
      for (const u of units()) { enable(u); if (flags.has("--now")) start(u); }
      return;
    case "disable":
      for (const u of units()) { disable(u); if (flags.has("--now")) stop(u); }
      return;
    case "start":
      return units().forEach(start);
    case "stop":
      return units().forEach(stop);
    case "restart":
      return units().forEach((u) => { stop(u); start(u); });
    case "try-restart":
      return units().forEach((u) => { if (mainPid(u.name) !== null) { stop(u); start(u); } });
    case "reload":
      for (const u of units()) {
        const pid = mainPid(u.name);
        if (pid === null) fail(`${u.name} is not active, cannot reload.`);
        for (const line of u.get("Service", "ExecReload")) {
          const cmd = commandLine(line, pid);
          if (spawnSync(cmd[0]!, cmd.slice(1), { stdio: "inherit" }).status !== 0) fail(`${u.name}: ExecReload failed`);
        }
      }
      return;
    case "is-active": {
      const active = unitNames.map((u) => mainPid(u) !== null); // a unit that is gone is inactive, as for systemd
      if (!quiet) process.stdout.write(active.map((a) => (a ? "active\n" : "inactive\n")).join(""));
      process.exit(active.every(Boolean) ? 0 : 3);
    }
    case "is-enabled": {
      const on = units().map(enabled);
      if (!quiet) process.stdout.write(on.map((e) => (e ? "enabled\n" : "disabled\n")).join(""));
      process.exit(on.every(Boolean) ? 0 : 1);
    }
    case "status":
      for (const u of units()) {
        const pid = mainPid(u.name);
        process.stdout.write(`● ${u.name}\n     Active: ${pid !== null ? `active (running), main PID ${pid}` : "inactive (dead)"}\n`);
        const log = join(stateDir(), `${u.name}.log`);
        if (existsSync(log)) process.stdout.write(readFileSync(log, "utf8").split("\n").slice(-10).join("\n") + "\n");
      }
      return;
    default:
      fail(`unsupported verb ${verb ?? "(none)"} in the test machines' stand-in`);
  }
}

if (require.main === module) main(process.argv.slice(2));
