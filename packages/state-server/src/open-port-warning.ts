import { isIP } from "node:net";
import type { StateServerConfig } from "./config-schema.js";
import type { ServerLogger } from "./logger.js";

/**
 * Whether `host`, an address a socket is bound to, is reachable only from
 * this machine: IPv4 127.0.0.0/8, IPv6 `::1`, or 127.0.0.0/8 mapped into
 * IPv6 (`::ffff:127.0.0.1`). The wildcards `0.0.0.0` and `::` are every
 * interface; a host name is not an address a socket is bound to and is
 * taken as reachable.
 */
export function isLoopback(host: string): boolean {
  const address = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (isIP(address) === 4) return address.startsWith("127.");
  if (isIP(address) !== 6) return false;
  if (address === "::1" || address === "0:0:0:0:0:0:0:1") return true;
  const mapped = /^(?:::|0:0:0:0:0:)ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  return mapped?.[1]?.startsWith("127.") ?? false;
}

/**
 * The start-up warning for a gRPC port anyone who can reach it may write
 * to, or `undefined` when there is none to give: the port is bound beyond
 * loopback (`boundHost`, as bound) and nothing tells clients apart — no
 * `authTokensFile`, and no client certificates required (`tlsClientCaFile`,
 * mTLS).
 */
export function openPortWarning(
  config: Pick<StateServerConfig, "authTokensFile" | "tlsClientCaFile">,
  boundHost: string,
): string | undefined {
  if (config.authTokensFile !== undefined || config.tlsClientCaFile !== undefined) return undefined;
  if (isLoopback(boundHost)) return undefined;
  return "the gRPC port is reachable beyond this machine and no authTokensFile is set: anyone who can reach it can write every bucket of every namespace. Set authTokensFile to require bearer tokens, and tlsCertFile and tlsKeyFile for TLS (see DEPLOYMENT.md, Security), or bind grpcListenAddress to 127.0.0.1";
}

/** Logs {@link openPortWarning}'s warning, once, if there is one. */
export function warnOfOpenPort(
  config: Pick<StateServerConfig, "authTokensFile" | "tlsClientCaFile">,
  boundHost: string,
  grpcAddress: string,
  logger: ServerLogger,
): void {
  const warning = openPortWarning(config, boundHost);
  if (warning !== undefined) logger.warn({ grpcAddress }, warning);
}
