// lib/upnpigd.ts and lib/upnp-gateway.ts against Debian's miniupnpd, in
// network namespaces: a NAT router (LAN 192.0.2.0/24 inside, "internet"
// outside, nftables masquerade, miniupnpd on the LAN side) and a node behind
// it running test/helpers/upnp-node.ts. The node must map 1194/udp and
// 443/tcp-server from port 1000, advertise the router's outside address, and
// remove both mappings on SIGTERM. The outside network is 192.0.3.0/24, not
// 198.51.100.0/24: miniupnpd refuses port forwarding on an external address
// in its reserved list, which has every documentation range. Nothing leaves
// the namespaces. Needs root; installs nftables, miniupnpd-nftables, miniupnpc.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Lab, NAT_PACKAGES, installPackages, natGateway, waitFor } from "../harness/netns";

const isRoot = process.getuid?.() === 0;

test("maps --pp ports on a miniupnpd gateway, advertises its external IP, removes them on stop", { timeout: 120_000 }, async (t) => {
  if (!isRoot) {
    t.skip("needs root: network namespaces, nftables and miniupnpd");
    return;
  }
  installPackages(NAT_PACKAGES);

  const lab = new Lab();
  const tmp = mkdtempSync(join(tmpdir(), "vfb-upnp-"));
  t.after(() => {
    lab.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });
  const router = lab.add();
  const node = lab.add();
  const inet = lab.add();
  lab.link(router, "192.0.2.1/24", node, "192.0.2.10/24", "eth0");
  lab.link(router, "192.0.3.1/24", inet, "192.0.3.2/24", "eth1");
  const ok = (ns: string, cmd: string[]): string => {
    const r = lab.exec(ns, cmd);
    assert.equal(r.status, 0, `${cmd.join(" ")} in ${ns}: ${r.stderr}`);
    return r.stdout;
  };
  ok(node, ["ip", "route", "add", "default", "via", "192.0.2.1"]);
  const upnpd = natGateway(lab, router, tmp, "ef");
  let upnpdLog = "";
  upnpd.stderr?.setEncoding("utf8").on("data", (c: string) => (upnpdLog += c));
  assert.ok(await waitFor(() => upnpdLog.includes("HTTP listening"), 10_000, 100), `miniupnpd did not start:\n${upnpdLog}`);

  const dnat = (): string[] => ok(router, ["nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd"]).split("\n").filter((l) => l.includes("dnat"));

  const helper = lab.spawn(node, [process.execPath, join(__dirname, "helpers", "upnp-node.js"), "1194/udp", "443/tcp-server"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  helper.stdout?.setEncoding("utf8").on("data", (c: string) => (out += c));
  helper.stderr?.setEncoding("utf8").on("data", (c: string) => (err += c));
  const exited = new Promise<number | null>((r) => helper.on("exit", (code) => r(code)));
  try {
    assert.ok(await waitFor(() => out.includes("addresses"), 20_000, 100), `no result from the node:\n${err}\n--- miniupnpd:\n${upnpdLog}`);
    const result = JSON.parse(out.split("\n")[0]!) as { addresses: string | null };
    assert.equal(result.addresses, "192.0.3.1,1000,udp;192.0.3.1,1000,tcp-client", `${err}\n--- miniupnpd:\n${upnpdLog}`);

    // On the gateway: the NAT rules, and the mappings as a UPnP client lists them.
    const rules = dnat();
    assert.ok(rules.some((l) => / 0x11 .*dport 1000 dnat ip to 192\.0\.2\.10:1194/.test(l)), rules.join("\n"));
    assert.ok(rules.some((l) => / 0x6 .*dport 1000 dnat ip to 192\.0\.2\.10:443/.test(l)), rules.join("\n"));
    const list = lab.exec(node, ["upnpc", "-l"]).stdout;
    assert.match(list, /ExternalIPAddress = 192\.0\.3\.1/);
    assert.match(list, /UDP\s+1000->192\.0\.2\.10:1194/);
    assert.match(list, /TCP\s+1000->192\.0\.2\.10:443/);

    // Stop: both mappings removed before the exit.
    helper.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), 15_000)))]);
    clearTimeout(timer);
    assert.equal(code, 0, `the node did not stop cleanly:\n${err}`);
    assert.match(out, /"stopped":true/);
    assert.deepEqual(dnat(), []);
    assert.doesNotMatch(lab.exec(node, ["upnpc", "-l"]).stdout, /1000->/);
  } finally {
    if (helper.exitCode === null && helper.signalCode === null) helper.kill("SIGKILL");
    // `ip netns exec` execs: this is miniupnpd itself; the lab's teardown kills whatever is left.
    if (upnpd.exitCode === null && upnpd.signalCode === null) upnpd.kill("SIGTERM");
  }
});
