import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { PubSub } from "@google-cloud/pubsub";
import {
  createLogger,
  createPubSub,
  type Emulator,
  provision,
  startEmulator,
  toJsonView,
} from "@protoevents/runtime";
import {
  createOrderSagaServicePublisher,
  createPaymentServicePublisher,
  PaymentServiceSubscriptions,
  subscribeOrderSagaServiceAtLeastOnce,
  subscribePaymentServiceAtLeastOnce,
} from "../../generated/checkout/v1/applications_pe.js";
import { OrderPlacedEvent } from "../../generated/checkout/v1/order_events_pe.js";
import { PaymentDeclineCode } from "../../generated/checkout/v1/payment_events_pb.js";
import { registry } from "../../generated/protoevents_registry.js";

/** Card tokens the demo's payment handler declines. */
const DECLINED_TOKEN = "tok_declined";
/** How many received events are printed in full; the rest only count. */
const SHOWN_IN_FULL = 2;

/**
 * The spine, end to end: the real emulator, provisioned from the contracts; a
 * generated producer places orders; the payment service's generated consumer
 * decodes them (printing the envelope and the redacted payload), charges or
 * declines, and publishes the outcome with its generated publisher; the order
 * saga's consumer counts outcomes; one garbage message shows dead-lettering.
 */
export async function runDemo(options: { orders: number; rate: number }): Promise<void> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const log = createLogger({ app: "demo" });
  log.level = process.env.PROTOEVENTS_LOG_LEVEL ?? "warn";
  let emulator: Emulator | undefined;
  let endpoint = process.env.PUBSUB_EMULATOR_HOST;
  if (endpoint === undefined || endpoint === "") {
    out("starting the Pub/Sub emulator…");
    emulator = await startEmulator();
    endpoint = emulator.endpoint;
  }
  const pubsub: PubSub = createPubSub({ projectId: "protoevents-demo", emulatorHost: endpoint });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const { plan } = await provision(pubsub, registry, { dryRun: false });
    const created = plan.actions.filter((a) => a.kind === "create").length;
    out(`emulator ${endpoint}: provisioned ${created} topics and subscriptions from the contracts`);

    const counts = {
      placed: 0,
      received: 0,
      charged: 0,
      declined: 0,
      deadLettered: 0,
      outcomes: 0,
    };
    const payments = createPaymentServicePublisher(pubsub, { logger: log });
    const paymentConsumer = subscribePaymentServiceAtLeastOnce(
      pubsub,
      {
        async chargeOrder(event, context) {
          counts.received++;
          if (counts.received <= SHOWN_IN_FULL) {
            out(`payment received ${event.$typeName} (attempt ${context.deliveryAttempt}):`);
            out(
              JSON.stringify(
                toJsonView(OrderPlacedEvent, { event, envelope: context.envelope }),
                null,
                2,
              ),
            );
          }
          if (event.paymentToken === DECLINED_TOKEN) {
            await payments.publishPaymentFailed({
              orderId: event.orderId,
              declineCode: PaymentDeclineCode.CARD_DECLINED,
              reason: "the card issuer declined the charge",
              amount: event.total,
              failedAt: timestampNow(),
            });
            counts.declined++;
          } else {
            await payments.publishPaymentProcessed({
              orderId: event.orderId,
              paymentId: `pay-${event.orderId}`,
              amount: event.total,
              processedAt: timestampNow(),
            });
            counts.charged++;
          }
        },
        refundOrder() {},
      },
      {
        logger: log,
        onDelivery: (o) => {
          if (o.result === "dead-lettered") {
            counts.deadLettered++;
            out(`dead-lettered on ${o.subscription}: ${o.error?.code} (${o.error?.rawMessage})`);
          }
        },
      },
    );
    const count = () => {
      counts.outcomes++;
    };
    const sagaConsumer = subscribeOrderSagaServiceAtLeastOnce(
      pubsub,
      {
        onPaymentProcessed: count,
        onPaymentFailed: count,
        onPaymentRefunded() {},
        onInventoryReserved() {},
        onInventoryReservationFailed() {},
        onInventoryReleased() {},
      },
      { logger: log },
    );

    const orders = createOrderSagaServicePublisher(pubsub, { logger: log });
    const interval = 1000 / options.rate;
    const started = Date.now();
    for (let i = 1; i <= options.orders && !stop.signal.aborted; i++) {
      const orderId = `ord-${String(i).padStart(4, "0")}`;
      await orders.publishOrderPlaced({
        orderId,
        customerId: `cust-${(i % 7) + 1}`,
        customerEmail: `customer${(i % 7) + 1}@example.com`,
        items: [
          {
            productId: "sku-keyboard",
            quantity: 1,
            unitPrice: { currencyCode: "EUR", amountMinor: 7990n },
          },
        ],
        total: { currencyCode: "EUR", amountMinor: 7990n },
        shippingAddress: {
          recipientName: "Ada Lovelace",
          line1: "12 St James's Square",
          city: "London",
          countryCode: "GB",
        },
        paymentToken: i % 5 === 0 ? DECLINED_TOKEN : "tok_visa_4242",
        placedAt: timestampNow(),
      });
      counts.placed++;
      if (i === Math.ceil(options.orders / 2)) {
        // A poison message from a producer that ignores the contract.
        await pubsub
          .topic(OrderPlacedEvent.topic)
          .publishMessage({ data: Buffer.from("not protobuf") });
      }
      const wait = started + i * interval - Date.now();
      if (wait > 0) {
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
    const progress = () =>
      `placed ${counts.placed} · charged ${counts.charged} · declined ${counts.declined} · outcomes seen by the saga ${counts.outcomes} · dead-lettered ${counts.deadLettered}`;
    const deadline = Date.now() + 60_000;
    while (
      !stop.signal.aborted &&
      (counts.outcomes < counts.placed || counts.deadLettered < 1) &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    out(progress());
    await paymentConsumer.close();
    await sagaConsumer.close();
    out(
      counts.outcomes === counts.placed && counts.deadLettered === 1
        ? `every order reached the saga; dead letters wait on ${PaymentServiceSubscriptions.chargeOrder.deadLetter?.topic}`
        : "stopped before every order was processed",
    );
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    await pubsub.close();
    await emulator?.stop();
  }
}
