/**
 * Composes one `<file>_pe.ts` from the contract model, in this order: for
 * each message (nested ones after their parent) its Input and Valid types
 * and its validator; then each event's contract; then each application's
 * subscriptions, publisher and consumer.
 */
import type { DescFile } from "@bufbuild/protobuf";
import type { GeneratedFile } from "@bufbuild/protoplugin";
import type { ContractModel } from "../model.js";
import { type Analysis, messagesOf } from "./analysis.js";
import { emitApplication, emitConsumer } from "./applications.js";
import { createFileContext, type EmitOptions } from "./context.js";
import { emitEvent, emitPublisher } from "./events.js";
import { emitMessageTypes } from "./types.js";
import { emitValidator } from "./validators.js";

/** Print everything for a proto file into `f`. Returns false when there was nothing to print. */
export function emitFile(
  f: GeneratedFile,
  file: DescFile,
  model: ContractModel,
  analysis: Analysis,
  options: EmitOptions,
): boolean {
  const messages = messagesOf(file);
  const events = [...model.events.values()].filter((e) => e.desc.file === file);
  const applications = model.applications.filter((a) => a.service.file === file);
  const printed =
    messages.some(
      (m) => analysis.validated.has(m) || analysis.withInput.has(m) || analysis.withValid.has(m),
    ) ||
    events.length > 0 ||
    applications.length > 0;
  if (!printed) {
    return false;
  }
  const ctx = createFileContext(f, file, model, analysis, options);
  f.preamble(file);
  for (const message of messages) {
    emitMessageTypes(ctx, message);
    if (analysis.validated.has(message)) {
      emitValidator(ctx, message);
    }
  }
  for (const event of events) {
    emitEvent(ctx, event);
  }
  for (const application of applications) {
    emitApplication(ctx, application);
    if (application.publishes.length > 0) {
      emitPublisher(ctx, application);
    }
    if (application.subscriptions.length > 0) {
      emitConsumer(ctx, application);
    }
  }
  return true;
}
