/**
 * Releases: committed snapshots of the contracts that `protoevents check`
 * keeps today's contracts compatible with. A release is a directory
 * `releases/<version>/` holding
 *
 * - `image.binpb`: the buf image of the module (`buf build proto`), with
 *   source info; buf writes it byte-stable, and the event-level rules read
 *   the release's contracts from it;
 * - `release.json`: version, date, and an index of the events (topic, keys,
 *   encoding, golden payloads) and applications (subscriptions and their
 *   settings) for people and tools; see {@link ReleaseManifest};
 * - `golden/<event>.binpb` and `.json`: every event's golden sample (see
 *   `golden-sample.ts`) in both encodings.
 *
 * Releases are immutable: `createRelease` refuses an existing version.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { toBinary, toJson } from "@bufbuild/protobuf";
import { Code, ProtoeventsError } from "@protoevents/runtime/errors";
import { bufBuild, bufVersion, pathPrefixOf, readModulePath } from "../buf.js";
import { readImage } from "../compat/image.js";
import { buildModel, type ContractModel } from "../model.js";
import { formatJson } from "./format-json.js";
import { goldenSample } from "./golden-sample.js";

/** The directory under the repository root that holds the releases, unless configured otherwise. */
export const RELEASES_DIR = "releases";
/** File names inside a release directory. */
export const ReleaseFile = {
  image: "image.binpb",
  manifest: "release.json",
  golden: "golden",
} as const;

/** `MAJOR.MINOR.PATCH`, optionally with a `-prerelease` suffix. */
const VERSION = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/;

/** One event of a release, as `release.json` lists it. */
export interface ReleasedEvent {
  /** Full name of the message. */
  readonly name: string;
  /** `ce-type`. */
  readonly type: string;
  readonly topic: string;
  /** Ordering-key field; empty for none. */
  readonly orderingKey: string;
  /** Subject field; empty for none. */
  readonly subject: string;
  /** The encoding its producers published. */
  readonly encoding: "binary" | "json";
  /** `ce-dataschema` of the release's producers. */
  readonly dataschema: string;
  /** Golden payloads, relative to the release directory. */
  readonly golden: { readonly binary: string; readonly json: string };
}

/** One subscription of a release, with its settings. */
export interface ReleasedSubscription {
  readonly name: string;
  readonly rpc: string;
  /** Full name of the event consumed. */
  readonly event: string;
  readonly maxDeliveryAttempts: number;
  readonly ackDeadlineSeconds: number;
  readonly minBackoffSeconds: number;
  readonly maxBackoffSeconds: number;
  /** Days of inactivity before Pub/Sub deletes it; absent: never. */
  readonly expirationTtlDays?: number;
  /** Absent in releases made before protoevents recorded it (Pub/Sub's 7 days). */
  readonly messageRetentionSeconds?: number;
  /** Absent in releases made before protoevents recorded it (false). */
  readonly retainAckedMessages?: boolean;
  /** Present (true) only when on. */
  readonly exactlyOnceDelivery?: boolean;
  readonly ordered: boolean;
  readonly filter: string;
  /** Its dead-letter topic; empty when dead-lettering is off. */
  readonly deadLetterTopic: string;
}

/** One application of a release. */
export interface ReleasedApplication {
  readonly name: string;
  /** Full name of its service. */
  readonly service: string;
  readonly publishes: readonly string[];
  readonly subscriptions: readonly ReleasedSubscription[];
}

/**
 * `release.json`. The compatibility check reads the contracts from the
 * image; this index is what people and tools read without protobuf.
 */
export interface ReleaseManifest {
  readonly version: string;
  /** Day the release was recorded, `YYYY-MM-DD`. */
  readonly date: string;
  /** The buf module path the image was built from, e.g. `proto`. */
  readonly module: string;
  /** `buf --version` that built the image. */
  readonly buf: string;
  /** SHA-256 of `image.binpb`, hex. */
  readonly imageSha256: string;
  readonly events: readonly ReleasedEvent[];
  readonly applications: readonly ReleasedApplication[];
}

/** A release directory found under `releases/`. */
export interface ReleaseRef {
  readonly version: string;
  /** Absolute path of `releases/<version>`. */
  readonly dir: string;
}

/** Options of {@link createRelease}. */
export interface CreateReleaseOptions {
  /** The repository root: buf.yaml and `releases/` live there. */
  readonly dir: string;
  /** `MAJOR.MINOR.PATCH`. */
  readonly version: string;
  /** `YYYY-MM-DD`. @default today (UTC) */
  readonly date?: string;
  /** The buf binary. @default the package's `@bufbuild/buf` */
  readonly buf?: string;
  /** Where releases live, relative to `dir`. @default {@link RELEASES_DIR} */
  readonly releasesDir?: string;
}

/** Compare two versions: negative when `a` is older. A prerelease is older than its release. */
export function compareVersions(a: string, b: string): number {
  const pa = VERSION.exec(a);
  const pb = VERSION.exec(b);
  if (pa === null || pb === null) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) {
      return d;
    }
  }
  const [ra, rb] = [pa[4], pb[4]];
  if (ra === rb) {
    return 0;
  }
  if (ra === undefined) {
    return 1;
  }
  if (rb === undefined) {
    return -1;
  }
  return ra < rb ? -1 : 1;
}

/** The releases under `<dir>/<releasesDir>/`, oldest first. */
export async function listReleases(
  dir: string,
  releasesDir: string = RELEASES_DIR,
): Promise<ReleaseRef[]> {
  const root = join(dir, releasesDir);
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const refs: ReleaseRef[] = [];
  for (const name of names) {
    if (!VERSION.test(name)) {
      continue;
    }
    const image = join(root, name, ReleaseFile.image);
    if ((await stat(image).catch(() => undefined))?.isFile() === true) {
      refs.push({ version: name, dir: join(root, name) });
    }
  }
  return refs.sort((a, b) => compareVersions(a.version, b.version));
}

/** Read a release's `release.json`. */
export async function readReleaseManifest(release: ReleaseRef): Promise<ReleaseManifest> {
  const file = join(release.dir, ReleaseFile.manifest);
  try {
    return JSON.parse(await readFile(file, "utf8")) as ReleaseManifest;
  } catch (cause) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `cannot read ${file}: ${(cause as Error).message}; a release directory holds image.binpb, release.json and golden/`,
      { cause },
    );
  }
}

/** Where a release keeps an event's golden payloads, relative to the release directory. */
function goldenPaths(event: string): ReleasedEvent["golden"] {
  return {
    binary: `${ReleaseFile.golden}/${event}.binpb`,
    json: `${ReleaseFile.golden}/${event}.json`,
  };
}

/**
 * The events (sorted by name) and applications `release.json` lists: a
 * projection of the contract model, which derives nothing of its own.
 */
export function releasedContracts(
  model: ContractModel,
): Pick<ReleaseManifest, "events" | "applications"> {
  const events = [...model.events.values()].map(
    (event): ReleasedEvent => ({
      name: event.desc.typeName,
      type: event.type,
      topic: event.topic,
      orderingKey: event.orderingKey,
      subject: event.subject,
      encoding: event.encoding,
      dataschema: event.dataschema,
      golden: goldenPaths(event.desc.typeName),
    }),
  );
  events.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const applications = model.applications.map(
    (app): ReleasedApplication => ({
      name: app.name,
      service: app.service.typeName,
      publishes: app.publishes.map((e) => e.desc.typeName),
      subscriptions: app.subscriptions.map(
        (s): ReleasedSubscription => ({
          name: s.name,
          rpc: s.method.name,
          event: s.event.desc.typeName,
          maxDeliveryAttempts: s.maxDeliveryAttempts,
          ackDeadlineSeconds: s.ackDeadlineSeconds,
          minBackoffSeconds: s.minBackoffSeconds,
          maxBackoffSeconds: s.maxBackoffSeconds,
          ...(s.expirationTtlDays === undefined ? {} : { expirationTtlDays: s.expirationTtlDays }),
          messageRetentionSeconds: s.messageRetentionSeconds,
          retainAckedMessages: s.retainAckedMessages,
          ...(s.exactlyOnceDelivery ? { exactlyOnceDelivery: true } : {}),
          ordered: s.ordered,
          filter: s.filter,
          deadLetterTopic: s.deadLetterIds?.topic ?? "",
        }),
      ),
    }),
  );
  return { events, applications };
}

/** The next minor version after the newest release, for suggestions. */
function suggestNext(existing: readonly ReleaseRef[], version: string): string {
  const newest = existing.at(-1)?.version ?? version;
  const m = VERSION.exec(newest);
  return m === null ? "a new version" : `${m[1]}.${Number(m[2]) + 1}.0`;
}

/**
 * Record today's contracts as release `version`: build the image, check the
 * contracts like codegen does, build the golden payloads and write
 * `releases/<version>/` in one rename, so a failed release leaves nothing
 * behind. Refuses a version that exists.
 */
export async function createRelease(
  options: CreateReleaseOptions,
): Promise<{ readonly manifest: ReleaseManifest; readonly dir: string }> {
  const { dir, version } = options;
  const releasesDir = options.releasesDir ?? RELEASES_DIR;
  if (!VERSION.test(version)) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `release version "${version}" is not MAJOR.MINOR.PATCH, e.g. 0.2.0`,
    );
  }
  const date = options.date ?? new Date().toISOString().slice(0, 10);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) {
    throw new ProtoeventsError(Code.InvalidArgument, `release date "${date}" is not YYYY-MM-DD`);
  }
  const existing = await listReleases(dir, releasesDir);
  const target = join(dir, releasesDir, version);
  if (
    existing.some((r) => r.version === version) ||
    (await stat(target).catch(() => undefined)) !== undefined
  ) {
    throw new ProtoeventsError(
      Code.InvalidArgument,
      `release ${version} exists (${join(releasesDir, version)}); releases are never overwritten: record the contracts as a new version, e.g. --version ${suggestNext(existing, version)}`,
    );
  }

  const workspace = { dir, ...(options.buf === undefined ? {} : { buf: options.buf }) };
  const modulePath = await readModulePath(dir);
  const [imageBytes, buf] = await Promise.all([
    bufBuild(workspace, modulePath),
    bufVersion(workspace),
  ]);
  const image = readImage(imageBytes, `the image of ${modulePath}`);
  // The contracts must pass codegen's checks: a release is something code was generated from.
  const model = buildModel(image.files, image.allFiles, pathPrefixOf(modulePath));

  const golden = new Map<string, Uint8Array | string>();
  for (const event of model.events.values()) {
    const sample = goldenSample(event.desc);
    const paths = goldenPaths(event.desc.typeName);
    golden.set(paths.binary, toBinary(event.desc, sample));
    golden.set(paths.json, formatJson(toJson(event.desc, sample, { registry: image.registry })));
  }
  const manifest: ReleaseManifest = {
    version,
    date,
    module: modulePath,
    buf,
    imageSha256: createHash("sha256").update(imageBytes).digest("hex"),
    ...releasedContracts(model),
  };

  const staging = join(dir, releasesDir, `.${version}.tmp-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  try {
    await mkdir(join(staging, ReleaseFile.golden), { recursive: true });
    await writeFile(join(staging, ReleaseFile.image), imageBytes);
    await writeFile(join(staging, ReleaseFile.manifest), formatJson(manifest));
    for (const [path, content] of golden) {
      await writeFile(join(staging, path), content);
    }
    await rename(staging, target);
  } catch (cause) {
    await rm(staging, { recursive: true, force: true });
    throw new ProtoeventsError(
      Code.Internal,
      `cannot write release ${version} to ${target}: ${(cause as Error).message}`,
      { cause },
    );
  }
  return { manifest, dir: target };
}
