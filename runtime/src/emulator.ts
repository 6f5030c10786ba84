import { type ChildProcess, execFile, spawn } from "node:child_process";
import { accessSync, constants, createWriteStream, realpathSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import { Code, ProtoeventsError } from "./errors.js";

/** Environment variable naming the emulator start script, to override discovery. */
export const EMULATOR_COMMAND_ENV = "PROTOEVENTS_PUBSUB_EMULATOR";

/** The start script, relative to the Google Cloud SDK root. */
const EMULATOR_SCRIPT = join("platform", "pubsub-emulator", "bin", "cloud-pubsub-emulator");

/**
 * The JVM's default heap is a quarter of RAM and the emulator grows to over
 * 1 GiB under load; 256 MiB is plenty for tests and demos.
 */
const DEFAULT_JAVA_HEAP = "256m";

/** The emulator answers after about 1.5 s on these machines; allow for a slow, loaded one. */
const DEFAULT_START_TIMEOUT_MS = 60_000;

/** How long `stop()` waits after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5_000;

const INSTALL_HINT =
  "Install it with `gcloud components install pubsub-emulator` (or the Debian package " +
  "google-cloud-cli-pubsub-emulator), or point " +
  EMULATOR_COMMAND_ENV +
  " at the cloud-pubsub-emulator script.";

/** Options of {@link startEmulator}. */
export interface EmulatorOptions {
  /** Interface to listen on. @default "127.0.0.1" */
  readonly host?: string;
  /** Port to listen on. @default a free port */
  readonly port?: number;
  /** Path of the `cloud-pubsub-emulator` script. @default discovered, see {@link findEmulator} */
  readonly command?: string;
  /** JVM maximum heap (`-Xmx`). @default "256m" */
  readonly javaHeap?: string;
  /** Milliseconds to wait for the emulator to answer. @default 60000 */
  readonly startTimeoutMs?: number;
  /** Append the emulator's own output (its Java log) to this file. @default discarded once it answers */
  readonly logFile?: string;
}

/** A running emulator. Stop it with {@link Emulator.stop}. */
export interface Emulator {
  /** `host:port`, the value for `PUBSUB_EMULATOR_HOST`. */
  readonly endpoint: string;
  readonly host: string;
  readonly port: number;
  /** PID of the JVM (the start script `exec`s java). */
  readonly pid: number;
  /** Stop the JVM by PID: SIGTERM, then SIGKILL after a grace period. Idempotent. */
  stop(): Promise<void>;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir !== "" && isExecutable(join(dir, name))) {
      return join(dir, name);
    }
  }
  return undefined;
}

/**
 * Find the emulator's start script: `PROTOEVENTS_PUBSUB_EMULATOR` if set,
 * else under the SDK root of the `gcloud` on PATH (resolved through its
 * symlink, then asked with `gcloud info` as a last resort).
 *
 * @throws ProtoeventsError `emulator_not_found` with how to install it.
 */
export async function findEmulator(): Promise<string> {
  const fromEnv = process.env[EMULATOR_COMMAND_ENV];
  if (fromEnv !== undefined && fromEnv !== "") {
    if (isExecutable(fromEnv)) {
      return fromEnv;
    }
    throw new ProtoeventsError(
      Code.EmulatorNotFound,
      `${EMULATOR_COMMAND_ENV}=${fromEnv} is not an executable file. ${INSTALL_HINT}`,
    );
  }
  const gcloud = findOnPath("gcloud");
  if (gcloud === undefined) {
    throw new ProtoeventsError(
      Code.EmulatorNotFound,
      `The Pub/Sub emulator was not found: there is no gcloud on PATH. ${INSTALL_HINT}`,
    );
  }
  // gcloud is usually <sdk>/bin/gcloud, often reached through a symlink.
  const guess = join(dirname(dirname(realpathSync(gcloud))), EMULATOR_SCRIPT);
  if (isExecutable(guess)) {
    return guess;
  }
  let sdkRoot = "";
  try {
    const { stdout } = await promisify(execFile)(gcloud, [
      "info",
      "--format=value(installation.sdk_root)",
    ]);
    sdkRoot = stdout.trim();
  } catch (cause) {
    throw new ProtoeventsError(
      Code.EmulatorNotFound,
      `The Pub/Sub emulator was not found: \`gcloud info\` failed. ${INSTALL_HINT}`,
      { cause },
    );
  }
  const script = join(sdkRoot, EMULATOR_SCRIPT);
  if (isExecutable(script)) {
    return script;
  }
  throw new ProtoeventsError(
    Code.EmulatorNotFound,
    `The Pub/Sub emulator is not installed in the Google Cloud SDK at ${sdkRoot} (no ${EMULATOR_SCRIPT}). ${INSTALL_HINT}`,
  );
}

/** Ask the OS for a port that is free right now. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") {
          resolve(address.port);
        } else {
          reject(new Error("could not determine a free port"));
        }
      });
    });
  });
}

/** Whether an emulator answers on `host:port` (its REST root says "Ok"). */
export async function emulatorAnswers(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`http://${endpoint}/`, { signal: AbortSignal.timeout(1_000) });
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * Runs the emulator (its command and arguments are "$@"), writes the JVM's
 * PID to file descriptor 3, and exits with the JVM. A watcher reads stdin
 * (through fd 4: a background job's own stdin is /dev/null):
 * at end of input (the owner closed the pipe, or died in any way) it sends
 * the JVM SIGTERM, then SIGKILL if it is still there after STOP_GRACE_MS. A
 * SIGTERM, SIGINT or SIGHUP to the shell is passed on to the JVM.
 */
const LIFELINE = `
exec 4<&0
"$@" </dev/null 3>&- 4<&- &
jvm=$!
echo "$jvm" >&3
exec 3>&-
(
  while IFS= read -r _; do :; done
  kill -TERM "$jvm" 2>/dev/null
  sleep ${STOP_GRACE_MS / 1000}
  kill -KILL "$jvm" 2>/dev/null
) <&4 &
watcher=$!
exec 4<&-
trap 'kill -TERM "$jvm" 2>/dev/null' TERM INT HUP
status=0
while kill -0 "$jvm" 2>/dev/null; do
  wait "$jvm"
  status=$?
done
kill "$watcher" 2>/dev/null
exit "$status"
`;

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Start the real Pub/Sub emulator on a free port and wait until it answers.
 * It keeps everything in memory: a new emulator starts empty.
 *
 * The JVM is also killed when this process exits normally; stop it
 * explicitly with {@link Emulator.stop} to wait for it.
 *
 * @throws ProtoeventsError `emulator_not_found` or `emulator_failed`.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const command = options.command ?? (await findEmulator());
  const host = options.host ?? "127.0.0.1";
  if (options.port !== undefined) {
    return startOnce(command, host, options.port, options);
  }
  // A free port can be taken by someone else before the JVM binds it: try another.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(command, host, await freePort(host), options);
    } catch (error) {
      if (
        attempt >= 3 ||
        !(error instanceof ProtoeventsError) ||
        !error.message.includes("exited")
      ) {
        throw error;
      }
    }
  }
}

async function startOnce(
  command: string,
  host: string,
  port: number,
  options: EmulatorOptions,
): Promise<Emulator> {
  const endpoint = `${host}:${port}`;
  const output: string[] = [];
  // The emulator runs under a small shell that holds a pipe from this process
  // (its stdin): when the pipe closes, because stop() closed it or because
  // this process died in any way (SIGKILL included), the shell stops the JVM.
  const child = spawn(
    "/bin/sh",
    ["-c", LIFELINE, "lifeline", command, `--host=${host}`, `--port=${port}`],
    {
      env: { ...process.env, JAVA_OPTS: `-Xmx${options.javaHeap ?? DEFAULT_JAVA_HEAP}` },
      // stdin: the lifeline; fd 3: the JVM's PID.
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      // Its own process group: Ctrl-C in a terminal signals the foreground group,
      // and the JVM must outlive the services that still flush to it; its owner
      // stops it once they are down.
      detached: true,
    },
  );
  let jvmPid: number | undefined;
  const pidPipe = child.stdio[3] as Readable | null;
  pidPipe?.on("data", (chunk: Buffer) => {
    const pid = Number(chunk.toString("utf8").trim());
    if (Number.isSafeInteger(pid) && pid > 0) {
      jvmPid = pid;
    }
  });
  const keep = (chunk: Buffer): void => {
    output.push(chunk.toString("utf8"));
    if (output.length > 200) {
      output.shift();
    }
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const killOnExit = (): void => {
    if (jvmPid !== undefined) {
      try {
        process.kill(jvmPid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  };
  process.once("exit", killOnExit);
  let spawnError: Error | undefined;
  child.once("error", (error) => {
    spawnError = error;
  });
  // A closed lifeline pipe is how the shell learns to stop; writing never happens.
  child.stdin?.on("error", () => {});

  const stop = async (): Promise<void> => {
    process.removeListener("exit", killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    child.stdin?.end();
    // The shell stops the JVM (SIGTERM, SIGKILL after its own grace) and exits.
    const timer = setTimeout(() => {
      killOnExit();
      child.kill("SIGKILL");
    }, STOP_GRACE_MS + 2_000);
    await exited(child);
    clearTimeout(timer);
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  for (;;) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new ProtoeventsError(
        Code.EmulatorFailed,
        `The Pub/Sub emulator (${command}) exited before answering on ${endpoint}` +
          `${spawnError === undefined ? "" : `: ${spawnError.message}`}. Its output:\n${output.join("")}`,
        { cause: spawnError },
      );
    }
    if (await emulatorAnswers(endpoint)) {
      break;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new ProtoeventsError(
        Code.EmulatorFailed,
        `The Pub/Sub emulator did not answer on ${endpoint} within ${options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms. Its output:\n${output.join("")}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // Output is only kept for the start-up error message, and written to the log file if asked.
  child.stdout?.removeListener("data", keep);
  child.stderr?.removeListener("data", keep);
  if (options.logFile === undefined) {
    child.stdout?.resume();
    child.stderr?.resume();
  } else {
    const logStream = createWriteStream(options.logFile, { flags: "a" });
    logStream.on("error", () => {
      child.stdout?.unpipe(logStream);
      child.stderr?.unpipe(logStream);
      child.stdout?.resume();
      child.stderr?.resume();
    });
    logStream.write(output.join(""));
    child.stdout?.pipe(logStream, { end: false });
    child.stderr?.pipe(logStream, { end: false });
    child.once("exit", () => logStream.end());
  }
  const pid = jvmPid;
  if (pid === undefined) {
    await stop();
    throw new ProtoeventsError(Code.EmulatorFailed, "The Pub/Sub emulator has no PID");
  }
  return { endpoint, host, port, pid, stop };
}
