/**
 * Prints what producers and consumers of an event share: its topic and type
 * constants, its contract (`XEvent`), and the functions that encode and decode
 * it as a Pub/Sub message. Also prints the typed publisher of an application:
 * one method per event it may publish, bound to Pub/Sub or to an outbox.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import type { ApplicationModel, EventModel } from "../model.js";
import { reachedFields } from "./analysis.js";
import { type FileContext, leadingComment } from "./context.js";
import { inputOf, validOf } from "./types.js";

/** Print the constants, contract, encoder and decoder of an event. */
export function emitEvent(ctx: FileContext, event: EventModel): void {
  const { f } = ctx;
  const message = event.desc;
  const names = ctx.names.event(message);
  const shape = f.importShape(message);
  const valid = validOf(ctx, message);
  const comment = leadingComment(message);
  f.print(f.jsDoc(`Pub/Sub topic of event ${message.typeName}.`));
  f.print(f.export("const", names.topicConstant), ` = ${JSON.stringify(event.topic)};`);
  f.print();
  f.print(f.jsDoc(`CloudEvents type (\`ce-type\`) of event ${message.typeName}.`));
  f.print(f.export("const", names.typeConstant), ` = ${JSON.stringify(event.type)};`);
  f.print();
  const facts = [
    `topic \`${event.topic}\``,
    event.orderingKeyField === undefined
      ? "no ordering key"
      : `ordering key \`${event.orderingKeyField.name}\``,
    event.subjectField === undefined ? "no subject" : `subject \`${event.subjectField.name}\``,
    `${event.encoding} payload`,
  ];
  f.print(
    f.jsDoc(
      `${comment === "" ? "" : `${comment}\n\n`}Contract of event ${message.typeName}: ${facts.join(", ")}.`,
    ),
  );
  f.print(
    f.export("const", names.contract),
    ": ",
    ctx.rt("EventContract", true),
    "<typeof ",
    f.importSchema(message, true),
    "> = /*@__PURE__*/ ",
    ctx.rt("defineEvent"),
    "({",
  );
  f.print("  schema: ", f.importSchema(message), ",");
  f.print(`  type: ${names.typeConstant},`);
  f.print(`  topic: ${names.topicConstant},`);
  f.print(`  encoding: "${event.encoding}",`);
  f.print(`  dataschema: ${JSON.stringify(event.dataschema)},`);
  f.print(`  maxBytes: ${event.maxBytes},`);
  if (event.messageRetentionSeconds !== undefined) {
    f.print(`  messageRetentionSeconds: ${event.messageRetentionSeconds},`);
  }
  f.print(
    `  orderingKeyField: ${event.orderingKeyField === undefined ? "undefined" : JSON.stringify(event.orderingKeyField.name)},`,
  );
  f.print(`  orderingKey: ${keyReader(event.orderingKeyField)},`);
  f.print(`  subject: ${keyReader(event.subjectField)},`);
  f.print(`  validate: ${ctx.names.message(message).validator},`);
  f.print(`  piiFields: ${JSON.stringify(piiFields(ctx, message))},`);
  f.print("});");
  f.print();
  f.print(
    f.jsDoc(
      `Encode ${message.typeName} as a Pub/Sub message in CloudEvents binary content mode (attributes \`ce-*\`, payload in \`data\` as a Buffer, ordering key from the contract). Does not validate; generated publishers do.`,
    ),
  );
  f.print(
    f.export("function", names.encode),
    "(event: ",
    shape,
    ", options: ",
    ctx.rt("EncodeOptions", true),
    "): ",
    ctx.rt("OutgoingMessage", true),
    " {",
  );
  f.print("  return ", ctx.rt("encodeEvent"), `(${names.contract}, event, options);`);
  f.print("}");
  f.print();
  f.print(
    f.jsDoc(
      `Decode a Pub/Sub message as ${message.typeName} with its envelope, and check its field rules.\n\n@throws ProtoeventsError \`unknown_event_type\`, \`decode_failed\` or \`validation_failed\`, all permanent.`,
    ),
  );
  f.print(
    f.export("function", names.decode),
    "(message: ",
    ctx.rt("IncomingMessage", true),
    "): { event: ",
    ...valid,
    "; envelope: ",
    ctx.rt("Envelope", true),
    " } {",
  );
  f.print("  const decoded = ", ctx.rt("decodeValidEvent"), `(${names.contract}, message);`);
  f.print("  return { event: decoded.event as ", ...valid, ", envelope: decoded.envelope };");
  f.print("}");
  f.print();
}

/** The fields marked pii in the event and every message it reaches, as `<message>.<field>`. */
function piiFields(ctx: FileContext, root: DescMessage): string[] {
  const out: string[] = [];
  for (const field of reachedFields(root)) {
    if (ctx.model.rules.get(field)?.pii === true) {
      out.push(`${field.parent.typeName}.${field.name}`);
    }
  }
  return out;
}

/** The function that reads an ordering key or subject from an event, as a string. */
function keyReader(field: DescField | undefined): string {
  if (field === undefined) {
    return "undefined";
  }
  const access = `event.${field.localName}`;
  if (field.scalar === ScalarType.STRING) {
    return `(event) => ${access}`;
  }
  return `(event) => String(${access})`;
}

/**
 * Print the typed publisher of an application that publishes: its interface,
 * the function that binds it to a sink, and the two sinks (Pub/Sub, outbox).
 */
export function emitPublisher(ctx: FileContext, app: ApplicationModel): void {
  const { f } = ctx;
  const names = ctx.names.application(app.service);
  const source = JSON.stringify(app.name);
  const publishOptions = ctx.rt("PublishOptions", true);
  const publishResult = ctx.rt("PublishResult", true);
  f.print(
    f.jsDoc(
      `The events application \`${app.name}\` may publish, and no others. Each method checks the field rules first and refuses an invalid event.`,
    ),
  );
  f.print(f.export("interface", names.publisher), " {");
  for (const event of app.publishes) {
    f.print(f.jsDoc(`Publish ${event.desc.typeName} on topic \`${event.topic}\`.`, "  "));
    f.print(
      `  ${ctx.names.event(event.desc).publish}(event: `,
      ...inputOf(ctx, event.desc),
      ", options?: ",
      publishOptions,
      "): Promise<",
      publishResult,
      ">;",
    );
  }
  f.print("}");
  f.print();
  f.print(
    f.jsDoc(
      `Bind the typed publisher of \`${app.name}\` to a sink: Pub/Sub or an outbox.\n\n@internal`,
    ),
  );
  f.print(
    f.export("function", names.bindPublisher),
    "(sink: ",
    ctx.rt("EventSink", true),
    `): ${names.publisher} {`,
  );
  f.print("  return {");
  for (const event of app.publishes) {
    const eventNames = ctx.names.event(event.desc);
    f.print(
      `    ${eventNames.publish}: (event, options) => sink.publish(`,
      ctx.names.ref(event.desc, eventNames.contract),
      ", event, options),",
    );
  }
  f.print("  };");
  f.print("}");
  f.print();
  f.print(
    f.jsDoc(
      `Publish straight to Pub/Sub as application \`${app.name}\` (\`ce-source: ${app.name}\`): each method resolves once Pub/Sub accepted the event. Outside a store transaction only; with a store, write events through \`${names.outbox}(tx)\` so they commit with the state change.`,
    ),
  );
  f.print(
    f.export("function", names.createPublisher),
    "(pubsub: ",
    ctx.pubsub,
    ", options?: Omit<",
    ctx.rt("EventPublisherOptions", true),
    `, "source">): ${names.publisher} & { flush(): Promise<void> } {`,
  );
  f.print(
    "  const publisher = ",
    ctx.rt("createEventPublisher"),
    `(pubsub, { ...options, source: ${source} });`,
  );
  f.print(`  return { ...${names.bindPublisher}(publisher), flush: () => publisher.flush() };`);
  f.print("}");
  f.print();
  f.print(
    f.jsDoc(
      `Write events of application \`${app.name}\` into the outbox of a store transaction: they commit or roll back with it, and the outbox relay publishes them after commit. Use it wherever state changes and events must agree, e.g. in an API call: \`store.transaction(async (tx) => { …; await ${names.outbox}(tx).publish…(…); })\`.`,
    ),
  );
  f.print(
    f.export("function", names.outbox),
    "<DB>(tx: ",
    ctx.rt("StoreTransaction", true),
    `<DB>): ${names.publisher} {`,
  );
  f.print(`  return ${names.bindPublisher}(`, ctx.rt("createOutboxSink"), `(tx, ${source}));`);
  f.print("}");
  f.print();
}
