// The daemon's command line (lib/daemon/args.ts) against the corpus in
// fixtures/daemon-args/, and against the real Python argparse running the
// legacy vifibnet.py parser (fixtures/daemon-args/python_parse.py) on the
// same argv: differential testing, one Python run for everything.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { DaemonConfig, parseDaemonArgs, parseDaemonArgsOrThrow } from "../lib/daemon/args";
import { ArgsError, convertArgLine, pyRepr } from "../lib/daemon/python";

const ROOT = join(__dirname, "..", "..");
const FIXTURES = join(ROOT, "fixtures", "daemon-args");
const PYTHON = "/usr/bin/python3";
const hasPython = existsSync(PYTHON);
const ARGS_JS = join(ROOT, "dist", "lib", "daemon", "args.js");

// --------------------------------------------------------------------------
// The corpus and Python's view of it

type ConfigJson = Omit<DaemonConfig, "address"> & { address: DaemonConfig["address"] | null };
type Expect = { config: ConfigJson } | { status: number; error?: string };
interface PythonExpect {
  differs: string;
  status?: number | null;
  error?: string;
  exception?: string;
  namespace?: Record<string, unknown>;
}
interface Case {
  name: string;
  description: string;
  argv: string[];
  cwd?: string;
  expect: Expect;
  python?: PythonExpect;
}
interface PyNamespace {
  server: string;
  server_port: number;
  log: string;
  state: string;
  verbose: number;
  iface_list: string[];
  peers_db_refresh: number;
  hello: number;
  wireless: boolean;
  pp: Array<[string, string]>;
  tunnel_refresh: number;
  dh: string;
  ca: string;
  cert: string;
  connection_count: number;
  refresh_rate: number | string;
  address: Array<[string, string, string]> | null;
  openvpn_args: string[];
}
interface PyResult {
  name: string;
  status?: number | null;
  stdout?: string;
  stderr?: string;
  namespace?: PyNamespace;
  exception?: string;
}

const manifest = JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8")) as { cases: Case[] };
const corpus = manifest.cases;

const REQUIRED = ["--server", "2001:db8:42::1", "--server-port", "8000", "--dh", "dh.pem", "--ca", "ca.pem", "--cert", "cert.crt"];

/** Odd spellings for Python's int() and float(), and odd characters for its repr(). */
const INT_INPUTS = [
  "0", "-0", "+5", "05", " 5", "5 ", "\t5\n", "\x855\u3000", "5_0", "5__0", "_5", "5_", "0x5", "0o5", "0b1", "1e1", "1.0",
  "", " ", "\u0665", "\uff15", "\u{1d7d3}", "\u00a05", "\u200b5", "1".repeat(20), "-1", "a'b", "\"", "'\"", "\\", "\x01",
  "a\nb", "\x7f", "é", "\u{1f600}", "\u2028", "\ud800",
];
const FLOAT_INPUTS = [
  ".5", "5.", "0.25", "1e-3", "1E-3", "1_0e-1", "0.0_1", "1__0", "inf", "-inf", "nan", "NaN", "Infinity", "+0.5", "-0",
  "0x1", "1e", "e1", ".", "", " .5 ", "\u0660.\u0665", "1.5e-1_0", "1e-400", "1e400", "0.5f",
];
/** Generated cases: the value alone changes, so the type conversion is what differs if anything. */
const generated = [
  ...INT_INPUTS.map((s, i) => ({ name: `int-${i}`, value: s, argv: [...REQUIRED, "--connection-count", s] })),
  ...FLOAT_INPUTS.map((s, i) => ({ name: `float-${i}`, value: s, argv: [...REQUIRED, "--refresh-rate", s] })),
];

function runPython(): Map<string, PyResult> {
  const request = {
    prog: "vifibnet",
    base: FIXTURES,
    cases: [...corpus.map((c) => ({ name: c.name, argv: c.argv, cwd: c.cwd ?? "." })), ...generated.map((g) => ({ name: g.name, argv: g.argv }))],
  };
  // UTF-8 mode: the files decode the same whatever the locale.
  const r = spawnSync(PYTHON, [join(FIXTURES, "python_parse.py")], { input: JSON.stringify(request), env: { ...process.env, PYTHONUTF8: "1" }, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return new Map((JSON.parse(r.stdout) as PyResult[]).map((p) => [p.name, p]));
}
const python = hasPython ? runPython() : new Map<string, PyResult>();
const skipPython = hasPython ? false : "no /usr/bin/python3";

class Exited extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}
interface Outcome {
  config?: DaemonConfig;
  status?: number;
  stdout: string;
  stderr: string;
}

/** Runs parseDaemonArgs as the CLI does, with its output and exit captured. */
function ours(argv: string[], cwd = FIXTURES, env: Record<string, string> = {}): Outcome {
  let stdout = "";
  let stderr = "";
  const io = {
    cwd,
    stdout: (t: string) => void (stdout += t),
    stderr: (t: string) => void (stderr += t),
    exit: (status: number): never => {
      throw new Exited(status);
    },
  };
  try {
    return { config: parseDaemonArgs(argv, env, io), stdout, stderr };
  } catch (e) {
    if (e instanceof Exited) return { status: e.status, stdout, stderr };
    throw e;
  }
}

function toJson(c: DaemonConfig): ConfigJson {
  return { ...c, address: c.address ?? null };
}

function fromPython(ns: PyNamespace): ConfigJson {
  return {
    server: ns.server,
    serverPort: ns.server_port,
    log: ns.log,
    state: ns.state,
    verbose: ns.verbose,
    interfaces: ns.iface_list,
    peersDbRefresh: ns.peers_db_refresh,
    hello: ns.hello,
    wireless: ns.wireless,
    pp: ns.pp.map(([port, proto]) => ({ port: Number(port), proto: proto as "udp" | "tcp-server" })),
    tunnelRefresh: ns.tunnel_refresh,
    dh: ns.dh,
    ca: ns.ca,
    cert: ns.cert,
    connectionCount: ns.connection_count,
    refreshRate: Number(ns.refresh_rate),
    address: ns.address && ns.address.map(([ip, port, proto]) => ({ ip, port: Number(port), proto: proto as "udp" | "tcp-client" | "tcp-server" })),
    openvpnArgs: ns.openvpn_args,
    noLegacy: false, // not a legacy flag
  };
}

/** "prog: error: MESSAGE" on the last line, after argparse's usage. */
function errorOf(stderr: string): string {
  assert.match(stderr, /^usage: vifibnet /);
  const last = stderr.trimEnd().split("\n").pop()!;
  assert.ok(last.startsWith("vifibnet: error: "), last);
  return last.slice("vifibnet: error: ".length);
}

describe("corpus (fixtures/daemon-args/manifest.json)", () => {
  test("has the cases the brief asks for", () => {
    assert.ok(corpus.length >= 12);
    const names = new Set(corpus.map((c) => c.name));
    for (const n of ["minimal", "all-flags-file", "repeated", "nested", "comments-blank-lines", "leading-dashes", "openvpn-args", "file-then-overrides",
      "missing-required", "bad-int", "unknown-option", "short-option-in-file", "missing-file"])
      assert.ok(names.has(n), n);
  });

  for (const c of corpus) {
    const cwd = join(FIXTURES, c.cwd ?? ".");
    test(`ours: ${c.name} (${c.description})`, () => {
      const got = ours(c.argv, cwd);
      if ("config" in c.expect) {
        assert.equal(got.status, undefined, got.stderr);
        assert.deepEqual(toJson(got.config!), c.expect.config);
        assert.equal(got.stdout + got.stderr, "");
      } else if (c.expect.status === 0) {
        assert.equal(got.status, 0);
        assert.match(got.stdout, /^usage: vifibnet /);
        assert.equal(got.stderr, "");
      } else {
        assert.equal(got.status, c.expect.status);
        assert.equal(got.stdout, "");
        assert.equal(errorOf(got.stderr), c.expect.error);
      }
    });

    test(`python argparse: ${c.name}`, { skip: skipPython }, () => {
      const p = python.get(c.name)!;
      const want = c.python;
      if (want === undefined) {
        // Python's argparse, with the legacy parser, gives exactly what we give.
        assert.equal(p.exception, undefined);
        if ("config" in c.expect) {
          assert.equal(p.status, null, p.stderr);
          assert.deepEqual(fromPython(p.namespace!), c.expect.config);
        } else if (c.expect.status === 0) {
          assert.equal(p.status, 0);
          assert.match(p.stdout!, /^usage: vifibnet /);
        } else {
          assert.equal(p.status, c.expect.status);
          assert.equal(errorOf(p.stderr!), c.expect.error);
        }
        return;
      }
      // A known, documented difference: check that Python does what the manifest says.
      assert.ok(want.differs);
      if (want.exception !== undefined) {
        assert.ok(p.exception?.startsWith(`${want.exception}:`), p.exception ?? JSON.stringify(p));
      } else if (want.status === null) {
        assert.equal(p.status, null, p.stderr);
        for (const [k, v] of Object.entries(want.namespace ?? {})) assert.deepEqual((p.namespace as unknown as Record<string, unknown>)[k], v, k);
      } else {
        assert.equal(p.status, want.status);
        assert.equal(errorOf(p.stderr!), want.error);
      }
    });
  }
});

describe("int() and float() as Python's", () => {
  for (const g of generated) {
    test(`${g.name}: ${JSON.stringify(g.value)}`, { skip: skipPython }, () => {
      const p = python.get(g.name)!;
      const got = ours(g.argv);
      const opt = g.name.startsWith("int") ? "--connection-count" : "--refresh-rate";
      if (p.status !== null) {
        // Python refused the value: the same message, repr() included.
        assert.equal(got.status, 2);
        assert.equal(errorOf(got.stderr), errorOf(p.stderr!));
        return;
      }
      const value = Number(g.name.startsWith("int") ? p.namespace!.connection_count : p.namespace!.refresh_rate);
      const inRange = g.name.startsWith("int") ? value >= 1 && value <= 2 ** 31 - 1 : value >= 0 && value <= 1;
      if (inRange) {
        assert.equal(got.status, undefined, got.stderr);
        assert.equal(g.name.startsWith("int") ? got.config!.connectionCount : got.config!.refreshRate, value);
      } else {
        // Python took it; our range check refuses it, and says so (not "invalid int value").
        assert.equal(got.status, 2);
        assert.match(errorOf(got.stderr), new RegExp(`^argument ${opt}: \\S+ is (out of range|not a ratio)`));
      }
    });
  }
});

// --------------------------------------------------------------------------
// Targeted tests

function ok(...extra: string[]): DaemonConfig {
  return parseDaemonArgsOrThrow([...REQUIRED, ...extra], {}, FIXTURES);
}
function fails(extra: string[], message: RegExp): void {
  assert.throws(
    () => parseDaemonArgsOrThrow([...REQUIRED, ...extra], {}, FIXTURES),
    (e: unknown) => e instanceof ArgsError && e.status === 2 && message.test(e.reason) && e.stderr.endsWith(`vifibnet: error: ${e.reason}\n`),
  );
}

describe("checks beyond the legacy", () => {
  test("--pp: udp and tcp-server, ports 1-65535, no pair twice", () => {
    assert.deepEqual(ok("--pp", "1", "udp", "--pp", "65535", "tcp-server", "--pp", "1", "tcp-server").pp, [
      { port: 1, proto: "udp" }, { port: 65535, proto: "tcp-server" }, { port: 1, proto: "tcp-server" },
    ]);
    for (const proto of ["tcp", "tcp-client", "UDP", "udp6", ""]) fails(["--pp", "1194", proto], /^argument --pp: invalid choice: .* \(choose from 'udp', 'tcp-server'\)$/);
    for (const port of ["0", "65536", "1194x", "-1", "", " 1194", "0x4aa"]) fails(["--pp", port, "udp"], /^argument --pp: .* is not a port number \(1-65535\)$/);
    fails(["--pp", "1194", "udp", "--pp", "01194", "udp"], /^argument --pp: 1194 udp given twice$/);
    assert.deepEqual(ok().pp, [{ port: 1194, proto: "udp" }]);
  });

  test("--ip: IPv4 or IPv6, port, udp/tcp-client/tcp-server, at most 16", () => {
    assert.deepEqual(ok("--ip", "2001:db8::7", "443", "tcp-client", "--ip", "::ffff:198.51.100.7", "1194", "tcp-server").address, [
      { ip: "2001:db8::7", port: 443, proto: "tcp-client" }, { ip: "::ffff:198.51.100.7", port: 1194, proto: "tcp-server" },
    ]);
    assert.equal(ok().address, undefined);
    for (const ip of ["fe80::1%eth0", "198.51.100.256", "1.2.3.4;5", "", "198.51.100.7,1", "host.example", "198.51.100.7 "]) fails(["--ip", ip, "1194", "udp"], /^argument --ip: .* is not an IPv4 or IPv6 address$/);
    fails(["--ip", "198.51.100.7", "0", "udp"], /^argument --ip: '0' is not a port number/);
    fails(["--ip", "198.51.100.7", "1194", "tcp"], /^argument --ip: invalid choice: 'tcp' \(choose from 'udp', 'tcp-client', 'tcp-server'\)$/);
    const ips = (n: number): string[] => Array.from({ length: n }, (_, i) => ["--ip", `198.51.100.${i + 1}`, "1194", "udp"]).flat();
    assert.equal(ok(...ips(16)).address!.length, 16);
    fails(ips(17), /^argument --ip: at most 16 addresses$/);
  });

  test("numbers: ranges of hello, refresh rate, verbose, counts and intervals", () => {
    assert.equal(ok("--hello", "1").hello, 1);
    assert.equal(ok("--hello", "655").hello, 655);
    fails(["--hello", "-3"], /^argument --hello: -3 is out of range \(1 to 655 seconds\)$/);
    assert.equal(ok("--refresh-rate", "0").refreshRate, 0);
    assert.equal(ok("--refresh-rate", "1").refreshRate, 1);
    fails(["--refresh-rate", "-0.1"], /^argument --refresh-rate: -0.1 is not a ratio between 0 and 1$/);
    fails(["--refresh-rate", "inf"], /^argument --refresh-rate: inf is not a ratio/);
    // Not clamped: OpenVPN's --verb goes to 11, babeld -d higher still.
    assert.equal(ok("-v", "0").verbose, 0);
    assert.equal(ok("-v", "11").verbose, 11);
    fails(["-v", "2147483648"], /^argument -v\/--verbose: 2147483648 is not a verbosity level/);
    assert.equal(ok("--connection-count", "1").connectionCount, 1);
    assert.equal(ok("--connection-count", "100").connectionCount, 100);
    fails(["--connection-count", "-1"], /^argument --connection-count: -1 is out of range/);
    assert.equal(ok("--tunnel-refresh", "1").tunnelRefresh, 1);
    assert.equal(ok("--peers-db-refresh", "31536000").peersDbRefresh, 31536000);
    fails(["--peers-db-refresh", "0"], /^argument --peers-db-refresh: 0 is not a positive number of seconds$/);
    fails(["--server-port", "65536"], /^argument --server-port: 65536 is not a port number \(1-65535\)$/);
  });

  test("--server: an address or a host name; brackets dropped", () => {
    assert.equal(ok("--server", "registry.example.com").server, "registry.example.com");
    assert.equal(ok("--server", "198.51.100.1").server, "198.51.100.1");
    assert.equal(ok("--server", "[::1]").server, "::1");
    assert.equal(ok("--server", "fe80::1%eth0").server, "fe80::1%eth0");
    for (const s of ["", "a b", "[", "x/y", "user@host", "2001:db8::zz", "[registry.example.com]"]) fails(["--server", s], /^argument --server: .* is not an IPv4 or IPv6 address or a host name$/);
  });

  test("-i: Linux interface names, not options for babeld", () => {
    assert.deepEqual(ok("-i", "eth0", "-i", "eth0", "-i", "a".repeat(15)).interfaces, ["eth0", "eth0", "a".repeat(15)]);
    for (const i of ["a".repeat(16), "", ".", "..", "a/b", "a b", "--interface=-d"]) {
      const argv = i.startsWith("--") ? [i] : ["-i", i];
      fails(argv, /^argument -i\/--interface: .* is not a network interface name$/);
    }
  });

  test("paths must not be empty", () => {
    fails(["--dh", ""], /^argument --dh: empty path$/);
    fails(["--cert="], /^argument --cert: empty path$/);
    fails(["-l", ""], /^argument -l\/--log: empty path$/);
    fails(["-s", ""], /^argument -s\/--state: empty path$/);
  });

  test("checks apply to the final value, after overrides", () => {
    assert.equal(ok("--hello", "0", "--hello", "9").hello, 9);
    assert.equal(ok("--refresh-rate", "7", "@minimal.conf", "--refresh-rate", "0.5").refreshRate, 0.5);
  });
});

describe("@file reading", () => {
  const tmp = mkdtempSync(join(tmpdir(), "vifibnet-daemon-args-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test("convertArgLine: the legacy's convert_arg_line_to_args", () => {
    assert.deepEqual(convertArgLine("verbose 3"), ["--verbose", "3"]);
    assert.deepEqual(convertArgLine("---verbose 3"), ["--verbose", "3"]);
    assert.deepEqual(convertArgLine("  verbose 3"), ["--", "verbose", "3"]); // as the legacy: lstrip('--') strips dashes only
    assert.deepEqual(convertArgLine("pp 1194 udp # the default"), ["--pp", "1194", "udp"]);
    assert.deepEqual(convertArgLine("# comment"), []);
    assert.deepEqual(convertArgLine("   "), []);
    assert.deepEqual(convertArgLine("@other.conf  "), ["@other.conf"]);
    assert.deepEqual(convertArgLine("@with space.conf"), ["@with space.conf"]);
    assert.deepEqual(convertArgLine("--"), ["--"]);
    assert.deepEqual(convertArgLine("hello\x1f\xa05"), ["--hello", "5"]);
    assert.deepEqual(convertArgLine("hello\ufeff5"), ["--hello\ufeff5"]); // not a blank for Python
  });

  test("a missing, unreadable or directory @file: Python's OSError text", () => {
    const e1 = ours(["@nope.conf"]);
    assert.equal(e1.status, 2);
    assert.equal(errorOf(e1.stderr), "[Errno 2] No such file or directory: 'nope.conf'");
    const e2 = ours(["@it's.conf"]);
    assert.equal(errorOf(e2.stderr), `[Errno 2] No such file or directory: "it's.conf"`);
    if (process.getuid?.() !== 0) {
      const locked = join(tmp, "locked.conf");
      writeFileSync(locked, "verbose 1\n", { mode: 0o000 });
      assert.equal(errorOf(ours([`@${locked}`]).stderr), `[Errno 13] Permission denied: '${locked}'`);
    }
    assert.equal(errorOf(ours([`@${tmp}`]).stderr), `[Errno 21] Is a directory: '${tmp}'`);
  });

  test("a NUL byte in an @file name: a usage error (Python: a ValueError traceback)", () => {
    const conf = join(tmp, "nul.conf");
    writeFileSync(conf, "verbose 1\n@a\0b\n");
    assert.equal(errorOf(ours([`@${conf}`]).stderr), "'a\\x00b': embedded null byte");
  });

  test("relative paths are from the current directory (io.cwd), absolute ones as they are", () => {
    const conf = join(tmp, "abs.conf");
    writeFileSync(conf, `@${join(FIXTURES, "minimal.conf")}\nverbose 4\n`);
    assert.equal(ours([`@${conf}`], "/").config!.verbose, 4);
    assert.equal(ours(["@abs.conf"], tmp).config!.verbose, 4);
    assert.equal(ours(["@abs.conf"], FIXTURES).status, 2);
  });

  test("short options in a file are refused, with the line and the long name", () => {
    for (const [line, long] of [["v 3", "verbose"], ["-l /tmp", "log"], ["w", "wireless"], ["s=/tmp", "state"], ["i eth0", "interface"]]) {
      const conf = join(tmp, "short.conf");
      writeFileSync(conf, `@${join(FIXTURES, "minimal.conf")}\n\n${line}\n`);
      const got = ours([`@${conf}`]);
      assert.equal(got.status, 2);
      assert.equal(errorOf(got.stderr), `${pyRepr(conf)}, line 3: only long options are allowed in a file: '${long}', not '${line.replace(/^-/, "")[0]}'`);
    }
    // On the command line they are fine, and so are long options' prefixes in files.
    assert.equal(ok("-v", "3").verbose, 3);
    writeFileSync(join(tmp, "prefix.conf"), "verb 3\nwire\n");
    const c = ours([...REQUIRED, "@prefix.conf"], tmp).config!;
    assert.equal(c.verbose, 3);
    assert.equal(c.wireless, true);
  });

  test("a file including itself ends with a usage error", () => {
    const got = ours(["@self.conf"]);
    assert.equal(got.status, 2);
    assert.match(errorOf(got.stderr), /^'self.conf': @file nesting deeper than 32/);
  });

  test("@ words after '--' are still read as files, as argparse does", () => {
    writeFileSync(join(tmp, "ovpn.conf"), "key cert.key\n");
    assert.deepEqual(ours([...REQUIRED, "--", "@ovpn.conf"], tmp).config!.openvpnArgs, ["--key", "cert.key"]);
  });
});

describe("--no-legacy (ours, not the legacy's)", () => {
  test("off by default, on with the flag, from a file too; the words after -- are OpenVPN's", () => {
    assert.equal(ours(REQUIRED).config!.noLegacy, false);
    assert.equal(ours([...REQUIRED, "--no-legacy"]).config!.noLegacy, true);
    const tmp = mkdtempSync(join(tmpdir(), "vfb-args-"));
    try {
      writeFileSync(join(tmp, "strict.conf"), "no-legacy\n");
      assert.equal(ours([...REQUIRED, "@strict.conf"], tmp).config!.noLegacy, true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    const after = ours([...REQUIRED, "--", "--no-legacy"]).config!;
    assert.equal(after.noLegacy, false);
    assert.deepEqual(after.openvpnArgs, ["--no-legacy"]);
    assert.equal(errorOf(ours([...REQUIRED, "--no-legacy=1"]).stderr), "argument --no-legacy: ignored explicit argument '1'");
  });
});

describe("errors and help as the CLI prints them", () => {
  test("usage then 'prog: error:' on stderr, exit 2, nothing on stdout", () => {
    const got = ours(["--server", "x"]);
    assert.equal(got.status, 2);
    assert.equal(got.stdout, "");
    assert.match(got.stderr, /^usage: vifibnet \[-h\] --server ADDRESS --server-port PORT/);
    assert.match(got.stderr, /\nvifibnet: error: the following arguments are required: --server-port, --dh, --ca, --cert\n$/);
  });

  test("ArgsError carries status, output and the bare message", () => {
    assert.throws(() => parseDaemonArgsOrThrow(["--bogus"], {}, FIXTURES), (e: unknown) => {
      assert.ok(e instanceof ArgsError);
      assert.equal(e.status, 2);
      assert.equal(e.reason, "the following arguments are required: --server, --server-port, --dh, --ca, --cert");
      assert.equal(e.stdout, "");
      return true;
    });
  });

  test("--help: the help on stdout, exit 0; it documents the choices", () => {
    const got = ours(["-h"]);
    assert.equal(got.status, 0);
    assert.equal(got.stderr, "");
    for (const s of ["--pp PORT PROTO", "udp or tcp-server", "--ip ADDRESS PORT PROTO", "tcp-client", "1 to 655", "0 to 5", "@FILE", "(default: 3600)", "(default: 0.05)"])
      assert.ok(got.stdout.replace(/\s+/g, " ").includes(s), s);
  });

  test("VIFIBNET_PROG names the program (compat launchers show vifibnet.py)", () => {
    const got = ours([], FIXTURES, { VIFIBNET_PROG: "vifibnet.py" });
    assert.match(got.stderr, /^usage: vifibnet\.py /);
    assert.match(got.stderr, /\nvifibnet\.py: error: /);
  });

  test("the real process: exit 2 with usage on a bad command line, 0 with --help", () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, ["-e", `require(${JSON.stringify(ARGS_JS)}).parseDaemonArgs(process.argv.slice(1)); console.log("parsed")`, "--", ...args], {
        encoding: "utf8",
        cwd: FIXTURES,
        env: { ...process.env, VIFIBNET_PROG: "vifibnet.py" },
      });
    const bad = run(["@minimal.conf", "--hello", "0"]);
    assert.equal(bad.status, 2);
    assert.equal(bad.stdout, "");
    assert.match(bad.stderr, /^usage: vifibnet\.py [^]*\nvifibnet\.py: error: argument --hello: 0 is out of range \(1 to 655 seconds\)\n$/);
    const help = run(["--help"]);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^usage: vifibnet\.py /);
    assert.doesNotMatch(help.stdout, /parsed/);
    const good = run(["@minimal.conf"]);
    assert.equal(good.status, 0);
    assert.equal(good.stdout, "parsed\n");
  });
});

describe("pyRepr", () => {
  test("quotes as Python's repr()", () => {
    assert.equal(pyRepr("abc"), "'abc'");
    assert.equal(pyRepr("it's"), `"it's"`);
    assert.equal(pyRepr(`'"`), `'\\'"'`);
    assert.equal(pyRepr("a\\b\n\t\x00\x7f\u200b\u{1f600}é"), "'a\\\\b\\n\\t\\x00\\x7f\\u200b\u{1f600}é'");
  });
});
