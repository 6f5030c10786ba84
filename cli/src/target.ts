/**
 * Where a command's Pub/Sub changes would land. On an emulator nothing
 * outlives a restart; outside one they change a real Google Cloud project,
 * so commands that change something name the target first and want `--yes`.
 */
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";

/**
 * The connection a command uses: its flags (and their environment
 * variables), or, when those name neither an emulator nor a project, the
 * emulator that a running `npm start` or `protoevents emulator` announced for
 * the repository at `root` — so a second terminal needs no exported
 * variables. Says on stderr which one it took. With a project named and no
 * emulator, real Pub/Sub stays the target and a running emulator is only
 * mentioned.
 */
export async function withLocalEmulator<T extends ConnectionFlags>(
  flags: T,
  root: string,
  what: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<T> {
  if (flags.emulatorHost !== undefined && flags.emulatorHost !== "") {
    return flags;
  }
  const { findLocalEmulator } = await import("@protoevents/runtime");
  const local = await findLocalEmulator(root);
  if (local === undefined) {
    return flags;
  }
  const about = `${local.owner} (pid ${local.pid}) runs an emulator at ${local.endpoint}, project ${local.project}`;
  if ((flags.project ?? env.GOOGLE_CLOUD_PROJECT) !== undefined) {
    process.stderr.write(
      `${what}: note: ${about}; pass --emulator-host ${local.endpoint} --project ${local.project} to use it\n`,
    );
    return flags;
  }
  process.stderr.write(`${what}: ${about}; using it (PUBSUB_EMULATOR_HOST chooses another)\n`);
  return { ...flags, emulatorHost: local.endpoint, project: local.project };
}

/** What a command was told about its connection. */
export interface ConnectionFlags {
  readonly project?: string | undefined;
  readonly emulatorHost?: string | undefined;
}

/** The Pub/Sub a command talks to. */
export interface Target {
  readonly emulator: boolean;
  /** For people: `the Pub/Sub emulator at 127.0.0.1:8085, project demo`. */
  readonly description: string;
}

/** The target of these flags in this environment (the same resolution as createPubSub). */
export function targetOf(
  flags: ConnectionFlags,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Target {
  const emulatorHost = flags.emulatorHost ?? env.PUBSUB_EMULATOR_HOST;
  const project = flags.project ?? env.PUBSUB_PROJECT_ID ?? env.GOOGLE_CLOUD_PROJECT;
  if (emulatorHost !== undefined && emulatorHost !== "") {
    return {
      emulator: true,
      description: `the Pub/Sub emulator at ${emulatorHost}, project ${project ?? "protoevents-local"}`,
    };
  }
  return {
    emulator: false,
    description: `real Pub/Sub (pubsub.googleapis.com), ${project === undefined ? "the project your Application Default Credentials name" : `Google Cloud project ${project}`}`,
  };
}

/**
 * Say where `what` is about to act, and refuse to change anything outside an
 * emulator without `--yes`.
 *
 * @throws ProtoeventsError `invalid_argument` for real Pub/Sub without `yes`.
 */
export function confirmTarget(what: string, target: Target, yes: boolean): void {
  process.stderr.write(`${what}: target is ${target.description}\n`);
  if (!target.emulator && !yes) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `${what} would change ${target.description}: see the plan with --dry-run, then run it again with --yes (or set PUBSUB_EMULATOR_HOST to use an emulator)`,
    );
  }
}
