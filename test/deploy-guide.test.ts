// docs/deploy.md, run as written: every "```sh MACHINE" block, in order, on
// its machine (harness/machine.ts: a network namespace with its own
// /etc, /usr, /var, where `apt install ./vifibnet_*.deb` really installs
// the package built by `npm run package`). The test sits at the keyboard
// where a program asks (an email address, the token from the mail) and
// plays the registry host's mail relay (a mail catcher on its port 25).
//
//   registry 198.51.100.1  ─┐
//   node1    198.51.100.11 ─┤ bridge "lan" in the namespace "switch"
//   node2    198.51.100.12 ─┤
//   legacy   198.51.100.13 ─┘
//
// A token the guide mints on the registry (vifibnet-registry token) is read
// from that block's output and typed where the node's setup asks for it;
// the other nodes get theirs by mail. After each block that leaves two or
// more nodes running, every node must ping every other node's overlay
// address; a renewed node keeps its address. The legacy node's files must
// come out of the upgrade and the rollback as they went in. Needs root.

import assert from "node:assert/strict";
import { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { EMAIL_PROMPT, TOKEN_PROMPT } from "../lib/setup/run";
import { nodeAddress, prefixToCn } from "../lib/utils/address";
import { caNetwork, checkNodeCertificate } from "../lib/utils/x509";
import { Machine, RunResult } from "../harness/machine";
import { Lab, OVERLAY_PACKAGES, installPackages, waitFor } from "../harness/netns";
import { builtPackage } from "../harness/package";
import { ROOT } from "../harness/paths";
import { tokenInMailDir } from "../harness/smtp-sink";

const isRoot = process.getuid?.() === 0;
const GUIDE = join(ROOT, "docs", "deploy.md");
const ADDRESSES: Readonly<Record<string, string>> = {
  registry: "198.51.100.1", node1: "198.51.100.11", node2: "198.51.100.12", legacy: "198.51.100.13",
};
const REGISTRY_PORT = 8000;
const LEGACY_FILES = ["ca.pem", "cert.crt", "cert.key", "dh2048.pem"];

interface GuideBlock {
  machine: string;
  script: string;
  /** 1-based line of the opening fence. */
  line: number;
}

/** The guide's "```sh MACHINE" blocks, in order. */
function guideBlocks(text: string): GuideBlock[] {
  const blocks: GuideBlock[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(\S*)\s*$/.exec(lines[i]!);
    if (!open || open[1] === "") continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]!);
    if (open[1] === "sh") blocks.push({ machine: open[2]!, script: body.join("\n") + "\n", line: start + 1 });
  }
  return blocks;
}

/** The machines table: name → address. */
function guideAddresses(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^\| `([a-z0-9]+)` +\|[^|]*\| *([0-9.]+) *\|$/gm)) out[m[1]!] = m[2]!;
  return out;
}

describe("docs/deploy.md, followed on four machines", { skip: isRoot ? false : "needs root: namespaces, mounts, dpkg", timeout: 900_000 }, () => {
  const text = readFileSync(GUIDE, "utf8");
  const blocks = guideBlocks(text);
  const lab = new Lab();
  const tmp = mkdtempSync(join(tmpdir(), "vfb-guide-"));
  const mailDir = join(tmp, "mail");
  const machines = new Map<string, Machine>();
  let sink: ChildProcess | undefined;

  before(async () => {
    installPackages([...OVERLAY_PACKAGES, "python3"]);
    const deb = builtPackage().deb;
    const sw = lab.add();
    const ip = (ns: string, ...args: string[]): void => {
      const r = lab.exec(ns, ["ip", ...args]);
      assert.equal(r.status, 0, `ip ${args.join(" ")}: ${r.stderr}`);
    };
    ip(sw, "link", "add", "lan", "type", "bridge");
    ip(sw, "link", "set", "lan", "up");
    for (const [name, address] of Object.entries(ADDRESSES)) {
      const m = await Machine.create(lab, name, join(tmp, name));
      machines.set(name, m);
      ip(sw, "link", "add", `p-${name}`, "type", "veth", "peer", "name", "eth0", "netns", m.ns);
      ip(sw, "link", "set", `p-${name}`, "master", "lan", "up");
      ip(m.ns, "addr", "add", `${address}/24`, "dev", "eth0");
      ip(m.ns, "link", "set", "eth0", "up");
      cpSync(deb, join(m.home, basename(deb)));
    }
    // The registry host's mail relay.
    const reg = machines.get("registry")!;
    sink = lab.spawn(reg.ns, [process.execPath, join(ROOT, "dist", "harness", "smtp-sink.js"), mailDir, "25"], { stdio: ["ignore", "pipe", "pipe"] });
    let sinkOut = "";
    sink.stdout!.setEncoding("utf8").on("data", (c: string) => (sinkOut += c));
    assert.ok(await waitFor(() => sinkOut === "25\n", 15_000, 100), "the mail catcher listens on port 25");
    // The legacy node's checkout: the legacy-named launchers stand in for the 2012 code.
    const legacy = await machines.get("legacy")!.run(
      `mkdir -p /opt/vifibnet && ln -s ${join(ROOT, "compat", "setup.py")} ${join(ROOT, "compat", "vifibnet.py")} /opt/vifibnet/`);
    assert.equal(legacy.code, 0, legacy.stderr);
  }, { timeout: 900_000 }); // installs packages and builds the .deb when no other test has

  after(() => {
    sink?.kill();
    lab.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  test("the guide's machines are the test's, its build step is npm run package", () => {
    assert.deepEqual(guideAddresses(text), ADDRESSES);
    const machinesUsed = new Set(blocks.map((b) => b.machine));
    for (const m of machinesUsed) assert.ok(m === "build" || m in ADDRESSES, `block for unknown machine ${m}`);
    assert.deepEqual(blocks.filter((b) => b.machine === "build").map((b) => b.script), ["npm run package\n"]);
    assert.ok(blocks.length >= 6, `${blocks.length} blocks`);
  });

  /** The machine's node, if it has joined: its overlay address, from its certificate. */
  function nodeOf(m: Machine): { address: string; prefix: string } | null {
    for (const dir of ["/etc/vifibnet", "/etc/vifib"]) {
      const cert = m.written(`${dir}/cert.crt`);
      if (!existsSync(cert)) continue;
      const caPem = readFileSync(m.written(`${dir}/ca.pem`), "utf8");
      const prefix = checkNodeCertificate(readFileSync(cert, "utf8"), caPem).prefix!;
      return { address: nodeAddress(caNetwork(caPem), prefix), prefix };
    }
    return null;
  }

  function registryKnows(prefix: string): boolean {
    const path = machines.get("registry")!.written("/var/lib/vifibnet/registry.db");
    if (!existsSync(path)) return false;
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      return db.prepare("SELECT 1 FROM peers WHERE prefix = ?").get(prefix) !== undefined;
    } finally {
      db.close();
    }
  }

  function diagnostics(): string {
    let out = "";
    for (const m of machines.values()) {
      out += `=== ${m.name}\n`;
      for (const dir of [join(m.dir, "systemd"), m.written("/var/log/vifibnet")]) {
        if (!existsSync(dir)) continue;
        for (const f of readdirSync(dir).filter((f) => f.endsWith(".log")))
          out += `--- ${f}\n${readFileSync(join(dir, f), "utf8").split("\n").slice(-12).join("\n")}\n`;
      }
      const legacyLog = join(m.written("/opt/vifibnet"), "vifibnet.log");
      if (existsSync(legacyLog)) out += `--- legacy vifibnet.log\n${readFileSync(legacyLog, "utf8").split("\n").slice(-12).join("\n")}\n`;
      out += `routes:\n${lab.exec(m.ns, ["ip", "-6", "route"]).stdout}`;
    }
    return out;
  }

  async function allPairsPing(timeoutMs: number): Promise<void> {
    const nodes = [...machines.values()].map((m) => ({ m, node: nodeOf(m) })).filter((n) => n.node !== null);
    let failing: string[] = [];
    const ok = await waitFor(async () => {
      failing = [];
      await Promise.all(nodes.flatMap((a) => nodes.filter((b) => b !== a).map(async (b) => {
        const r = await new Promise<number | null>((resolve) => {
          const p = lab.spawn(a.m.ns, ["ping", "-6", "-n", "-c1", "-W1", b.node!.address], { stdio: "ignore" });
          p.on("close", resolve);
        });
        if (r !== 0) failing.push(`${a.m.name}→${b.m.name}`);
      })));
      return failing.length === 0;
    }, timeoutMs, 1_000);
    assert.ok(ok, `not all pairs ping after ${timeoutMs / 1000} s: ${failing.join(" ")}\n${diagnostics()}`);
  }

  /** Tokens the guide minted on the registry, not yet typed on a node. */
  const minted: string[] = [];

  /** Runs one block on its machine, answering setup's questions as its admin would. */
  async function runBlock(b: GuideBlock): Promise<RunResult> {
    const m = machines.get(b.machine)!;
    let emails = 0, tokens = 0, fetching = false;
    const r = await m.run(b.script, {
      timeoutMs: 300_000,
      onOutput: (out, write) => {
        for (; emails < out.split(EMAIL_PROMPT).length - 1; emails++) write(`${m.name}@example.com\n`);
        if (fetching || out.split(TOKEN_PROMPT).length - 1 <= tokens) return;
        if (/vifibnet-setup .*--token$/m.test(b.script)) {
          // Asked for the token the registry's admin minted and handed over.
          write(`${minted.shift() ?? "no-token-minted"}\n`);
          tokens++;
          return;
        }
        const email = [...out.matchAll(/A token was sent to (\S+)\./g)].at(-1)?.[1];
        if (!email) return;
        fetching = true;
        void waitFor(() => tokenInMailDir(mailDir, email) !== null, 30_000, 100).then(() => {
          write(`${tokenInMailDir(mailDir, email) ?? "no-token-mailed"}\n`);
          tokens++;
          fetching = false;
        });
      },
    });
    if (/^vifibnet-registry token /m.test(b.script)) minted.push(...(r.stdout.match(/^[a-z]{8}$/gm) ?? []));
    return r;
  }

  const snapshot = (m: Machine): string[] =>
    LEGACY_FILES.map((f) => `${f} ${createHash("sha256").update(readFileSync(m.written(`/etc/vifib/${f}`))).digest("hex")}`);
  let legacyFiles: string[] | undefined;
  let broken = false; // the blocks build on each other: after a failure, the next ones are skipped

  for (const [i, b] of blocks.entries()) {
    if (b.machine === "build") continue; // built once by builtPackage(), with this very command
    test(`block ${i + 1} (line ${b.line}) on ${b.machine}`, { timeout: 600_000 }, async (t) => {
      if (broken) return t.skip("an earlier block failed");
      broken = true;
      const m = machines.get(b.machine)!;
      if (b.machine === "legacy" && b.script.includes("apt install")) legacyFiles = snapshot(m);
      const renewing = /vifibnet-setup --renew/.test(b.script);
      const before = renewing ? { node: nodeOf(m), cert: readFileSync(m.written("/etc/vifibnet/cert.crt"), "utf8") } : null;
      const r = await runBlock(b);
      assert.equal(r.code, 0, `the block failed (${r.code}):\n${b.script}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}\n${diagnostics()}`);
      if (/^vifibnet-registry token /m.test(b.script)) assert.equal(minted.length, 1, `the block printed a token: ${r.stdout}`);
      if (before) {
        assert.deepEqual(nodeOf(m), before.node, "the renewed node keeps its prefix and address");
        assert.equal(readFileSync(m.written("/etc/vifibnet/cert.crt.old"), "utf8"), before.cert);
        assert.notEqual(readFileSync(m.written("/etc/vifibnet/cert.crt"), "utf8"), before.cert);
      }
      if (/^vifibnet-ca --renew /m.test(b.script)) assert.ok(existsSync(m.written("/etc/vifibnet/registry/ca.crt.old")), "the CA renewed");
      if (/^vifibnet-registry list /m.test(b.script)) {
        for (const joined of [...machines.values()].map(nodeOf).filter((x) => x !== null))
          assert.match(r.stdout, new RegExp(`^${prefixToCn(joined.prefix).replace("/", "\\/")} `, "m"), `list shows ${joined.address}:\n${r.stdout}`);
      }
      if (/vifibnet-setup .*-d \/etc\/vifibnet/.test(b.script) && !renewing) {
        assert.match(r.stdout, /^Start the node with: \/usr\/bin\/vifibnet @\/etc\/vifibnet\/vifibnet\.conf$/m);
        assert.match(r.stdout, /^or, as the package's service: systemctl enable --now vifibnet$/m);
      }
      if (b.script.includes("systemctl enable --now vifibnet-registry")) {
        const listening = await waitFor(() => lab.exec(m.ns, ["bash", "-c", `echo >/dev/tcp/127.0.0.1/${REGISTRY_PORT}`]).status === 0, 30_000, 200);
        assert.ok(listening, `the registry listens on ${REGISTRY_PORT}\n${diagnostics()}`);
      }
      const node = nodeOf(m);
      const running = /systemctl enable --now vifibnet$|vifibnet\.py /m.test(b.script);
      if (node && running) {
        // What the next machine's setup bootstraps from: this node, declared.
        assert.ok(await waitFor(() => registryKnows(node.prefix), 60_000, 500), `${m.name} declared itself to the registry\n${diagnostics()}`);
      }
      if (b.script.includes("systemctl disable --now vifibnet")) {
        const state = await m.run("systemctl is-active vifibnet || true");
        assert.equal(state.stdout.trim(), "inactive");
        assert.deepEqual(snapshot(m), legacyFiles, "the legacy node's files came back as they were");
      }
      if ([...machines.values()].filter((x) => nodeOf(x) !== null).length >= 2 && node) await allPairsPing(180_000);
      broken = false;
    });
  }
});
