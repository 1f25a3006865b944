// The LAN's UPnP Internet Gateway Device, found and driven for the policy of
// ./upnpigd.ts (its Igd interface): our own SSDP search, then
// @achingbrain/nat-port-mapper (UPnP IGD v2, as miniupnpd and most current
// routers speak it) for the description and the SOAP calls, each bounded in
// time. Covered by the UPnP namespace test against a real miniupnpd.

import { createSocket } from "node:dgram";
import { DESCRIPTION, DISCOVERY_TIMEOUT_MS, type Igd } from "./upnpigd";
import { type Logger, silentLogger } from "./utils/log";
import { withTimeout } from "./utils/timers";

/** Bound on each SOAP request to the gateway. */
const REQUEST_TIMEOUT_MS = 5000;

/** Our source address towards `host` (no packet is sent: connect() on UDP only picks the route). */
export function localAddressTowards(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.on("error", (e) => {
      s.close();
      reject(e);
    });
    s.connect(port, host, () => {
      const { address } = s.address();
      s.close();
      resolve(address);
    });
  });
}

// The parts of @achingbrain/nat-port-mapper used here (an ES module: loaded with import()).
type NatModule = typeof import("@achingbrain/nat-port-mapper", { with: { "resolution-mode": "import" } });
type NatGateway = import("@achingbrain/nat-port-mapper", { with: { "resolution-mode": "import" } }).Gateway;
/** The gateway's SOAP device: the library's unmap() deletes by *internal* port, so removal goes through it. */
interface SoapDevice {
  run(service: string, action: string, args: Array<[string, string | number]>, options?: { signal?: AbortSignal }): Promise<unknown>;
}
const WAN_IP_CONNECTION_2 = "urn:schemas-upnp-org:service:WANIPConnection:2";

const SSDP_ADDRESS = "239.255.255.250";
const SSDP_PORT = 1900;
const IGD_TYPES = ["urn:schemas-upnp-org:device:InternetGatewayDevice:2", "urn:schemas-upnp-org:device:InternetGatewayDevice:1"];

/**
 * SSDP M-SEARCH for an Internet Gateway Device on one IPv4 socket; resolves
 * to the first answer's description URL, or null after `timeoutMs`. Our own
 * search rather than the library's: that one binds port 1900 on every local
 * address, and an address still tentative (a fresh IPv6 one) throws out of
 * reach of any handler.
 */
export function ssdpSearch(timeoutMs: number): Promise<URL | null> {
  return new Promise((resolve) => {
    const s = createSocket({ type: "udp4" });
    const timers: NodeJS.Timeout[] = [];
    let done = false;
    const finish = (url: URL | null): void => {
      if (done) return;
      done = true;
      timers.forEach(clearTimeout);
      try {
        s.close();
      } catch {
        // already closed
      }
      resolve(url);
    };
    s.on("error", () => finish(null));
    s.on("message", (msg) => {
      const text = msg.toString("latin1");
      const location = /^location:[ \t]*(\S+)/im.exec(text)?.[1];
      const st = /^st:[ \t]*(\S+)/im.exec(text)?.[1];
      if (location === undefined || st === undefined || !IGD_TYPES.includes(st)) return;
      try {
        const url = new URL(location);
        if (url.protocol === "http:") finish(url);
      } catch {
        // not a URL: ignore
      }
    });
    const search = (): void => {
      for (const st of IGD_TYPES) {
        const m = `M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_ADDRESS}:${SSDP_PORT}\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ${st}\r\n\r\n`;
        s.send(m, SSDP_PORT, SSDP_ADDRESS, () => {
          // a send error (no route) only means no answer: the timeout ends it
        });
      }
    };
    timers.push(setTimeout(() => finish(null), timeoutMs));
    s.bind(0, () => {
      if (done) return;
      search();
      timers.push(setTimeout(() => !done && search(), Math.min(1000, timeoutMs / 2))); // UDP: once more
    });
  });
}

/**
 * Finds the LAN's IPv4 Internet Gateway Device (UPnP IGD v2); null when none
 * answers within `timeoutMs` (or anything fails).
 */
export async function discoverIgd(timeoutMs: number = DISCOVERY_TIMEOUT_MS, logger: Logger = silentLogger): Promise<Igd | null> {
  let gw: NatGateway;
  try {
    const location = await ssdpSearch(timeoutMs);
    if (location === null) return null;
    const nat: NatModule = await import("@achingbrain/nat-port-mapper");
    const client = nat.upnpNat({ autoRefresh: false, description: DESCRIPTION });
    gw = await withTimeout(client.getGateway(location, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }), REQUEST_TIMEOUT_MS + 1000, "UPnP description");
  } catch (e) {
    logger.log(1, `UPnP: no usable gateway: ${(e as Error).message}`);
    return null;
  }
  if (gw.family !== "IPv4") return null;
  const gateway = gw;
  // The library's unmap() deletes by *internal* port and, once the SSDP
  // lifetime it gave the description passes, it searches again with its own
  // SSDP: so removal goes through its SOAP device, and the description is
  // kept for good.
  const device = (gateway as unknown as { gateway?: SoapDevice & { service?: { expires?: number } } }).gateway;
  if (typeof device?.run !== "function" || typeof device.service?.expires !== "number") {
    logger.warn("UPnP: unexpected @achingbrain/nat-port-mapper internals: not using UPnP");
    return null;
  }
  device.service.expires = Number.MAX_SAFE_INTEGER;
  let internalHost: string;
  try {
    internalHost = await localAddressTowards(gateway.host, gateway.port);
  } catch (e) {
    logger.warn(`UPnP: no route to the gateway ${gateway.host}: ${(e as Error).message}`);
    return null;
  }
  logger.log(2, `UPnP: gateway ${gateway.host}:${gateway.port} (${gateway.id}), our LAN address ${internalHost}`);
  const opts = (): { signal: AbortSignal } => ({ signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  return {
    internalHost,
    externalIp: () => withTimeout(gateway.externalIp(opts()), REQUEST_TIMEOUT_MS + 1000, "GetExternalIPAddress"),
    addMapping: async (m) => {
      const r = await withTimeout(gateway.map(m.internalPort, m.internalHost, {
        ...opts(), externalPort: m.externalPort, protocol: m.protocol, description: m.description, ttl: m.leaseS * 1000, autoRefresh: false,
      }), REQUEST_TIMEOUT_MS * 2 + 1000, "AddAnyPortMapping");
      if (!Number.isInteger(r.externalPort) || r.externalPort < 1 || r.externalPort > 65535)
        throw new Error(`the gateway reserved no usable port (${String(r.externalPort)})`);
      return r.externalPort;
    },
    removeMapping: async (externalPort, protocol) => {
      await withTimeout(device.run(WAN_IP_CONNECTION_2, "DeletePortMapping", [
        ["NewRemoteHost", ""], ["NewExternalPort", externalPort], ["NewProtocol", protocol],
      ], opts()), REQUEST_TIMEOUT_MS + 1000, "DeletePortMapping");
    },
  };
}
