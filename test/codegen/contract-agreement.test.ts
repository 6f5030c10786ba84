import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { create, fromBinary } from "@bufbuild/protobuf";
import { CodeGeneratorRequestSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { protocGenEs } from "@bufbuild/protoc-gen-es/dist/cjs/src/protoc-gen-es-plugin.js";
import type { PubSub } from "@google-cloud/pubsub";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAsyncApi } from "../../codegen/src/catalog/build-asyncapi.js";
import { type Catalog, loadCatalog } from "../../codegen/src/catalog/load-catalog.js";
import {
  type ContractSnapshot,
  snapshotContracts,
} from "../../codegen/src/compat/contract-snapshot.js";
import { readImage } from "../../codegen/src/compat/image.js";
import { protocGenProtoevents } from "../../codegen/src/plugin.js";
import { readContracts } from "../../codegen/src/read-contracts.js";
import type { ReleaseManifest } from "../../codegen/src/release/releases.js";
import { type HandlerSpec, handlerSpecs } from "../../codegen/src/sync/sync-services.js";
import type { ContractRegistry } from "../../runtime/src/contract.js";
import { ContentType } from "../../runtime/src/envelope.js";
import { type ProvisioningPlan, planProvisioning } from "../../runtime/src/provision.js";
import { root, type Workspace, workspace } from "../compat/gate-harness.js";
import { testPubSub } from "../helpers/pubsub.js";

/**
 * One contract through every consumer of the contract model: the generated
 * registry, the provisioning plan made from it, the compatibility gate's
 * snapshot of a release, the release manifest, the catalog and its AsyncAPI
 * document, and sync's handler specs. Each must name the same topics,
 * subscription ids, filters, dead-letter topics and ce-types, and those must
 * be the ones the contract means (the table below), so that a rule changed
 * in one place and not another fails here.
 */
const CONTRACT = `syntax = "proto3";
package shop.v1;
import "google/protobuf/empty.proto";
import "protoevents/v1/options.proto";

// Two events share topic shop.orders, so their subscriptions filter on ce-type.
message OrderPlaced {
  option (protoevents.v1.event) = { topic: "shop.orders" ordering_key: "order_id" subject: "order_id" };
  string order_id = 1;
}
message OrderShipped {
  option (protoevents.v1.event) = {
    topic: "shop.orders"
    type: "com.example.shop.order-shipped"
    encoding: PAYLOAD_ENCODING_JSON
  };
  string order_id = 1;
}
message CartAbandoned {
  option (protoevents.v1.event) = { topic: "shop.cart-abandoned" };
  string cart_id = 1;
}

service StoreService {
  option (protoevents.v1.application) = {
    name: "store"
    publishes: ["shop.v1.OrderPlaced", "shop.v1.OrderShipped", "shop.v1.CartAbandoned"]
  };
}

service BillingService {
  option (protoevents.v1.application) = { name: "billing" };
  // Derived id, dead-lettering by default, ordered, on the shared topic.
  rpc ChargeOrder(OrderPlaced) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = { ordered: true };
  }
  // Its own id and filter, on the shared topic, without dead-lettering.
  rpc TrackShipment(OrderShipped) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = {
      name: "billing-shipments"
      filter: "hasPrefix(attributes.\\"ce-subject\\", \\"o\\")"
      dead_letter: false
    };
  }
}

service MailerService {
  option (protoevents.v1.application) = { name: "mailer" };
  // Dead-lettering asked for explicitly, on a topic of its own.
  rpc RemindCart(CartAbandoned) returns (google.protobuf.Empty) {
    option (protoevents.v1.subscription) = { dead_letter: true };
  }
}
`;

/** What the contract means for one subscription. */
interface SubscriptionView {
  readonly topic: string;
  /** `ce-type` of the event consumed. */
  readonly eventType: string;
  /** The filter it is provisioned with. */
  readonly filter: string;
  readonly ordered: boolean;
  readonly deadLetterTopic: string | undefined;
  readonly deadLetterSubscription: string | undefined;
}

/** What the contract means for one event. */
interface EventView {
  readonly type: string;
  readonly topic: string;
  readonly contentType: string;
}

const SUBSCRIPTIONS: Record<string, SubscriptionView> = {
  "billing.charge-order": {
    topic: "shop.orders",
    eventType: "shop.v1.OrderPlaced",
    filter: 'attributes."ce-type" = "shop.v1.OrderPlaced"',
    ordered: true,
    deadLetterTopic: "billing.charge-order.dead-letter",
    deadLetterSubscription: "billing.charge-order.dead-letter",
  },
  "billing-shipments": {
    topic: "shop.orders",
    eventType: "com.example.shop.order-shipped",
    filter:
      '(hasPrefix(attributes."ce-subject", "o")) AND attributes."ce-type" = "com.example.shop.order-shipped"',
    ordered: false,
    deadLetterTopic: undefined,
    deadLetterSubscription: undefined,
  },
  "mailer.remind-cart": {
    topic: "shop.cart-abandoned",
    eventType: "shop.v1.CartAbandoned",
    filter: "",
    ordered: false,
    deadLetterTopic: "mailer.remind-cart.dead-letter",
    deadLetterSubscription: "mailer.remind-cart.dead-letter",
  },
};

const EVENTS: Record<string, EventView> = {
  "shop.v1.OrderPlaced": {
    type: "shop.v1.OrderPlaced",
    topic: "shop.orders",
    contentType: "application/protobuf",
  },
  "shop.v1.OrderShipped": {
    type: "com.example.shop.order-shipped",
    topic: "shop.orders",
    contentType: "application/json",
  },
  "shop.v1.CartAbandoned": {
    type: "shop.v1.CartAbandoned",
    topic: "shop.cart-abandoned",
    contentType: "application/protobuf",
  },
};

/** The views restricted to what a consumer knows. */
function only<K extends keyof SubscriptionView>(
  keys: readonly K[],
): Record<string, Pick<SubscriptionView, K>> {
  return Object.fromEntries(
    Object.entries(SUBSCRIPTIONS).map(([id, view]) => [
      id,
      Object.fromEntries(keys.map((k) => [k, view[k]])) as Pick<SubscriptionView, K>,
    ]),
  );
}

function onlyEvents<K extends keyof EventView>(
  keys: readonly K[],
): Record<string, Pick<EventView, K>> {
  return Object.fromEntries(
    Object.entries(EVENTS).map(([name, view]) => [
      name,
      Object.fromEntries(keys.map((k) => [k, view[k]])) as Pick<EventView, K>,
    ]),
  );
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) {
    throw new Error(`missing ${what}`);
  }
  return value;
}

describe("one contract through every consumer of the contract model", () => {
  let ws: Workspace;
  let registry: ContractRegistry;
  let generatedCode = "";
  let snapshot: ContractSnapshot;
  let manifest: ReleaseManifest;
  let catalog: Catalog;
  let specs: HandlerSpec[];
  let plan: ProvisioningPlan;
  let pubsub: PubSub;

  beforeAll(async () => {
    ws = await workspace();
    await mkdir(join(ws.dir, "proto", "shop", "v1"), { recursive: true });
    await writeFile(join(ws.dir, "proto", "shop", "v1", "shop.proto"), CONTRACT);
    // The generated code imports its packages from the workspace, as in an adopter's repository.
    await symlink(join(root, "node_modules"), join(ws.dir, "node_modules"));

    // A release, and the gate's snapshot of it.
    await ws.release("1.0.0");
    const releaseDir = join(ws.dir, "releases", "1.0.0");
    manifest = JSON.parse(await readFile(join(releaseDir, "release.json"), "utf8"));
    const imageBytes = await readFile(join(releaseDir, "image.binpb"));
    const image = readImage(imageBytes);
    snapshot = snapshotContracts(image.files, "proto/");

    // The generated code, from the same descriptors, with both plugins of buf.gen.yaml
    // (protoc-gen-protoevents from its sources, so the test checks the code under test).
    const request = (parameter: string) =>
      create(CodeGeneratorRequestSchema, {
        fileToGenerate: image.files.map((f) => f.proto.name),
        parameter,
        protoFile: fromBinary(FileDescriptorSetSchema, imageBytes).file,
      });
    const responses = [
      protocGenEs.run(request("target=ts,import_extension=js")),
      protocGenProtoevents.run(request("target=ts,import_extension=js,path_prefix=proto/")),
    ];
    for (const file of responses.flatMap((r) => r.file)) {
      const path = join(ws.dir, "generated", file.name);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, file.content);
    }
    registry = (
      (await import(pathToFileURL(join(ws.dir, "generated", "protoevents_registry.ts")).href)) as {
        registry: ContractRegistry;
      }
    ).registry;
    generatedCode = await readFile(join(ws.dir, "generated", "shop", "v1", "shop_pe.ts"), "utf8");

    catalog = await loadCatalog({ root: ws.dir });
    specs = handlerSpecs(readContracts(image.files, { pathPrefix: "proto/" }).model);
    pubsub = testPubSub("agreement");
    plan = await planProvisioning(pubsub, registry);
  }, 240_000);

  afterAll(async () => {
    await pubsub?.close();
    await ws?.remove();
  });

  it("should generate the registry the contract means", () => {
    const subscriptions = registry.applications.flatMap((a) => a.subscriptions);
    expect(
      Object.fromEntries(
        subscriptions.map((s) => [
          s.name,
          {
            topic: s.event.topic,
            eventType: s.event.type,
            filter: s.filter,
            ordered: s.ordered,
            deadLetterTopic: s.deadLetter?.topic,
            deadLetterSubscription: s.deadLetter?.subscription,
          },
        ]),
      ),
    ).toEqual(SUBSCRIPTIONS);
    expect(
      Object.fromEntries(
        registry.events.map((e) => [
          e.schema.typeName,
          { type: e.type, topic: e.topic, contentType: ContentType[e.encoding] },
        ]),
      ),
    ).toEqual(EVENTS);
  });

  it("should plan the topics and subscriptions the registry names", () => {
    const subscriptions = new Map(
      plan.actions.flatMap((a) => (a.resource === "subscription" ? [[a.name, a.desired]] : [])),
    );
    const short = (topic: string) => topic.slice(topic.lastIndexOf("/") + 1);
    const keeping = (topic: string | undefined) =>
      [...subscriptions.values()].find((s) => topic !== undefined && short(s.topic) === topic)
        ?.name;
    const consumed = Object.fromEntries(
      Object.keys(SUBSCRIPTIONS).map((id) => {
        const spec = required(subscriptions.get(id), `planned subscription ${id}`);
        const deadLetterTopic =
          spec.deadLetterPolicy === null ? undefined : short(spec.deadLetterPolicy.deadLetterTopic);
        return [
          id,
          {
            topic: short(spec.topic),
            filter: spec.filter,
            ordered: spec.enableMessageOrdering,
            deadLetterTopic,
            deadLetterSubscription: keeping(deadLetterTopic),
          },
        ];
      }),
    );
    expect(consumed).toEqual(
      only(["topic", "filter", "ordered", "deadLetterTopic", "deadLetterSubscription"]),
    );
    // Nothing else: the consumers' subscriptions and the ones keeping their dead letters.
    expect([...subscriptions.keys()].sort()).toEqual(
      Object.entries(SUBSCRIPTIONS)
        .flatMap(([id, v]) =>
          v.deadLetterSubscription === undefined ? [id] : [id, v.deadLetterSubscription],
        )
        .sort(),
    );
    expect(
      plan.actions
        .filter((a) => a.resource === "topic")
        .map((a) => a.name)
        .sort(),
    ).toEqual(
      [
        ...new Set(Object.values(EVENTS).map((e) => e.topic)),
        ...Object.values(SUBSCRIPTIONS).flatMap((v) => v.deadLetterTopic ?? []),
      ].sort(),
    );
  });

  it("should snapshot a release for the gate with the same names", () => {
    expect(
      Object.fromEntries(
        snapshot.consumers.map((c) => {
          const event = required(snapshot.events.get(c.event), `event ${c.event}`);
          return [
            c.subscription,
            {
              topic: event.topic,
              eventType: event.type,
              filter: c.effectiveFilter,
              ordered: c.ordered,
              deadLetterTopic: c.deadLetterTopic === "" ? undefined : c.deadLetterTopic,
            },
          ];
        }),
      ),
    ).toEqual(only(["topic", "eventType", "filter", "ordered", "deadLetterTopic"]));
    expect(
      Object.fromEntries(
        [...snapshot.events.values()].map((e) => [e.name, { type: e.type, topic: e.topic }]),
      ),
    ).toEqual(onlyEvents(["type", "topic"]));
  });

  it("should record the same names in the release manifest", () => {
    const events = new Map(manifest.events.map((e) => [e.name, e]));
    expect(
      Object.fromEntries(
        manifest.applications
          .flatMap((a) => a.subscriptions)
          .map((s) => {
            const event = required(events.get(s.event), `event ${s.event}`);
            return [
              s.name,
              {
                topic: event.topic,
                eventType: event.type,
                filter: s.filter,
                ordered: s.ordered,
                deadLetterTopic: s.deadLetterTopic === "" ? undefined : s.deadLetterTopic,
              },
            ];
          }),
      ),
    ).toEqual(only(["topic", "eventType", "filter", "ordered", "deadLetterTopic"]));
    expect(
      Object.fromEntries(manifest.events.map((e) => [e.name, { type: e.type, topic: e.topic }])),
    ).toEqual(onlyEvents(["type", "topic"]));
  });

  it("should show the same names in the catalog and its AsyncAPI document", () => {
    const events = new Map(catalog.events.map((e) => [e.typeName, e]));
    const subscriptions = catalog.applications.flatMap((a) => a.subscriptions);
    expect(
      Object.fromEntries(
        subscriptions.map((s) => [
          s.name,
          {
            topic: s.topic,
            eventType: required(events.get(s.eventType), `event ${s.eventType}`).type,
            filter: s.filter,
            ordered: s.ordered,
            deadLetterTopic: s.deadLetter?.topic,
            deadLetterSubscription: s.deadLetter?.subscription,
          },
        ]),
      ),
    ).toEqual(SUBSCRIPTIONS);
    expect(
      Object.fromEntries(
        catalog.events.map((e) => [
          e.typeName,
          { type: e.type, topic: e.topic, contentType: e.contentType },
        ]),
      ),
    ).toEqual(EVENTS);

    type Operation = {
      channel: { $ref: string };
      messages: { $ref: string }[];
      "x-protoevents-subscription": {
        filter: string;
        ordered: boolean;
        deadLetterTopic?: string;
        deadLetterSubscription?: string;
      };
    };
    type Header = { properties: Record<string, { const?: string }> };
    const document = buildAsyncApi(catalog, { version: "1.0.0" }) as {
      operations: Record<string, Operation>;
      channels: Record<string, { address: string; messages: Record<string, { $ref: string }> }>;
      components: { messages: Record<string, { headers: Header }> };
    };
    const byRef = <T>(ref: string, root: object): T =>
      ref
        .slice(2)
        .split("/")
        .reduce((node: unknown, key) => (node as Record<string, unknown>)[key], root) as T;
    const headerOf = (message: { $ref: string }, name: string): string | undefined => {
      const channelMessage = byRef<{ $ref: string }>(message.$ref, document);
      return byRef<{ headers: Header }>(channelMessage.$ref, document).headers.properties[name]
        ?.const;
    };
    expect(
      Object.fromEntries(
        Object.keys(SUBSCRIPTIONS).map((id) => {
          const operation = required(document.operations[id], `receive operation ${id}`);
          const x = operation["x-protoevents-subscription"];
          const message = required(operation.messages[0], `message of ${id}`);
          return [
            id,
            {
              topic: byRef<{ address: string }>(operation.channel.$ref, document).address,
              eventType: headerOf(message, "ce-type"),
              filter: x.filter,
              ordered: x.ordered,
              deadLetterTopic: x.deadLetterTopic,
              deadLetterSubscription: x.deadLetterSubscription,
            },
          ];
        }),
      ),
    ).toEqual(SUBSCRIPTIONS);
    expect(
      Object.fromEntries(
        Object.entries(document.components.messages).map(([name, m]) => [
          name,
          {
            type: m.headers.properties["ce-type"]?.const,
            contentType: m.headers.properties["content-type"]?.const,
          },
        ]),
      ),
    ).toEqual(onlyEvents(["type", "contentType"]));
  });

  it("should give sync the ids, dead-letter topics and handler names the generated code has", async () => {
    expect(
      Object.fromEntries(
        specs.flatMap((spec) =>
          spec.rpcs.map((rpc) => [rpc.subscription, { deadLetterTopic: rpc.deadLetterTopic }]),
        ),
      ),
    ).toEqual(only(["deadLetterTopic"]));
    // The handlers interfaces and their methods are the ones generated.
    const module = (await import(
      pathToFileURL(join(ws.dir, "generated", "shop", "v1", "shop_pe.ts")).href
    )) as Record<string, Record<string, { name: string }>>;
    expect(specs.map((spec) => spec.application)).toEqual(["billing", "mailer"]);
    for (const spec of specs) {
      expect(generatedCode).toContain(`export interface ${spec.interfaceName}<`);
      const app = required(
        registry.applications.find((a) => a.name === spec.application),
        `application ${spec.application}`,
      );
      const generatedSubscriptions = required(
        module[`${spec.serviceName}Subscriptions`],
        `${spec.serviceName}Subscriptions`,
      );
      expect(
        Object.fromEntries(
          Object.entries(generatedSubscriptions).map(([method, sub]) => [method, sub.name]),
        ),
      ).toEqual(Object.fromEntries(spec.rpcs.map((rpc) => [rpc.method, rpc.subscription])));
      expect(app.subscriptions.map((s) => s.name)).toEqual(spec.rpcs.map((r) => r.subscription));
    }
  });
});
