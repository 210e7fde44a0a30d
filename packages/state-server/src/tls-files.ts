import { readFile } from "node:fs/promises";
import type { SecureContextOptions } from "node:tls";

/** Where the server's TLS material lives. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** With a client CA, clients must present a certificate it signed (mTLS). */
  readonly clientCaFile: string | undefined;
}

/** The options `http2.createSecureServer` and `setSecureContext` take. */
export interface TlsOptions extends SecureContextOptions {
  readonly requestCert: boolean;
  readonly rejectUnauthorized: boolean;
}

/**
 * Reads the certificate, key and optional client CA. Read again on reload
 * (SIGHUP or a changed file) and handed to `setSecureContext`, so new
 * connections get the new certificate while open streams carry on.
 *
 * @throws Error naming the file that could not be read.
 */
export async function readTlsFiles(files: TlsFiles): Promise<TlsOptions> {
  const read = async (path: string, what: string) => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
  const [cert, key, ca] = await Promise.all([
    read(files.certFile, "certificate"),
    read(files.keyFile, "key"),
    files.clientCaFile === undefined ? undefined : read(files.clientCaFile, "client CA"),
  ]);
  const mtls = ca !== undefined;
  return { cert, key, ...(mtls ? { ca } : {}), requestCert: mtls, rejectUnauthorized: mtls };
}
