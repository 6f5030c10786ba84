import { PubSub } from "@google-cloud/pubsub";

/** Where a Pub/Sub client connects. */
export interface PubSubConnectionOptions {
  /**
   * The Google Cloud project id. Default: `PUBSUB_PROJECT_ID`, then
   * `GOOGLE_CLOUD_PROJECT`; then, on an emulator, `protoevents-local`, and
   * on real Pub/Sub the project the Application Default Credentials name.
   */
  readonly projectId?: string;
  /**
   * `host:port` of a Pub/Sub emulator. Default: `PUBSUB_EMULATOR_HOST`. When
   * neither is set, the client talks to real Pub/Sub with Application Default
   * Credentials.
   */
  readonly emulatorHost?: string;
}

/** The project id used when nothing else names one (only meaningful on an emulator). */
export const LOCAL_PROJECT_ID = "protoevents-local";

/**
 * Create a `@google-cloud/pubsub` client for the emulator or for a real
 * project, from options or the standard environment variables. The same code
 * then runs against both.
 */
export function createPubSub(options: PubSubConnectionOptions = {}): PubSub {
  const named =
    options.projectId ?? process.env.PUBSUB_PROJECT_ID ?? process.env.GOOGLE_CLOUD_PROJECT;
  const emulatorHost = options.emulatorHost ?? process.env.PUBSUB_EMULATOR_HOST;
  if (emulatorHost === undefined || emulatorHost === "") {
    // Never a made-up project on real Pub/Sub: the credentials' own, unless one is named.
    return new PubSub(named === undefined ? {} : { projectId: named });
  }
  return new PubSub({
    projectId: named ?? LOCAL_PROJECT_ID,
    apiEndpoint: emulatorHost,
    emulatorMode: true,
    // Without an explicit universe the auth library probes the GCE metadata
    // server, which fails off GCP and prints a MetadataLookupWarning.
    universeDomain: "googleapis.com",
  });
}
