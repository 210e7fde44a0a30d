// No Docker engine or cluster runs here, so the image and the manifests are
// checked by what can be checked offline: the Dockerfile's build steps are
// replayed and the result run; every manifest is validated against the
// Kubernetes schemas and against the server's own config and ports.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "@fair/state-server";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { ConfigMap, Service } from "kubernetes-models/v1";
import { afterAll, describe, expect, test } from "vitest";
import { parseAllDocuments } from "yaml";

const repo = fileURLToPath(new URL("../../..", import.meta.url));
const dockerfile = readFileSync(join(repo, "apps/state-server/Dockerfile"), "utf8");

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): { op: string; args: string }[] {
  return text
    .replace(/\\\n\s*/g, "")
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.trimStart().startsWith("#"))
    .map((line) => {
      const [op = "", ...rest] = line.trim().split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(" ") };
    });
}

const steps = instructions(dockerfile);
const finalFrom = steps.findLastIndex((s) => s.op === "FROM");
const finalStage = steps.slice(finalFrom);

describe("Dockerfile", () => {
  test("is multi-stage, runs as a non-root user, exposes 50051 and 9090, and has a health check", () => {
    expect(steps.filter((s) => s.op === "FROM")).toHaveLength(2);
    expect(finalStage.find((s) => s.op === "USER")?.args).toBe("node");
    expect(
      finalStage
        .find((s) => s.op === "EXPOSE")
        ?.args.split(" ")
        .sort(),
    ).toEqual(["50051", "9090"]);
    expect(finalStage.find((s) => s.op === "HEALTHCHECK")?.args).toContain("/readyz");
  });

  test("uses the pnpm the project pins, and the Node major of .nvmrc", () => {
    const pinned = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).packageManager;
    expect(dockerfile).toContain(`npm install -g ${pinned}`);
    const node = readFileSync(join(repo, ".nvmrc"), "utf8").trim();
    for (const from of steps.filter((s) => s.op === "FROM"))
      expect(from.args).toMatch(new RegExp(`^node:${node}-`));
  });

  describe("its build steps, replayed here, produce an app that runs", () => {
    const out = mkdtempSync(join(tmpdir(), "fair-image-"));
    afterAll(() => rmSync(out, { recursive: true, force: true }));

    test("build, deploy, then the ENTRYPOINT answers --help", { timeout: 180_000 }, () => {
      const buildRuns = steps
        .slice(0, finalFrom)
        .filter((s) => s.op === "RUN")
        // The global pnpm and the install are this checkout's own already.
        .filter((s) => !s.args.startsWith("npm install -g") && !s.args.startsWith("pnpm install"));
      expect(buildRuns.length).toBeGreaterThan(0);
      for (const run of buildRuns) {
        execFileSync("sh", ["-c", run.args.replaceAll(" /app", ` ${out}`)], {
          cwd: repo,
          stdio: "pipe",
          timeout: 150_000, // execFileSync blocks the test's own timeout
          env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" },
        });
      }
      const entrypoint = JSON.parse(
        finalStage.find((s) => s.op === "ENTRYPOINT")?.args ?? "[]",
      ) as string[];
      expect(entrypoint).toEqual(["node", "dist/main.js"]);
      expect(existsSync(join(out, "dist/main.js"))).toBe(true);
      expect(readdirSync(out)).not.toContain("src"); // only what the package publishes
      // The runtime image carries no test or build tooling: no runtime package
      // depends on vitest (the store's contract suite is a package of its own).
      const installed = readdirSync(join(out, "node_modules/.pnpm"));
      expect(installed.some((name) => name.startsWith("@fair+state-store@"))).toBe(true);
      const tooling = [
        "vitest@",
        "@vitest+",
        "vite@",
        "esbuild@",
        "@esbuild+",
        "tsx@",
        "rolldown@",
      ];
      expect(installed.filter((name) => tooling.some((tool) => name.startsWith(tool)))).toEqual([]);
      const help = execFileSync(process.execPath, [...entrypoint.slice(1), "--help"], {
        cwd: out,
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(help).toContain("--grpc-listen-address");
    });
  });
});

describe("k8s manifests", () => {
  const load = (file: string) =>
    parseAllDocuments(readFileSync(join(repo, "k8s", file), "utf8")).map(
      (d) => d.toJS() as Record<string, unknown>,
    );
  const [configMapDoc] = load("configmap.yaml");
  const [deploymentDoc] = load("deployment.yaml");
  const [serviceDoc] = load("service.yaml");

  test("validate against the Kubernetes schemas", () => {
    expect(() => new ConfigMap(configMapDoc).validate()).not.toThrow();
    expect(() => new Deployment(deploymentDoc).validate()).not.toThrow();
    expect(() => new Service(serviceDoc).validate()).not.toThrow();
  });

  test("the ConfigMap's config file is one the server accepts", () => {
    const configMap = new ConfigMap(configMapDoc);
    const text = configMap.data?.["config.yaml"] ?? "";
    const { config, deprecations } = loadConfig({
      argv: ["--config", "/etc/fair-state/config.yaml"],
      env: {},
      readFile: () => text,
    });
    expect(config.grpcListenAddress).toBe(":50051");
    expect(config.metricsListenAddress).toBe(":9090");
    // The manifests use the current names only.
    expect(deprecations).toEqual([]);
  });

  test("the Deployment mounts that file where FAIR_STATE_CONFIG points, and probes the gRPC port with health checks", () => {
    const deployment = new Deployment(deploymentDoc);
    const pod = deployment.spec?.template.spec;
    const container = pod?.containers[0];
    const configEnv = container?.env?.find((e) => e.name === "FAIR_STATE_CONFIG")?.value ?? "";
    const mount = container?.volumeMounts?.find((m) => configEnv.startsWith(`${m.mountPath}/`));
    expect(mount).toBeDefined();
    const volume = pod?.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.configMap?.name).toBe(new ConfigMap(configMapDoc).metadata?.name);
    expect(configEnv.slice((mount?.mountPath.length ?? 0) + 1)).toBe("config.yaml");

    expect(container?.ports?.map((p) => [p.name, p.containerPort])).toEqual([
      ["grpc", 50051],
      ["metrics", 9090],
    ]);
    expect(container?.livenessProbe?.grpc?.port).toBe(50051);
    expect(container?.readinessProbe?.grpc).toEqual({
      port: 50051,
      service: "fair.state.v1.StateService",
    });
    expect(container?.resources?.requests).toBeDefined();
    expect(container?.resources?.limits).toBeDefined();
    expect(deployment.spec?.replicas).toBe(1);
    // The kubelet must wait longer than the server's own grace period.
    const grace = loadConfig({ argv: [], env: {} }).config.shutdownGracePeriodMs / 1000;
    expect(pod?.terminationGracePeriodSeconds).toBeGreaterThan(grace);
  });

  test("the Service and ServiceMonitor select the Deployment's pods and name its ports", () => {
    const deployment = new Deployment(deploymentDoc);
    const service = new Service(serviceDoc);
    const labels = deployment.spec?.template.metadata?.labels ?? {};
    for (const [key, value] of Object.entries(service.spec?.selector ?? {}))
      expect(labels[key]).toBe(value);
    const portNames = deployment.spec?.template.spec?.containers[0]?.ports?.map((p) => p.name);
    for (const port of service.spec?.ports ?? []) expect(portNames).toContain(port.targetPort);

    const [monitor] = load("servicemonitor.yaml") as [
      {
        apiVersion: string;
        spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
      },
    ];
    expect(monitor.apiVersion).toBe("monitoring.coreos.com/v1");
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) {
      expect(service.metadata?.labels?.[key]).toBe(value);
    }
    expect(service.spec?.ports?.map((p) => p.name)).toContain(monitor.spec.endpoints[0]?.port);
  });

  test("kustomization lists every core manifest", () => {
    const [kustomization] = load("kustomization.yaml") as [{ resources: string[] }];
    expect(kustomization.resources.sort()).toEqual([
      "configmap.yaml",
      "deployment.yaml",
      "service.yaml",
    ]);
  });
});

describe("k8s/redis: several replicas on Redis", () => {
  const load = (file: string) =>
    parseAllDocuments(readFileSync(join(repo, "k8s", file), "utf8")).map(
      (d) => d.toJS() as Record<string, unknown>,
    );
  const [kustomization] = load("redis/kustomization.yaml") as [
    { resources: string[]; patches: { path: string }[] },
  ];
  const [statefulSetDoc] = load("redis/redis-statefulset.yaml");
  const [redisServiceDoc] = load("redis/redis-service.yaml");
  const [patchDoc] = load("redis/deployment-patch.yaml");
  const [baseDoc] = load("deployment.yaml");
  const [configMapDoc] = load("configmap.yaml");

  /**
   * The patch applied as kustomize's strategic merge would for these
   * fields: maps merge, containers and env merge by name. No kustomize here.
   */
  function merge(base: unknown, patch: unknown): unknown {
    if (Array.isArray(base) && Array.isArray(patch)) {
      const out = [...base] as Record<string, unknown>[];
      for (const item of patch as Record<string, unknown>[]) {
        const at = out.findIndex((b) => b["name"] !== undefined && b["name"] === item["name"]);
        if (at >= 0) out[at] = merge(out[at], item) as Record<string, unknown>;
        else out.push(item);
      }
      return out;
    }
    if (base && patch && typeof base === "object" && typeof patch === "object") {
      const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
      for (const [key, value] of Object.entries(patch)) out[key] = merge(out[key], value);
      return out;
    }
    return patch;
  }
  const deployment = new Deployment(merge(baseDoc, patchDoc) as Record<string, unknown>);

  test("the overlay builds on the base and lists the Redis manifests and the patch", () => {
    expect(kustomization.resources.sort()).toEqual([
      "../",
      "redis-service.yaml",
      "redis-statefulset.yaml",
    ]);
    expect(kustomization.patches.map((p) => p.path)).toEqual(["deployment-patch.yaml"]);
  });

  test("the patched Deployment, the StatefulSet and the Service validate against the Kubernetes schemas", () => {
    expect(() => deployment.validate()).not.toThrow();
    expect(() => new StatefulSet(statefulSetDoc).validate()).not.toThrow();
    expect(() => new Service(redisServiceDoc).validate()).not.toThrow();
  });

  test("several replicas, updated one at a time without losing capacity", () => {
    expect(deployment.spec?.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec?.strategy).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
  });

  test("the server's configuration (file plus environment) selects Redis at the Service's address", () => {
    const env = Object.fromEntries(
      (deployment.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [
        e.name,
        e.value ?? "",
      ]),
    );
    const file = new ConfigMap(configMapDoc).data?.["config.yaml"] ?? "";
    const { config } = loadConfig({ argv: [], env, readFile: () => file });
    expect(config.store).toBe("redis");
    const service = new Service(redisServiceDoc);
    const target = new URL(config.redisUrl);
    expect(target.hostname).toBe(service.metadata?.name);
    expect(Number(target.port)).toBe(service.spec?.ports?.[0]?.port);
  });

  test("the Redis Service selects the StatefulSet's pods and names its port; Redis never evicts live keys", () => {
    const statefulSet = new StatefulSet(statefulSetDoc);
    const service = new Service(redisServiceDoc);
    const labels = statefulSet.spec?.template.metadata?.labels ?? {};
    for (const [key, value] of Object.entries(service.spec?.selector ?? {})) {
      expect(labels[key]).toBe(value);
    }
    const container = statefulSet.spec?.template.spec?.containers[0];
    expect(container?.ports?.map((p) => p.name)).toContain(service.spec?.ports?.[0]?.targetPort);
    expect(statefulSet.spec?.serviceName).toBe(service.metadata?.name);
    const args = container?.args ?? [];
    expect(args[args.indexOf("--maxmemory-policy") + 1]).toBe("noeviction");
    expect(container?.image).toMatch(/^redis:7\./);
  });
});
