// Hostile-request benchmark (npm run bench:hostile): the latency of
// legitimate registry calls, quiet and while clients flood it with
// certificate requests whose RSA modulus and exponent have 16,384 bits (the
// attack of issue 9: each such request cost node-forge minutes of CPU).
// Prints a table; figures in docs/benchmarks.md. Loopback only, bounded in
// time; the registry and temporary files are removed on any exit.
//
// Usage: node dist/bench/registry-hostile.js [--duration S] [--attackers N] [--root DIR]
// --root runs the registry of another checkout (built), e.g. an older commit, to compare.

import { ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { RegistryDb } from "../lib/registry/db";
import { parseMethodResponse, serializeMethodCall, type XmlRpcValue } from "../lib/xmlrpc";
import { bigOdd, makeCa, makeCsr, rawCsr } from "../harness/pki";

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const at = args.indexOf(name);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback;
};
const DURATION_S = Number(option("--duration", "10"));
const ATTACKERS = Number(option("--attackers", "4"));
const ROOT = path.resolve(option("--root", path.join(__dirname, "..", "..")));
/** A legitimate call not answered within this counts as lost. */
const CALL_TIMEOUT_MS = 5_000;
const NODE_IP = "2001:db8:42::1";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vifibnet-bench-hostile-"));
let registry: ChildProcess | null = null;
function cleanup(): void {
  // The whole process group: a worker busy with a hostile request outlives its primary otherwise.
  if (registry?.pid !== undefined) {
    try {
      process.kill(-registry.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

interface Outcome {
  ms: number;
  /** "ok", "fault", or why there was no answer. */
  kind: string;
}

function rpc(port: number, method: string, params: XmlRpcValue[], timeoutMs: number): Promise<Outcome> {
  const start = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - start) / 1e6;
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, path: "/RPC2", method: "POST", agent: false, headers: { "Content-Type": "text/xml" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        let kind = `HTTP ${res.statusCode}`;
        try {
          if (res.statusCode === 200) kind = "fault" in parseMethodResponse(body) ? "fault" : "ok";
        } catch {
          kind = "not XML-RPC";
        }
        resolve({ ms: elapsed(), kind });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error("no answer")));
    req.on("error", (e) => resolve({ ms: elapsed(), kind: e.message }));
    req.end(serializeMethodCall(method, params));
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function startRegistry(db: string): Promise<number> {
  const ca = makeCa();
  fs.writeFileSync(path.join(tmp, "ca.crt"), ca.pem);
  fs.writeFileSync(path.join(tmp, "ca.key"), ca.keyPem, { mode: 0o600 });
  registry = spawn(process.execPath, [path.join(ROOT, "bin", "vifibnet-registry"), "0", "--db", db, "--ca", path.join(tmp, "ca.crt"),
    "--key", path.join(tmp, "ca.key"), "--mailhost", "127.0.0.1:1"], { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let stderr = "";
  registry.stderr!.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the registry did not start: ${stderr}`)), 15_000);
    registry!.stderr!.on("data", (c: string) => {
      stderr += c;
      const m = /listening on 0\.0\.0\.0:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
}

interface Phase {
  name: string;
  peerList: Outcome[];
  certificates: Outcome[];
  hostile: Outcome[];
}

/**
 * One phase: a legitimate client calls getPeerList(50) in a loop, and
 * requestCertificate (a fresh token, a good CSR) every 10th call, while
 * `attackers` clients send hostile CSRs, every other one with a valid token
 * (a hostile request still unanswered when the phase ends counts as lost).
 */
async function phase(name: string, port: number, tokens: string[], attackers: number): Promise<Phase> {
  const end = Date.now() + DURATION_S * 1000;
  const result: Phase = { name, peerList: [], certificates: [], hostile: [] };
  const csr = makeCsr().csr;
  const legit = async (): Promise<void> => {
    for (let i = 0; Date.now() < end; i++) {
      if (i % 10 === 9 && tokens.length > 0) result.certificates.push(await rpc(port, "requestCertificate", [tokens.pop()!, csr], CALL_TIMEOUT_MS));
      else result.peerList.push(await rpc(port, "getPeerList", [50, NODE_IP], CALL_TIMEOUT_MS));
    }
  };
  // A refused request keeps its token: each attacker holds one valid token and uses it every other time.
  const held = Array.from({ length: attackers }, () => tokens.pop()!);
  const hostile = async (n: number): Promise<void> => {
    for (let i = 0; Date.now() < end; i++) {
      const token = i % 2 === 0 ? held[n]! : "abcdefgh";
      const remaining = Math.max(1, end - Date.now());
      result.hostile.push(await rpc(port, "requestCertificate", [token, rawCsr({ rsa: { modulus: bigOdd(16384), exponent: bigOdd(16384) } })], remaining));
    }
  };
  await Promise.all([legit(), ...Array.from({ length: attackers }, (_, n) => hostile(n))]);
  return result;
}

function row(label: string, outcomes: Outcome[], expect: string): string {
  const answered = outcomes.filter((o) => o.kind === expect);
  const ms = answered.map((o) => o.ms).sort((a, b) => a - b);
  const lost = outcomes.length - answered.length;
  const f = (x: number): string => (Number.isNaN(x) ? "-" : x.toFixed(1));
  return `| ${label.padEnd(34)} | ${String(answered.length).padStart(8)} | ${String(lost).padStart(4)} | ${f(percentile(ms, 0.5)).padStart(7)} | ${f(percentile(ms, 0.99)).padStart(7)} | ${f(ms.at(-1) ?? NaN).padStart(7)} |`;
}

async function main(): Promise<void> {
  const dbPath = path.join(tmp, "registry.db");
  const db = new RegistryDb(dbPath);
  for (let i = 0; i < 1000; i++) db.upsertPeer(i.toString(2).padStart(16, "0"), `198.51.${100 + (i >> 8)}.${i & 255},1194,udp`, Math.floor(Date.now() / 1000));
  const tokens: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const token = `t${i.toString(36).padStart(7, "0")}`;
    db.addToken({ token, email: `n${i}@example.com`, prefix_len: 16, date: Math.floor(Date.now() / 1000) });
    tokens.push(token);
  }
  db.close();
  const port = await startRegistry(dbPath);
  console.log(`registry: ${ROOT}, ${os.cpus().length} CPUs, ${DURATION_S} s per phase, ${ATTACKERS} hostile clients in the second`);
  const phases = [await phase("quiet", port, tokens, 0), await phase("attack", port, tokens, ATTACKERS)];
  console.log("\n| calls (per phase)                  | answered | lost |  p50 ms |  p99 ms |  max ms |");
  console.log("| ---------------------------------- | -------: | ---: | ------: | ------: | ------: |");
  for (const p of phases) {
    console.log(row(`${p.name}: getPeerList(50)`, p.peerList, "ok"));
    console.log(row(`${p.name}: requestCertificate`, p.certificates, "ok"));
    if (p.hostile.length > 0) console.log(row(`${p.name}: hostile requestCertificate`, p.hostile, "fault"));
  }
  const lost = phases[1]!.peerList.concat(phases[1]!.certificates).filter((o) => o.kind !== "ok").length;
  process.exitCode = lost > 0 ? 1 : 0;
  if (lost > 0) console.log(`\n${lost} legitimate call(s) lost under attack`);
}

main().then(
  () => process.exit(), // a registry stuck on a hostile request would keep us waiting
  (e: unknown) => {
    console.error((e as Error).stack ?? e);
    process.exit(1);
  },
);
