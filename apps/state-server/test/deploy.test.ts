// No Docker engine or cluster runs here, so the image and the manifests are
// checked by what can be checked offline: the Dockerfile's build steps are
// replayed and the result run; the manifests are rendered by kustomize
// itself (`kubectl kustomize`, no cluster needed) and every document is
// validated against the Kubernetes schemas and the server's own config.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { loadConfig } from "@fair/state-server";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { ConfigMap, PersistentVolumeClaim, Service } from "kubernetes-models/v1";
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
      // The image's `fair-state` runs the deployed CLI.
      const wrapper = finalStage.find(
        (s) => s.op === "RUN" && s.args.includes("/usr/local/bin/fair-state"),
      );
      expect(wrapper?.args).toContain("exec node /app/dist/cli.js");
      const cliHelp = execFileSync(process.execPath, ["dist/cli.js", "--help"], {
        cwd: out,
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(cliHelp).toContain("fair-state <explain|top|watch>");
    });
  });
});

// Here, after the image's build, so the build `pnpm start` runs is turbo's
// cache (and never runs alongside the image's).
describe("pnpm start, the README's command", () => {
  const stateDir = mkdtempSync(join(tmpdir(), "fair-start-"));
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  test("SIGTERM to the pnpm process stops the server it started, gracefully: no orphan, the port free", {
    timeout: 180_000,
  }, async () => {
    const pnpm = spawn(
      "pnpm",
      ["start", "--", "--grpc-listen-address=127.0.0.1:0", "--metrics-listen-address=127.0.0.1:0"],
      {
        cwd: repo,
        env: { ...process.env, FAIR_STATE_STATE_DIR: stateDir, TURBO_TELEMETRY_DISABLED: "1" },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const output = createInterface({ input: pnpm.stdout })[Symbol.asyncIterator]();
    // pnpm and turbo print lines of their own first; the server's are JSON.
    let started: { pid?: number; grpcAddress?: string } = {};
    for (;;) {
      const line = await output.next();
      if (line.done) throw new Error("pnpm start ended before the server started");
      if (line.value.includes('"fair-state-server started"')) {
        started = JSON.parse(line.value) as typeof started;
        break;
      }
    }
    const pid = started.pid as number;
    const port = Number(started.grpcAddress?.split(":").pop());
    expect(pid).not.toBe(pnpm.pid);

    pnpm.kill("SIGTERM");
    const messages: string[] = [];
    for await (const line of output) {
      if (line.startsWith("{")) messages.push((JSON.parse(line) as { msg: string }).msg);
    }
    // The server saw its parent go and shut down as on SIGTERM, snapshot and all.
    expect(messages).toEqual(["shutdown requested", "shutting down", "stopped"]);
    expect(existsSync(join(stateDir, "state.snapshot"))).toBe(true);
    // Gone within the grace period (its output ends just before it exits).
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + loadConfig({ argv: [], env: {} }).config.shutdownGracePeriodMs;
    while (alive() && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(alive()).toBe(false);
    const free = createServer();
    await new Promise<void>((resolve, reject) => {
      free.once("error", reject).listen(port, "127.0.0.1", () => resolve());
    });
    free.close();
  });
});

/** The documents `kubectl kustomize <dir>` renders: kustomize itself, no imitation of it. */
function render(dir: string): Record<string, unknown>[] {
  const text = execFileSync("kubectl", ["kustomize", join(repo, dir)], {
    encoding: "utf8",
    timeout: 60_000,
  });
  return parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
}

function ofKind(docs: Record<string, unknown>[], kind: string, name?: string) {
  const doc = docs.find(
    (d) =>
      d["kind"] === kind &&
      (name === undefined || (d["metadata"] as { name?: string } | undefined)?.name === name),
  );
  if (!doc) throw new Error(`no ${kind}${name ? ` ${name}` : ""} in the rendered manifests`);
  return doc;
}

describe("k8s/: the server on its in-memory store", () => {
  const docs = render("k8s");
  const configMapDoc = ofKind(docs, "ConfigMap");
  const deploymentDoc = ofKind(docs, "Deployment");
  const serviceDoc = ofKind(docs, "Service");
  const claimDoc = ofKind(docs, "PersistentVolumeClaim");

  test("kustomize renders the ConfigMap, Deployment, Service and state claim, and they validate against the Kubernetes schemas", () => {
    expect(docs.map((d) => d["kind"]).sort()).toEqual([
      "ConfigMap",
      "Deployment",
      "PersistentVolumeClaim",
      "Service",
    ]);
    expect(() => new ConfigMap(configMapDoc).validate()).not.toThrow();
    expect(() => new Deployment(deploymentDoc).validate()).not.toThrow();
    expect(() => new Service(serviceDoc).validate()).not.toThrow();
    expect(() => new PersistentVolumeClaim(claimDoc).validate()).not.toThrow();
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
    // Generated with a hash of the file in its name: editing the file changes
    // the pod template, so the pods roll onto the new configuration.
    expect(volume?.configMap?.name).toMatch(/^fair-state-server-[a-z0-9]{10}$/);
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

  test("the pod meets the restricted Pod Security Standard: non-root, default seccomp, no privilege, read-only root", () => {
    const pod = new Deployment(deploymentDoc).spec?.template.spec;
    expect(pod?.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    for (const container of pod?.containers ?? []) {
      expect(container.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      });
    }
  });

  test("the state directory the image names is on the claim, so snapshots survive the pod", () => {
    const deployment = new Deployment(deploymentDoc);
    const pod = deployment.spec?.template.spec;
    const stateDir = /ENV FAIR_STATE_STATE_DIR=(\S+)/.exec(dockerfile)?.[1];
    expect(stateDir).toBeDefined();
    const mount = pod?.containers[0]?.volumeMounts?.find((m) => m.mountPath === stateDir);
    expect(mount?.readOnly).not.toBe(true);
    const volume = pod?.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.persistentVolumeClaim?.claimName).toBe(
      new PersistentVolumeClaim(claimDoc).metadata?.name,
    );
    // With the in-memory store, that directory turns snapshots on.
    const file = new ConfigMap(configMapDoc).data?.["config.yaml"] ?? "";
    const { config } = loadConfig({
      argv: [],
      env: { FAIR_STATE_STATE_DIR: stateDir ?? "" },
      readFile: () => file,
    });
    expect(config.snapshotPath).toBe(`${stateDir}/state.snapshot`);
  });

  test("the Service and ServiceMonitor select the Deployment's pods and name its ports", () => {
    const deployment = new Deployment(deploymentDoc);
    const service = new Service(serviceDoc);
    const labels = deployment.spec?.template.metadata?.labels ?? {};
    for (const [key, value] of Object.entries(service.spec?.selector ?? {}))
      expect(labels[key]).toBe(value);
    const portNames = deployment.spec?.template.spec?.containers[0]?.ports?.map((p) => p.name);
    for (const port of service.spec?.ports ?? []) expect(portNames).toContain(port.targetPort);

    const [monitor] = parseAllDocuments(
      readFileSync(join(repo, "k8s/servicemonitor.yaml"), "utf8"),
    ).map((d) => d.toJS()) as [
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
});

/** The server's configuration an overlay gives: the ConfigMap's file, the Deployment's environment, the image's state directory. */
function overlayConfig(deployment: Deployment, configMapDoc: Record<string, unknown>) {
  const env = Object.fromEntries(
    (deployment.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? ""]),
  );
  const file = new ConfigMap(configMapDoc).data?.["config.yaml"] ?? "";
  const stateDir = /ENV FAIR_STATE_STATE_DIR=(\S+)/.exec(dockerfile)?.[1] ?? "";
  return loadConfig({
    argv: [],
    env: { FAIR_STATE_STATE_DIR: stateDir, ...env },
    readFile: () => file,
  }).config;
}

describe("k8s/redis/: several replicas on Redis", () => {
  const docs = render("k8s/redis");
  const deployment = new Deployment(ofKind(docs, "Deployment"));
  const statefulSetDoc = ofKind(docs, "StatefulSet");
  const redisServiceDoc = ofKind(docs, "Service", "fair-state-redis");
  const configMapDoc = ofKind(docs, "ConfigMap");

  test("kustomize renders the base, the Redis StatefulSet and Service, and no state claim", () => {
    expect(docs.map((d) => d["kind"]).sort()).toEqual([
      "ConfigMap",
      "Deployment",
      "Service",
      "Service",
      "StatefulSet",
    ]);
    expect(() => deployment.validate()).not.toThrow();
    expect(() => new StatefulSet(statefulSetDoc).validate()).not.toThrow();
    expect(() => new Service(redisServiceDoc).validate()).not.toThrow();
    // The replicas' state directory is scratch space.
    const state = deployment.spec?.template.spec?.volumes?.find((v) => v.name === "state");
    expect(state?.emptyDir).toEqual({});
    expect(state?.persistentVolumeClaim).toBeUndefined();
  });

  test("several replicas, updated one at a time without losing capacity", () => {
    expect(deployment.spec?.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec?.strategy).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
  });

  test("the server's configuration (file plus environment) selects Redis at the Service's address, without snapshots", () => {
    const config = overlayConfig(deployment, configMapDoc);
    expect(config.store).toBe("redis");
    expect(config.snapshotPath).toBeUndefined();
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

describe("k8s/redis-cluster/: several replicas on a Redis Cluster run elsewhere", () => {
  const docs = render("k8s/redis-cluster");
  const deployment = new Deployment(ofKind(docs, "Deployment"));
  const configMapDoc = ofKind(docs, "ConfigMap");

  test("kustomize renders the base without its state claim, and the Deployment validates", () => {
    expect(docs.map((d) => d["kind"]).sort()).toEqual(["ConfigMap", "Deployment", "Service"]);
    expect(() => deployment.validate()).not.toThrow();
    expect(deployment.spec?.replicas).toBeGreaterThanOrEqual(2);
  });

  test("the server's configuration selects cluster mode with a list of seed nodes, coalescing, no snapshots", () => {
    const config = overlayConfig(deployment, configMapDoc);
    expect(config).toMatchObject({ store: "redis", redisMode: "cluster", redisFlushIntervalMs: 5 });
    expect(config.snapshotPath).toBeUndefined();
    const nodes = config.redisUrl.split(",").map((url) => new URL(url));
    expect(nodes.length).toBeGreaterThanOrEqual(3);
    for (const node of nodes) expect(node.protocol).toBe("redis:");
  });
});
