import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  Health,
  type HealthCheckRequest,
  HealthCheckResponse_ServingStatus as ServingStatus,
  StateService,
} from "@fair/state-proto";

/**
 * The server's serving status, as reported by `grpc.health.v1.Health` on the
 * gRPC port and by `/readyz` on the metrics port. SERVING once the server
 * starts; NOT_SERVING from the moment shutdown begins.
 */
export class HealthStatus {
  private status = ServingStatus.NOT_SERVING;
  private readonly watchers = new Set<() => void>();

  /** The services health is reported for: the server as a whole ("") and Sync's service. */
  static readonly services: ReadonlySet<string> = new Set(["", StateService.typeName]);

  get current(): ServingStatus {
    return this.status;
  }

  get serving(): boolean {
    return this.status === ServingStatus.SERVING;
  }

  set(status: ServingStatus.SERVING | ServingStatus.NOT_SERVING): void {
    if (status === this.status) return;
    this.status = status;
    for (const wake of this.watchers) wake();
  }

  /** Registers `grpc.health.v1.Health` (Check and Watch) on a Connect router. */
  register(router: ConnectRouter): void {
    router.service(Health, {
      check: (request) => ({ status: this.statusOf(request) }),
      watch: (request, context) => this.watch(request, context),
    });
  }

  private statusOf(request: HealthCheckRequest): ServingStatus {
    if (!HealthStatus.services.has(request.service)) {
      throw new ConnectError(`unknown service "${request.service}"`, Code.NotFound);
    }
    return this.status;
  }

  /** The current status at once, then every change, until the caller goes away. */
  private async *watch(request: HealthCheckRequest, context: HandlerContext) {
    if (!HealthStatus.services.has(request.service)) {
      // The protocol says Watch answers an unknown service with SERVICE_UNKNOWN, not an error.
      yield { status: ServingStatus.SERVICE_UNKNOWN };
      return;
    }
    let sent: ServingStatus | undefined;
    for (;;) {
      // Report a change before checking for the end, so a watcher woken by
      // shutdown still hears NOT_SERVING.
      if (this.status !== sent) {
        sent = this.status;
        yield { status: sent };
      }
      if (context.signal.aborted) return;
      await this.changeOrAbort(context.signal);
    }
  }

  private changeOrAbort(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.watchers.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.watchers.add(done);
      signal.addEventListener("abort", done);
    });
  }
}
