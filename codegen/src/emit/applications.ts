/**
 * Prints an application's side of its contracts: its subscriptions (one per
 * consumer rpc) and its contract (`XApplication`), and for an application
 * that consumes, the contexts its handlers get, the handlers interface, and
 * the functions that subscribe it with and without a store.
 */
import type { Printable } from "@bufbuild/protoplugin";
import type { ApplicationModel } from "../model.js";
import { type FileContext, leadingComment } from "./context.js";
import { handlerMethodName } from "./names.js";
import { validOf } from "./types.js";

/** Print the subscriptions and the contract of an application. */
export function emitApplication(ctx: FileContext, app: ApplicationModel): void {
  const { f } = ctx;
  const service = app.service;
  const names = ctx.names.application(service);
  const comment = leadingComment(service);
  f.print(
    f.jsDoc(
      `Subscriptions of application \`${app.name}\` (service ${service.typeName}), one per rpc.`,
    ),
  );
  f.print(f.export("const", names.subscriptions), " = {");
  for (const sub of app.subscriptions) {
    const event = sub.event;
    f.print(f.jsDoc(`\`${sub.name}\`: rpc ${sub.method.name}(${event.desc.typeName}).`, "  "));
    f.print(
      `  ${handlerMethodName(sub.method.name)}: /*@__PURE__*/ `,
      ctx.rt("defineSubscription"),
      "({",
    );
    f.print(`    application: ${JSON.stringify(app.name)},`);
    f.print(`    service: ${JSON.stringify(service.typeName)},`);
    f.print(`    rpc: ${JSON.stringify(sub.method.name)},`);
    f.print(`    name: ${JSON.stringify(sub.name)},`);
    f.print("    event: ", ctx.names.ref(event.desc, ctx.names.event(event.desc).contract), ",");
    f.print(`    maxDeliveryAttempts: ${sub.maxDeliveryAttempts},`);
    f.print(`    ackDeadlineSeconds: ${sub.ackDeadlineSeconds},`);
    f.print(`    minBackoffSeconds: ${sub.minBackoffSeconds},`);
    f.print(`    maxBackoffSeconds: ${sub.maxBackoffSeconds},`);
    if (sub.expirationTtlDays !== undefined) {
      f.print(`    expirationTtlDays: ${sub.expirationTtlDays},`);
    }
    f.print(`    messageRetentionSeconds: ${sub.messageRetentionSeconds},`);
    f.print(`    retainAckedMessages: ${sub.retainAckedMessages},`);
    if (sub.exactlyOnceDelivery) {
      f.print("    exactlyOnceDelivery: true,");
    }
    f.print(`    ordered: ${sub.ordered},`);
    f.print(`    filter: ${JSON.stringify(sub.filter)},`);
    f.print(
      `    deadLetter: ${sub.deadLetterIds === undefined ? "undefined" : `{ topic: ${JSON.stringify(sub.deadLetterIds.topic)}, subscription: ${JSON.stringify(sub.deadLetterIds.subscription)} }`},`,
    );
    f.print(`    siblingTypes: ${JSON.stringify(sub.siblingTypes)},`);
    f.print("  }),");
  }
  f.print("} as const;");
  f.print();
  f.print(
    f.jsDoc(
      `${comment === "" ? "" : `${comment}\n\n`}Contract of application \`${app.name}\`: what it publishes and consumes.`,
    ),
  );
  f.print(
    f.export("const", names.application),
    " = /*@__PURE__*/ ",
    ctx.rt("defineApplication"),
    "({",
  );
  f.print(`  name: ${JSON.stringify(app.name)},`);
  f.print(`  service: ${JSON.stringify(service.typeName)},`);
  if (app.retired.length > 0) {
    f.print(`  retiredSubscriptions: ${JSON.stringify(app.retired)},`);
  }
  f.print(
    "  publishes: [",
    ...joined(app.publishes.map((e) => ctx.names.ref(e.desc, ctx.names.event(e.desc).contract))),
    "],",
  );
  f.print(
    "  subscriptions: [",
    ...joined(
      app.subscriptions.map((s) => `${names.subscriptions}.${handlerMethodName(s.method.name)}`),
    ),
    "],",
  );
  f.print("});");
  f.print();
}

/**
 * Print what an application that consumes is implemented against: the
 * contexts, the handlers interface, and its subscribe functions with
 * exactly-once effects (a store) and at least once (none).
 */
export function emitConsumer(ctx: FileContext, app: ApplicationModel): void {
  const { f } = ctx;
  const service = app.service;
  const names = ctx.names.application(service);
  const publishes = app.publishes.length > 0;
  const transactionContext = ctx.rt("TransactionContext", true);
  const handlerContext = ctx.rt("HandlerContext", true);
  if (publishes) {
    f.print(
      f.jsDoc(
        `What handlers of \`${app.name}\` get with a store: the transaction, and the application's publisher writing into its outbox.`,
      ),
    );
    f.print(
      f.export("interface", names.context),
      "<DB = unknown> extends ",
      transactionContext,
      "<DB> {",
    );
    f.print(`  readonly publisher: ${names.publisher};`);
    f.print("}");
    f.print();
    f.print(
      f.jsDoc(
        `What handlers of \`${app.name}\` get without a store: the application's publisher, straight to Pub/Sub.`,
      ),
    );
    f.print(f.export("interface", names.atLeastOnceContext), " {");
    f.print(`  readonly publisher: ${names.publisher};`);
    f.print("}");
  } else {
    f.print(f.jsDoc(`What handlers of \`${app.name}\` get with a store: the transaction.`));
    f.print(f.export("type", names.context), "<DB = unknown> = ", transactionContext, "<DB>;");
    f.print();
    f.print(f.jsDoc(`What handlers of \`${app.name}\` get without a store: nothing more.`));
    f.print(f.export("type", names.atLeastOnceContext), " = object;");
  }
  f.print();
  f.print(
    f.jsDoc(
      `The business logic of application \`${app.name}\`: one method per consumer rpc of ${service.typeName}. ` +
        "Return to ack; throw to nack (Pub/Sub redelivers with the subscription's backoff, then dead-letters after max delivery attempts); " +
        "throw a PermanentError to dead-letter at once.\n\n" +
        `With a store (\`${names.subscribe}\`), each event's effects happen once: the inbox claim, the writes through \`context.tx\` and the events of \`context.publisher\` commit together, and a duplicate never reaches the handler. ` +
        `Without one (\`${names.subscribeAtLeastOnce}\`), delivery is at least once: the same event (same \`context.envelope.id\`) can arrive again and the handler must tolerate it.`,
    ),
  );
  f.print(f.export("interface", names.handlers), `<Context = ${names.context}> {`);
  for (const sub of app.subscriptions) {
    const rpcComment = leadingComment(sub.method);
    const settings = `Subscription \`${sub.name}\`: ${sub.maxDeliveryAttempts} delivery attempts, ack deadline ${sub.ackDeadlineSeconds} s, backoff ${sub.minBackoffSeconds}–${sub.maxBackoffSeconds} s${sub.ordered ? ", ordered" : ""}${sub.deadLetterIds === undefined ? ", no dead-letter topic" : `, dead letters to \`${sub.deadLetterIds.topic}\``}.`;
    f.print(f.jsDoc(`${rpcComment === "" ? "" : `${rpcComment}\n\n`}${settings}`, "  "));
    f.print(
      `  ${handlerMethodName(sub.method.name)}(event: `,
      ...validOf(ctx, sub.event.desc),
      ", context: ",
      handlerContext,
      "<typeof ",
      f.importSchema(sub.event.desc, true),
      "> & Context): Promise<void> | void;",
    );
  }
  f.print("}");
  f.print();
  const subscriptionIds = app.subscriptions.map((s) => `\`${s.name}\``).join(", ");
  const consumerOptions = ctx.rt("ConsumerOptions", true);
  const consumer = ctx.rt("Consumer", true);
  f.print(
    f.jsDoc(
      `Consume every subscription of application \`${app.name}\` (${subscriptionIds}) with exactly-once effects: each delivery runs in a transaction of \`options.store\` that claims the event in the inbox first. Close the returned consumer to stop gracefully.`,
    ),
  );
  f.print(
    f.export("function", names.subscribe),
    "<DB>(pubsub: ",
    ctx.pubsub,
    `, handlers: ${names.handlers}<${names.context}<DB>>, options: `,
    consumerOptions,
    " & { readonly store: ",
    ctx.rt("Store", true),
    "<DB> }): ",
    consumer,
    " {",
  );
  f.print(
    `  const context = (tx: `,
    ctx.rt("StoreTransaction", true),
    `<DB>): ${names.context}<DB> => (${publishes ? `{ tx, publisher: ${names.outbox}(tx) }` : "{ tx }"});`,
  );
  f.print("  return ", ctx.rt("startConsumer"), "(pubsub, [");
  for (const sub of app.subscriptions) {
    const method = handlerMethodName(sub.method.name);
    f.print(
      "    ",
      ctx.rt("bindHandler"),
      `(${names.subscriptions}.${method}, (event, c) => handlers.${method}(event as `,
      ...validOf(ctx, sub.event.desc),
      ", ",
      ctx.rt("withTransaction"),
      "(c, context))),",
    );
  }
  f.print("  ], options);");
  f.print("}");
  f.print();
  f.print(
    f.jsDoc(
      `Consume every subscription of application \`${app.name}\` (${subscriptionIds}) without a store: delivery is at least once, so a handler sees an event again after a redelivery and must tolerate duplicates. Close the returned consumer to stop gracefully.`,
    ),
  );
  f.print(
    f.export("function", names.subscribeAtLeastOnce),
    "(pubsub: ",
    ctx.pubsub,
    `, handlers: ${names.handlers}<${names.atLeastOnceContext}>, options?: Omit<`,
    consumerOptions,
    ', "store">): ',
    consumer,
    " {",
  );
  if (publishes) {
    f.print(
      `  const publisher = ${names.createPublisher}(pubsub, options?.logger === undefined ? {} : { logger: options.logger });`,
    );
  }
  f.print("  return ", ctx.rt("startConsumer"), "(pubsub, [");
  for (const sub of app.subscriptions) {
    const method = handlerMethodName(sub.method.name);
    f.print(
      "    ",
      ctx.rt("bindHandler"),
      `(${names.subscriptions}.${method}, (event, c) => handlers.${method}(event as `,
      ...validOf(ctx, sub.event.desc),
      publishes ? ", { ...c, publisher }))," : ", c)),",
    );
  }
  f.print("  ], options);");
  f.print("}");
  f.print();
}

/** `a, b, c`, keeping each item's imports. */
function joined(items: Printable[]): Printable[] {
  return items.flatMap((item, i) => (i === 0 ? [item] : [", ", item]));
}
