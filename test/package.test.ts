// The Debian package (`npm run package` in a clean clone, harness/package.ts):
// what dpkg-deb says is in it, the programs and man pages of an extracted
// copy, and, installed with dpkg on a test machine (harness/machine.ts:
// its own /etc, /usr, /var over the host's), the units checked by
// systemd-analyze, maintainer scripts that start nothing the admin did not
// start, and a purge that leaves only what the admin made.

import assert from "node:assert/strict";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PROGRAMS } from "../packaging/build";
import { Machine } from "../harness/machine";
import { Lab, OVERLAY_PACKAGES, installPackages, waitFor } from "../harness/netns";
import { builtPackage } from "../harness/package";
import { SmtpSink, startSmtpSink } from "../harness/smtp-sink";

const isRoot = process.getuid?.() === 0;
const UNITS = ["vifibnet.service", "vifibnet-registry.service"];

const dpkgDeb = (...args: string[]): string => {
  const r = spawnSync("dpkg-deb", args, { encoding: "utf8", maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `dpkg-deb ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

/** Every option --help lists ("-s", "--state", ...), read from the options' lines, not by the man page generator. */
function helpFlags(help: string): string[] {
  const flags = new Set<string>();
  for (const line of help.split("\n")) {
    const inv = /^ {2}(-\S.*?)(?: {2,}|$)/.exec(line)?.[1];
    if (inv) for (const m of inv.matchAll(/(?:^|, )(-{1,2}[A-Za-z][\w-]*)/g)) flags.add(m[1]!);
  }
  return [...flags];
}

/** A man page as `man` shows it, as plain text. */
function rendered(page: string): string {
  const r = spawnSync("man", ["-l", page], { encoding: "utf8", env: { ...process.env, MANWIDTH: "200", MAN_KEEP_FORMATTING: "" } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.replace(/.\x08/g, "").replace(/[\u2010\u2011\u2212]/g, "-");
}

describe("the Debian package", { skip: isRoot ? false : "needs root: npm run package installs its Debian tools", timeout: 900_000 }, () => {
  let deb = "";
  const tmp = mkdtempSync(join(tmpdir(), "vfb-package-"));
  const root = join(tmp, "root");
  after(() => rmSync(tmp, { recursive: true, force: true }));

  before(() => {
    installPackages(["dpkg-dev", "go-md2man", "man-db", "python3"]);
    deb = builtPackage().deb;
    dpkgDeb("-x", deb, root);
  }, { timeout: 900_000 }); // installs packages and builds the .deb

  test("npm run package in a clean clone builds it: the control fields", () => {
    const field = (f: string): string => dpkgDeb("--field", deb, f).trim();
    assert.equal(field("Package"), "vifibnet");
    assert.equal(field("Version"), JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8")).version);
    assert.equal(field("Architecture"), spawnSync("dpkg", ["--print-architecture"], { encoding: "utf8" }).stdout.trim(), "native module inside");
    const depends = field("Depends").split(/,\s*/);
    for (const d of ["openvpn", "babeld", "iproute2"]) assert.ok(depends.includes(d), `Depends: ${d}`);
    const major = Number(process.versions.node.split(".")[0]);
    assert.ok(major >= 20);
    assert.ok(depends.includes(`nodejs (>= ${major})`) && depends.includes(`nodejs (<< ${major + 1})`), `Depends on this Node major (its ABI): ${depends.join(", ")}`);
    assert.ok(depends.some((d) => d.startsWith("libc6 (>= ")), "dpkg-shlibdeps' libraries");
    assert.match(dpkgDeb("--info", deb), /^ *\d+ bytes, +\d+ lines +\* +postinst/m);
  });

  test("its files: the program in /usr/lib/vifibnet, four /usr/bin links, hooks, legacy names, units, man pages, two conffiles", () => {
    const listing = dpkgDeb("--contents", deb);
    const entries = new Map<string, string>();
    for (const line of listing.trim().split("\n")) {
      const m = /^(\S+) root\/root +\d+ \S+ \S+ \.(\/\S*?)\/?(?: -> (\S+))?$/.exec(line);
      assert.ok(m, `root-owned entry: ${line}`);
      entries.set(m[2]!, m[1]! + (m[3] ? ` -> ${m[3]}` : ""));
    }
    for (const p of PROGRAMS) {
      assert.equal(entries.get(`/usr/bin/${p.name}`), `lrwxrwxrwx -> ../lib/vifibnet/bin/${p.name}`);
      assert.equal(entries.get(`/usr/lib/vifibnet/bin/${p.name}`), "-rwxr-xr-x");
      assert.equal(entries.get(`/usr/share/man/man${p.section}/${p.name}.${p.section}.gz`), "-rw-r--r--");
    }
    for (const f of ["bin/ovpn-server", "bin/ovpn-client", "compat/vifibnet.py", "compat/setup.py", "compat/registry.py"])
      assert.equal(entries.get(`/usr/lib/vifibnet/${f}`), "-rwxr-xr-x", f);
    for (const u of UNITS) assert.equal(entries.get(`/usr/lib/systemd/system/${u}`), "-rw-r--r--", u);
    for (const f of ["copyright", "deploy.md", "README.md"]) assert.ok(entries.has(`/usr/share/doc/vifibnet/${f}`), f);
    assert.ok(entries.has("/usr/lib/vifibnet/node_modules/better-sqlite3/build/Release/better_sqlite3.node"));
    const paths = [...entries.keys()];
    for (const dev of ["typescript", "@types/node", "xmlrpc", "smtp-server"]) assert.ok(!paths.some((p) => p.startsWith(`/usr/lib/vifibnet/node_modules/${dev}/`)), `no dev module ${dev}`);
    const ours = paths.filter((p) => p.startsWith("/usr/lib/vifibnet/dist/"));
    assert.ok(ours.some((p) => p.endsWith("/dist/lib/daemon/main.js")));
    assert.ok(!ours.some((p) => !p.startsWith("/usr/lib/vifibnet/dist/lib") || p.endsWith(".map")), "only the compiled lib/: no tests, benchmarks, scripts or source maps");
    assert.ok(!paths.some((p) => p.includes("better-sqlite3/deps/") || p.includes("better-sqlite3/src/")), "not the native module's sources");
    const conffiles = spawnSync("sh", ["-c", `dpkg-deb --ctrl-tarfile '${deb}' | tar -xOf - ./conffiles`], { encoding: "utf8" }).stdout;
    assert.equal(conffiles, "/etc/logrotate.d/vifibnet\n/etc/vifibnet/registry.conf\n");
  });

  test("the extracted programs run: --help of the four and of the legacy names", () => {
    for (const p of PROGRAMS) {
      const r = spawnSync(join(root, "usr", "bin", p.name), ["--help"], { encoding: "utf8" });
      assert.equal(r.status, 0, `${p.name}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: ${p.name} `));
    }
    for (const legacy of ["vifibnet.py", "setup.py", "registry.py"]) {
      const r = spawnSync("python3", [join(root, "usr", "lib", "vifibnet", "compat", legacy), "--help"], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^usage: ${legacy.replace(".", "\\.")} `));
    }
  });

  test("each man page has every option its program's --help lists, and its sections", () => {
    for (const p of PROGRAMS) {
      const help = spawnSync(join(root, "usr", "bin", p.name), ["--help"], { encoding: "utf8" }).stdout;
      const flags = helpFlags(help);
      assert.ok(flags.length >= 5 && flags.includes("--help"), `${p.name}: flags read from --help: ${flags.join(" ")}`);
      const text = rendered(join(root, "usr", "share", "man", `man${p.section}`, `${p.name}.${p.section}.gz`));
      assert.match(text, new RegExp(`^${p.name.toUpperCase()}\\(${p.section}\\)`), "the title line");
      for (const s of ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SEE ALSO"]) assert.match(text, new RegExp(`^${s}$`, "m"), `${p.name}(${p.section}): ${s}`);
      const options = text.slice(text.indexOf("\nOPTIONS\n"));
      for (const f of flags) assert.match(options, new RegExp(`(?<![\\w-])${f}(?![\\w-])`), `${p.name}(${p.section}) OPTIONS lists ${f}`);
      for (const c of p.commands ?? []) {
        const commandHelp = spawnSync(join(root, "usr", "bin", p.name), [c, "--help"], { encoding: "utf8" }).stdout;
        const section = text.slice(text.indexOf("\nCOMMANDS\n"), text.indexOf("\nOPTIONS\n"));
        const entry = section.slice(section.search(new RegExp(`^ *${c}$`, "m")));
        assert.ok(entry.length < section.length, `${p.name}(${p.section}) COMMANDS has ${c}`);
        for (const f of helpFlags(commandHelp).filter((x) => x !== "-h" && x !== "--help"))
          assert.match(entry, new RegExp(`(?<![\\w-])${f}(?![\\w-])`), `${p.name}(${p.section}) COMMANDS ${c} lists ${f}`);
      }
    }
  });

  describe("the extracted programs, as a network's registry and a node", () => {
    let sink: SmtpSink;
    let registry: ChildProcess | undefined;
    const lab = new Lab();
    before(async () => (sink = await startSmtpSink()));
    after(async () => {
      registry?.kill();
      lab.destroy();
      await sink.close();
    });

    test("vifibnet-ca, vifibnet-registry from an @file, vifibnet-setup (vifibnet.conf), vifibnet in a namespace", async () => {
      installPackages(OVERLAY_PACKAGES);
      const bin = (name: string): string => join(root, "usr", "bin", name);
      const dir = join(tmp, "net");
      assert.equal(spawnSync(bin("vifibnet-ca"), ["--prefix", "2001:db8:42::/48", "--dir", join(dir, "ca")], { encoding: "utf8" }).status, 0);
      const conf = join(dir, "registry.conf");
      writeFileSync(conf, `0\n--db ${join(dir, "registry.db")}\n--ca ${join(dir, "ca", "ca.crt")} --key ${join(dir, "ca", "ca.key")}\n--mailhost 127.0.0.1:${sink.port}\n--workers 1\n`);
      registry = spawn(bin("vifibnet-registry"), [`@${conf}`], { stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      registry.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
      assert.ok(await waitFor(() => /listening on 0\.0\.0\.0:\d+/.test(err), 15_000, 100), err);
      const port = /listening on 0\.0\.0\.0:(\d+)/.exec(err)![1]!;

      const node = join(dir, "node");
      const setup = spawn(bin("vifibnet-setup"), ["--server", "127.0.0.1", "--port", port, "-d", node, "--email", "pkg@example.com", "--no-boot"], { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      setup.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
      const mail = await sink.next(15_000);
      setup.stdin!.end(/^Your token : ([a-z]{8})\r?$/m.exec(mail.raw)![1] + "\n");
      const [code] = await once(setup, "exit");
      assert.equal(code, 0, out);
      assert.match(out, new RegExp(`^Start the node with: ${bin("vifibnet").replace(/[.]/g, "\\.")} @${join(node, "vifibnet.conf")}$`, "m"), "the packaged daemon, by its /usr/bin name");

      // The daemon as the unit runs it (--log, then the @file), with the packaged hooks, in a namespace.
      const ns = lab.add();
      const log = join(dir, "log");
      const daemon = lab.spawn(ns, [bin("vifibnet"), "--log", log, `@${join(node, "vifibnet.conf")}`], { stdio: ["ignore", "ignore", "pipe"] });
      let derr = "";
      daemon.stderr!.setEncoding("utf8").on("data", (c: string) => (derr += c));
      const up = await waitFor(() => /inet6 2001:db8:42:[0-9a-f:]*\/64/.test(lab.exec(ns, ["ip", "-6", "addr", "show", "dev", "vifibnet"]).stdout), 20_000, 200);
      assert.ok(up, `the OpenVPN server's up hook (/usr/lib/vifibnet/bin/ovpn-server) set the node address: ${derr}`);
      daemon.kill("SIGTERM");
      const [dcode] = await once(daemon, "exit");
      assert.equal(dcode, 0, derr);
      assert.ok(existsSync(join(log, "vifibnet.babeld.log")), "logs in --log");
    });
  });

  describe("installed with dpkg on a machine", () => {
    const lab = new Lab();
    let m: Machine;
    before(async () => {
      installPackages([...OVERLAY_PACKAGES, "systemd", "logrotate"]);
      m = await Machine.create(lab, "pkg", join(tmp, "machine"));
      writeFileSync(join(m.home, "vifibnet.deb"), readFileSync(deb));
    });
    after(() => lab.destroy());

    const sh = async (script: string): Promise<string> => {
      const r = await m.run(script);
      assert.equal(r.code, 0, `${script}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    const daemons = (): string[] => lab.processes(m.ns).map((p) => p.comm).filter((c) => c !== "sleep");

    test("dpkg -i installs it and starts nothing", async () => {
      await sh("dpkg -i vifibnet.deb");
      assert.deepEqual(daemons(), []);
      assert.equal((await sh("systemctl is-active vifibnet vifibnet-registry || true")).trim(), "inactive\ninactive");
      assert.equal(lstatSync(m.written("/etc/vifibnet/registry.conf")).mode & 0o777, 0o644);
    });

    test("logrotate moves the node's logs away; with the node stopped, its postrotate starts nothing", async () => {
      await sh("mkdir -p /var/log/vifibnet && echo log >/var/log/vifibnet/vifibnet.babeld.log");
      await sh("logrotate --force --state /run/vifibnet-logrotate.state /etc/logrotate.d/vifibnet");
      // Rotated, not yet compressed (delaycompress); moved, not copied (the daemon reopens on SIGHUP).
      assert.equal((await sh("ls /var/log/vifibnet")).trim(), "vifibnet.babeld.log.1");
      assert.deepEqual(daemons(), [], "nothing started by the postrotate script");
      await sh("rm -r /var/log/vifibnet /run/vifibnet-logrotate.state");
    });

    test("systemd-analyze verify accepts both units (and rejects a broken one)", async () => {
      const r = await m.run("systemd-analyze verify vifibnet.service vifibnet-registry.service");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr.trim(), "", "no warning");
      const units = readFileSync(m.written("/usr/lib/systemd/system/vifibnet.service"), "utf8");
      assert.match(units, /^ExecStart=\/usr\/bin\/vifibnet --log \/var\/log\/vifibnet @\/etc\/vifibnet\/vifibnet\.conf$/m);
      assert.match(units, /^Restart=on-failure$/m);
      assert.match(units, /^After=network-online\.target$/m);
      assert.match(units, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
      assert.match(readFileSync(m.written("/usr/lib/systemd/system/vifibnet-registry.service"), "utf8"), /^ExecStart=\/usr\/bin\/vifibnet-registry @\/etc\/vifibnet\/registry\.conf$/m);
      const broken = await m.run("sed 's|^ExecStart=/usr/bin/vifibnet |ExecStart=/usr/bin/vifibnet-missing |' /usr/lib/systemd/system/vifibnet.service >broken.service && systemd-analyze verify ./broken.service");
      assert.notEqual(broken.code, 0, "a unit whose program is missing fails the check");
      assert.match(broken.stderr, /vifibnet-missing/);
    });

    test("an upgrade restarts the running registry and starts no other; removal stops it", async () => {
      await sh("vifibnet-ca --prefix 2001:db8:42::/48 --dir /etc/vifibnet/registry >/dev/null && systemctl enable --now vifibnet-registry");
      const pid = (): string => readFileSync(join(m.dir, "systemd", "vifibnet-registry.service.pid"), "utf8");
      assert.ok(await waitFor(() => lab.exec(m.ns, ["bash", "-c", "echo >/dev/tcp/127.0.0.1/8000"]).status === 0, 30_000, 200), "the registry listens on registry.conf's port");
      const before = pid();
      await sh("dpkg -i vifibnet.deb"); // the same version again: the upgrade path of the maintainer scripts
      assert.notEqual(pid(), before, "restarted on the new code");
      assert.equal((await sh("systemctl is-active vifibnet-registry")).trim(), "active");
      assert.equal((await sh("systemctl is-active vifibnet || true")).trim(), "inactive", "the node, never started, stays so");
      assert.ok(await waitFor(() => lab.exec(m.ns, ["bash", "-c", "echo >/dev/tcp/127.0.0.1/8000"]).status === 0, 30_000, 200));
      await sh("dpkg -r vifibnet");
      assert.equal((await sh("systemctl is-active vifibnet-registry || true")).trim(), "inactive");
      assert.ok(await waitFor(() => daemons().length === 0, 15_000, 200), `stopped: ${daemons().join(" ")}`);
      assert.ok(existsSync(m.written("/etc/vifibnet/registry.conf")), "remove keeps the conffile");
    });

    test("purge removes the package's and the programs' own files, keeps the admin's", async () => {
      await sh("dpkg -i vifibnet.deb && systemctl enable vifibnet");
      assert.ok(lstatSync(m.written("/etc/systemd/system/multi-user.target.wants/vifibnet.service")).isSymbolicLink());
      // A node's directory as vifibnet-setup leaves it, and what a running daemon adds.
      await sh([
        "cd /etc/vifibnet && for f in ca.pem cert.crt dh2048.pem peers.db vifibnet.conf; do echo admin >$f; done && install -m 600 /dev/null cert.key",
        "echo state >vifibnet.babeld.state && echo 1 >vifibnet.babeld.pid",
        "python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"/etc/vifibnet/vifibnet.babeld.sock\")'",
        "mkdir -p /var/log/vifibnet && echo log >/var/log/vifibnet/vifibnet.babeld.log",
      ].join("\n"));
      await sh("dpkg --purge vifibnet");
      const left = (await sh("find /etc/vifibnet /var/lib/vifibnet /var/log/vifibnet /usr/lib/vifibnet /etc/systemd/system -path '*vifibnet*' 2>/dev/null | sort || true")).trim().split("\n");
      assert.deepEqual(left, [
        "/etc/vifibnet", "/etc/vifibnet/ca.pem", "/etc/vifibnet/cert.crt", "/etc/vifibnet/cert.key", "/etc/vifibnet/dh2048.pem",
        "/etc/vifibnet/peers.db", "/etc/vifibnet/registry", "/etc/vifibnet/registry/ca.crt", "/etc/vifibnet/registry/ca.key",
        "/etc/vifibnet/vifibnet.conf", "/var/lib/vifibnet", "/var/lib/vifibnet/registry.db",
      ]);
      assert.equal((await sh("ls /usr/bin /usr/share/man/man1 /usr/share/man/man8 /usr/lib/systemd/system | grep -c vifibnet || true")).trim(), "0");
      await sh("test ! -e /etc/logrotate.d/vifibnet"); // the logrotate conffile goes with the purge
    });
  });
});
