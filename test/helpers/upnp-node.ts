// Runs lib/upnpigd.ts as the daemon does, for test/upnp-netns.test.ts:
//   node upnp-node.js PORT/PROTO...
// prints one JSON line {"addresses": "<address list>"} (or {"addresses": null}
// without a gateway), then on SIGTERM removes the mappings, prints
// {"stopped": true} and exits 0.

import { discoverIgd } from "../../lib/upnp-gateway";
import { DISCOVERY_TIMEOUT_MS, PortForwarder } from "../../lib/upnpigd";
import { formatAddressList } from "../../lib/utils/address";
import { createLogger } from "../../lib/utils/log";
import { systemTimers } from "../../lib/utils/timers";

async function main(): Promise<void> {
  const pp = process.argv.slice(2).map((a) => {
    const [port, proto] = a.split("/");
    return { port: Number(port), proto: proto === "tcp-server" ? ("tcp-server" as const) : ("udp" as const) };
  });
  const logger = createLogger(5);
  const igd = await discoverIgd(DISCOVERY_TIMEOUT_MS, logger);
  const f = igd && (await PortForwarder.start(igd, pp, { timers: systemTimers, logger }));
  process.stdout.write(`${JSON.stringify({ addresses: f ? formatAddressList(f.addresses()) : null })}\n`);
  const keepAlive = setInterval(() => {}, 1 << 30);
  process.once("SIGTERM", () => {
    void (f?.stop() ?? Promise.resolve()).then(() => {
      process.stdout.write(`${JSON.stringify({ stopped: true })}\n`);
      clearInterval(keepAlive);
      process.exit(0);
    });
  });
}

void main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
