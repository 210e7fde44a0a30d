// A TypeScript script in its own Node process, run from source as the app's
// own tests run it, that talks in JSON lines: one object per stdout line in,
// text lines to its stdin out.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root: the processes run there, so `--import tsx` resolves. */
export const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));

/** How a script process ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** A running script: its JSON lines in order, its stdin, its end. */
export class ScriptProcess {
  readonly #child: ChildProcess;
  readonly #lines: Record<string, unknown>[] = [];
  #waiter: (() => void) | undefined;
  #stderr = "";
  #ended = false;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<Exit>;

  constructor(
    readonly name: string,
    script: string,
    args: readonly string[],
  ) {
    // Only what the test passes configures the process, never the caller's FAIR_STATE_ variables.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith("FAIR_STATE_")),
    );
    this.#child = spawn(
      process.execPath,
      ["--import", "tsx", "--conditions=development", script, ...args],
      { cwd: repoRoot, env, stdio: ["pipe", "pipe", "pipe"] },
    );
    this.#child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.#stderr += chunk;
    });
    const stdout = this.#child.stdout;
    if (stdout !== null) {
      createInterface({ input: stdout }).on("line", (line) => {
        this.#lines.push(parseLine(line));
        this.#wake();
      });
    }
    // A process that is gone takes no more input; that is for `exited` to report, not an error.
    this.#child.stdin?.on("error", () => {});
    // "close", not "exit": by then every line it printed has been read.
    this.exited = once(this.#child, "close").then(
      ([code, signal]) => ({ code, signal, stderr: this.#stderr }) as Exit,
      (error: unknown) => ({ code: null, signal: null, stderr: `${this.#stderr}${error}` }),
    );
    void this.exited.then(() => {
      this.#ended = true;
      this.#wake();
    });
  }

  /**
   * The next JSON line the process prints. Rejects, with what it wrote to
   * stderr, if it exits before printing one.
   */
  async nextLine(): Promise<Record<string, unknown>> {
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) return line;
      if (this.#ended) {
        const { code, signal, stderr } = await this.exited;
        throw new Error(
          `${this.name} exited (code ${code}, signal ${signal}) without another line:\n${stderr}`,
        );
      }
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
      });
    }
  }

  /** Writes `line` to the process's stdin. */
  send(line: string): void {
    this.#child.stdin?.write(`${line}\n`);
  }

  /** Kills the process if it still runs and waits until it has exited. */
  async kill(): Promise<Exit> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGKILL");
    }
    return this.exited;
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }
}

function parseLine(line: string): Record<string, unknown> {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { unparsed: line };
  }
}
