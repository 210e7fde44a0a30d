/** A listen address split for `server.listen(port, host)`. */
export interface ListenAddress {
  /** Undefined means every interface (IPv6 and IPv4 where the system allows). */
  readonly host: string | undefined;
  readonly port: number;
}

/**
 * Parses `host:port`, `:port` or `[ipv6]:port`, the forms the config schema
 * accepts (it has already checked them).
 */
export function parseListenAddress(address: string): ListenAddress {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return { host: host === "" ? undefined : host, port: Number(address.slice(colon + 1)) };
}

/** `host:port` for a bound socket, with IPv6 hosts in brackets, for logs and clients. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
