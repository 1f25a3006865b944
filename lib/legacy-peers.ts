// What a node's OpenVPN accepts so that legacy peers can tunnel with it in
// both directions, and what a stricter setting costs. Pure.
//
// Legacy peers are the 2012 nodes (OpenVPN 2.2/2.3 on OpenSSL 0.9.8/1.0.1:
// TLS 1.0 only, the BF-CBC data cipher announced in their options string,
// DHE key exchange) and any node holding a SHA-1 certificate from the legacy
// registry (SPEC section 7). None of the allowances weakens a tunnel between
// two nodes that speak better (docs/decisions.md): TLS settles on the highest
// version both ends speak, and the server picks the first data cipher of its
// list that the client announces inside that TLS channel.

/** BF-CBC last; "?" makes it optional, so OpenVPN still starts when the user loads other providers. */
export const LEGACY_DATA_CIPHERS = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305:?BF-CBC";

/** The OpenVPN options that let legacy peers in (before the user's own, which OpenVPN lets win). */
export function legacyAllowances(): string[] {
  return [
    // SHA-1 certificates and TLS 1.0: OpenSSL 3 accepts either only at security level 0.
    "--tls-cert-profile", "insecure",
    "--tls-version-min", "1.0",
    "--data-ciphers", LEGACY_DATA_CIPHERS,
    // BF-CBC is in OpenSSL 3's legacy provider.
    "--providers", "legacy", "default",
  ];
}

/** The settings that decide which peers get in, as OpenVPN ends up with them. */
interface Settings {
  profile: string;
  tlsMin: string[];
  tlsMax: string | null;
  dataCiphers: string;
  providers: string[];
}

/** OpenVPN 2.6's own defaults: the node runs with these under --no-legacy. */
const OPENVPN_DEFAULTS: Settings = {
  profile: "legacy", tlsMin: ["1.2"], tlsMax: null, dataCiphers: "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305", providers: ["default"],
};

type Option = "--tls-cert-profile" | "--tls-version-min" | "--tls-version-max" | "--data-ciphers" | "--providers";
const OPTIONS: readonly Option[] = ["--tls-cert-profile", "--tls-version-min", "--tls-version-max", "--data-ciphers", "--providers"];

/** The last occurrence of each option of OPTIONS in an OpenVPN argv, with its value words. */
function lastOccurrences(argv: readonly string[]): Map<Option, string[]> {
  const out = new Map<Option, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!(OPTIONS as readonly string[]).includes(word)) continue;
    let j = i + 1;
    while (j < argv.length && !argv[j]!.startsWith("--")) j++;
    out.delete(word as Option); // keep the order of last occurrences
    out.set(word as Option, argv.slice(i + 1, j));
  }
  return out;
}

function apply(s: Settings, option: Option, values: readonly string[]): Settings {
  switch (option) {
    case "--tls-cert-profile": return { ...s, profile: values[0] ?? s.profile };
    case "--tls-version-min": return { ...s, tlsMin: [...values] };
    case "--tls-version-max": return { ...s, tlsMax: values[0] ?? null };
    case "--data-ciphers": return { ...s, dataCiphers: values[0] ?? s.dataCiphers };
    case "--providers": return { ...s, providers: [...values] };
  }
}

function settingsOf(argv: readonly string[], base: Settings): Settings {
  let s = base;
  for (const [option, values] of lastOccurrences(argv)) s = apply(s, option, values);
  return s;
}

const tlsNumber = (v: string | undefined): number => (v !== undefined && /^1\.[0-3]$/.test(v) ? Number(v) : NaN);

type Loss = "sha1" | "tls1.0" | "bf-cbc" | "rsa" | "tls1.3";

/** Who cannot tunnel with a node running these settings, or what its own tunnels lose. */
function losses(s: Settings): Set<Loss> {
  const out = new Set<Loss>();
  const profile = s.profile.toLowerCase();
  if (profile !== "insecure") out.add("sha1").add("tls1.0");
  if (profile === "suiteb") out.add("rsa");
  const min = tlsNumber(s.tlsMin[0]);
  // An unknown version with "or-highest" means the highest OpenSSL speaks.
  if (min > 1.0 || (Number.isNaN(min) && s.tlsMin.includes("or-highest"))) out.add("tls1.0");
  const max = tlsNumber(s.tlsMax ?? undefined);
  if (max < 1.3) out.add("tls1.3");
  const ciphers = s.dataCiphers.split(":").map((c) => c.replace(/^\?/, "").toUpperCase());
  if (!ciphers.includes("BF-CBC") || !s.providers.includes("legacy")) out.add("bf-cbc");
  return out;
}

function describe(lost: ReadonlySet<Loss>): string {
  if (lost.has("rsa")) return "refuses every vifibnet node: their certificates are RSA, the suiteb profile takes ECDSA only";
  const peers: string[] = [];
  if (lost.has("sha1")) peers.push("peers whose certificates are signed with SHA-1 (the legacy registry's)");
  const old = [lost.has("tls1.0") ? "TLS 1.0 only" : "", lost.has("bf-cbc") ? "the BF-CBC cipher" : ""].filter((x) => x !== "");
  if (old.length > 0) peers.push(`nodes on OpenVPN 2.2/2.3 (${old.join(", ")})`);
  const parts: string[] = [];
  if (peers.length > 0) parts.push(`no tunnel with ${peers.join(" or with ")}`);
  if (lost.has("tls1.3")) parts.push("tunnels between our own nodes lose TLS 1.3 and its downgrade protection");
  return parts.join("; ");
}

export interface StrictnessCost {
  /** "--no-legacy" (the operator's choice), or one of the user's OpenVPN arguments, e.g. "--tls-cert-profile preferred". */
  cause: string;
  /** Who cannot tunnel with the node because of it, or what its tunnels lose. */
  cost: string;
}

/**
 * What the node's settings cost, for the daemon to say at start:
 * `--no-legacy` itself (`legacy` false), then each of the user's OpenVPN
 * arguments (the words after `--`) that makes it cost more. OpenVPN options
 * hidden in a `--config` file are not seen.
 */
export function strictnessCosts(openvpnArgs: readonly string[], legacy: boolean): StrictnessCost[] {
  const out: StrictnessCost[] = [];
  const base = legacy ? settingsOf(legacyAllowances(), OPENVPN_DEFAULTS) : OPENVPN_DEFAULTS;
  const baseLosses = losses(base);
  if (!legacy) out.push({ cause: "--no-legacy", cost: describe(baseLosses) });
  for (const [option, values] of lastOccurrences(openvpnArgs)) {
    const lost = new Set([...losses(apply(base, option, values))].filter((l) => !baseLosses.has(l)));
    if (lost.size > 0) out.push({ cause: [option, ...values].join(" "), cost: describe(lost) });
  }
  return out;
}
