import { createHash, timingSafeEqual } from "node:crypto";

/** Why a request was refused: no token, a token we do not know, or a namespace the token may not write. */
export type AuthRefusal = "missing" | "unknown" | "namespace";

/**
 * What a client is told when its token is refused for `namespace`, the same
 * for `Sync` (UNAUTHENTICATED / PERMISSION_DENIED) and the dashboard (401 /
 * 403): `denied` when a known token may not use the namespace, else the
 * client is not authenticated. Never the token itself.
 */
export function describeRefusal(
  refusal: AuthRefusal,
  namespace: string,
): { readonly denied: boolean; readonly message: string } {
  if (refusal === "namespace") {
    return { denied: true, message: `this token may not use namespace "${namespace}"` };
  }
  return {
    denied: false,
    message:
      refusal === "missing"
        ? 'missing "authorization: Bearer <token>" header'
        : "unknown or revoked token",
  };
}

/** The answer to {@link AuthTokens.check}. */
export type AuthDecision =
  | { readonly ok: true }
  | { readonly ok: false; readonly refusal: AuthRefusal };

interface Grant {
  readonly digest: Buffer;
  /** The namespaces the token may use; undefined: every namespace. */
  readonly namespaces: ReadonlySet<string> | undefined;
}

/** A token file line that could not be read: where, and why. */
export class TokenFileError extends Error {
  override readonly name = "TokenFileError";
}

/**
 * The bearer tokens `Sync` accepts, from a file with one token per line,
 * optionally followed by the namespaces it may use:
 *
 * ```
 * # comments and blank lines are ignored
 * s3cr3t-token-for-everything
 * checkout-only-token checkout,checkout-canary
 * ```
 *
 * Several tokens are accepted at once, so a new token can be rolled out
 * before the old one is removed. Tokens are compared in constant time: each
 * presented token's SHA-256 is compared with every known token's, all of
 * them, with `timingSafeEqual`, so neither the comparison nor the number of
 * comparisons depends on how much of a token matched.
 */
export class AuthTokens {
  readonly #grants: readonly Grant[];

  private constructor(grants: readonly Grant[]) {
    this.#grants = grants;
  }

  /** How many tokens are accepted. */
  get size(): number {
    return this.#grants.length;
  }

  /**
   * Reads a token file's text. `source` names it in errors.
   *
   * @throws TokenFileError naming the line (never the token) for a malformed line or an empty file.
   */
  static parse(text: string, source: string): AuthTokens {
    const grants: Grant[] = [];
    text.split("\n").forEach((raw, index) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const [token = "", namespaces, ...rest] = line.split(/\s+/);
      if (rest.length > 0) {
        throw new TokenFileError(
          `${source}:${index + 1}: expected "token" or "token namespace,namespace"`,
        );
      }
      if (token.length < 16) {
        throw new TokenFileError(
          `${source}:${index + 1}: token shorter than 16 characters; use a long random token`,
        );
      }
      grants.push({
        digest: digest(token),
        namespaces:
          namespaces === undefined
            ? undefined
            : new Set(namespaces.split(",").filter((n) => n !== "")),
      });
    });
    if (grants.length === 0) {
      throw new TokenFileError(
        `${source}: no tokens; every client would be refused (remove authTokensFile to run without auth)`,
      );
    }
    return new AuthTokens(grants);
  }

  /** Checks an `authorization` header value for a stream in `namespace`. */
  check(authorization: string | null, namespace: string): AuthDecision {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (!match?.[1]) return { ok: false, refusal: "missing" };
    const presented = digest(match[1]);
    let found: Grant | undefined;
    for (const grant of this.#grants) {
      // Every grant is compared, whichever matches: no early exit.
      if (timingSafeEqual(grant.digest, presented)) found = grant;
    }
    if (found === undefined) return { ok: false, refusal: "unknown" };
    if (found.namespaces !== undefined && !found.namespaces.has(namespace)) {
      return { ok: false, refusal: "namespace" };
    }
    return { ok: true };
  }
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}
