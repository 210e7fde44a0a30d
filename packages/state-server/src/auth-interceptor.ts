import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { NAMESPACE_HEADER, StateService } from "@fair/state-proto";
import type { AuthRefusal, AuthTokens } from "./auth-tokens.js";

/**
 * Gates `Sync` on a bearer token; health stays open (probes carry no
 * token). A missing or unknown token is `UNAUTHENTICATED`, a token used
 * outside its namespaces `PERMISSION_DENIED`. The token itself never
 * appears in a status, a log line or a metric.
 */
export function authInterceptor(
  tokens: () => AuthTokens | undefined,
  onRefusal: (refusal: AuthRefusal, namespace: string) => void,
): Interceptor {
  return (next) => async (request) => {
    const current = tokens();
    if (current !== undefined && request.service.typeName === StateService.typeName) {
      const namespace = request.header.get(NAMESPACE_HEADER) ?? "";
      const decision = current.check(request.header.get("authorization"), namespace);
      if (!decision.ok) {
        onRefusal(decision.refusal, namespace);
        throw decision.refusal === "namespace"
          ? new ConnectError(
              `this token may not use namespace "${namespace}"`,
              Code.PermissionDenied,
            )
          : new ConnectError(
              decision.refusal === "missing"
                ? 'missing "authorization: Bearer <token>" header'
                : "unknown or revoked token",
              Code.Unauthenticated,
            );
      }
    }
    return next(request);
  };
}
