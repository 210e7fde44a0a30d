import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { NAMESPACE_HEADER, StateService } from "@fair/state-proto";
import type { AuthRefusal, AuthTokens } from "./auth-tokens.js";

/** Told of every refused stream, with why and the namespace asked for (never the token). */
export type OnAuthRefusal = (refusal: AuthRefusal, namespace: string) => void;

/**
 * The status refusing a `Sync` stream's `authorization` header, or
 * `undefined` when it may go on (or no tokens are configured). A missing or
 * unknown token is `UNAUTHENTICATED`, a token used outside its namespaces
 * `PERMISSION_DENIED`. The token itself never appears in a status, a log
 * line or a metric.
 */
export function refuseSyncToken(
  tokens: AuthTokens | undefined,
  authorization: string | null,
  namespace: string,
  onRefusal: OnAuthRefusal,
): ConnectError | undefined {
  if (tokens === undefined) return undefined;
  const decision = tokens.check(authorization, namespace);
  if (decision.ok) return undefined;
  onRefusal(decision.refusal, namespace);
  return decision.refusal === "namespace"
    ? new ConnectError(`this token may not use namespace "${namespace}"`, Code.PermissionDenied)
    : new ConnectError(
        decision.refusal === "missing"
          ? 'missing "authorization: Bearer <token>" header'
          : "unknown or revoked token",
        Code.Unauthenticated,
      );
}

/** Gates `Sync` on Connect's routes with {@link refuseSyncToken}; health stays open (probes carry no token). */
export function authInterceptor(
  tokens: () => AuthTokens | undefined,
  onRefusal: OnAuthRefusal,
): Interceptor {
  return (next) => async (request) => {
    if (request.service.typeName === StateService.typeName) {
      const refusal = refuseSyncToken(
        tokens(),
        request.header.get("authorization"),
        request.header.get(NAMESPACE_HEADER) ?? "",
        onRefusal,
      );
      if (refusal) throw refusal;
    }
    return next(request);
  };
}
