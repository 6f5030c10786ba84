/**
 * The static HTML event catalog: one self-contained page (inline CSS, inline
 * SVG, no script, no external request) with the flow graph, every
 * application, every event with its fields, comments, rules, `pii` marks and
 * owners, the types they contain, and every topic.
 */
import { escapeXml, layoutFlowGraph, renderFlowGraphSvg } from "./layout-flow-graph.js";
import type {
  Catalog,
  CatalogEnum,
  CatalogField,
  CatalogMessage,
  CatalogSubscription,
} from "./load-catalog.js";

/** Options of {@link renderCatalogHtml}. */
export interface CatalogHtmlOptions {
  /** The page title. @default "protoevents event catalog" */
  readonly title?: string;
  /** The version of the contracts, shown under the title. */
  readonly version: string;
  /** The AsyncAPI file written next to the page, linked from it. */
  readonly asyncApiFile?: string;
}

const CSS = `
:root { color-scheme: light; --ink: #0f172a; --muted: #475569; --line: #e2e8f0; --accent: #2563eb; --pii: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f8fafc; }
header { padding: 24px 32px 12px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: var(--muted); }
nav { padding: 8px 32px; background: #fff; border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 1; }
nav a { margin-right: 16px; }
main { padding: 16px 32px 48px; max-width: 1400px; }
section { margin-top: 24px; }
h2 { font-size: 20px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 17px; margin: 0 0 4px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px; margin: 12px 0; }
.meta { color: var(--muted); margin: 4px 0 8px; }
.meta span { margin-right: 16px; }
.comment p { margin: 4px 0; }
table { border-collapse: collapse; width: 100%; margin-top: 8px; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-top: 1px solid var(--line); }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; font-weight: 600; margin: 1px 4px 1px 0; background: #e2e8f0; color: var(--ink); }
.badge.pii { background: #fee2e2; color: var(--pii); }
.badge.required { background: #dbeafe; color: #1e40af; }
.badge.rule { background: #f1f5f9; color: var(--muted); font-weight: 500; }
.graph svg { display: block; max-width: 100%; height: auto; }
.graph { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
.flow-graph text { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; dominant-baseline: central; text-anchor: middle; fill: var(--ink); }
.flow-graph text.heading { font: 600 13px system-ui, sans-serif; fill: var(--muted); }
.flow-graph .node rect { stroke-width: 1.2; }
.flow-graph .producer rect, .flow-graph .consumer rect { fill: #dbeafe; stroke: #2563eb; }
.flow-graph .topic rect { fill: #fef3c7; stroke: #d97706; }
.flow-graph .subscription rect { fill: #f1f5f9; stroke: #64748b; }
.flow-graph .dead-letter rect { fill: #fee2e2; stroke: #dc2626; }
.flow-graph .dead-letter text { font-size: 11px; fill: #991b1b; }
.flow-graph .edge { fill: none; stroke: #94a3b8; stroke-width: 1.3; }
.flow-graph .edge.dead-letter { stroke: #dc2626; stroke-dasharray: 4 3; }
.legend { color: var(--muted); font-size: 13px; margin-top: 6px; }
`;

function paragraphs(comment: string): string {
  if (comment === "") {
    return "";
  }
  return `<div class="comment">${comment
    .split(/\n\s*\n/)
    .map((p) => `<p>${escapeXml(p.replace(/\s+/g, " ").trim())}</p>`)
    .join("")}</div>`;
}

const anchor = (kind: string, name: string): string => `${kind}-${name}`;
const link = (kind: string, name: string, text = name): string =>
  `<a href="#${escapeXml(anchor(kind, name))}"><code>${escapeXml(text)}</code></a>`;

function typeCell(field: CatalogField, messages: ReadonlySet<string>): string {
  const type = escapeXml(field.type);
  if (field.typeRef === undefined) {
    return `<code>${type}</code>`;
  }
  const kind = messages.has(field.typeRef) ? "type" : "enum";
  return `<a href="#${escapeXml(anchor(kind, field.typeRef))}"><code>${type}</code></a>`;
}

function fieldsTable(message: CatalogMessage, messages: ReadonlySet<string>): string {
  if (message.fields.length === 0) {
    return `<p class="meta">No fields.</p>`;
  }
  const rows = message.fields.map((f) => {
    const badges = [
      ...(f.pii ? [`<span class="badge pii" title="personal data">pii</span>`] : []),
      ...(f.required ? [`<span class="badge required">required</span>`] : []),
      ...f.rules
        .filter((r) => r !== "required" && !r.startsWith("pii"))
        .map((r) => `<span class="badge rule">${escapeXml(r)}</span>`),
    ];
    return (
      `<tr class="field${f.pii ? " pii" : ""}" data-field="${escapeXml(f.name)}">` +
      `<td><code>${escapeXml(f.name)}</code> <span class="meta mono">${f.number}</span></td>` +
      `<td>${typeCell(f, messages)}</td><td>${badges.join("")}</td>` +
      `<td>${escapeXml(f.comment.replace(/\s+/g, " "))}</td></tr>`
    );
  });
  return `<table><thead><tr><th>field</th><th>type</th><th>rules</th><th>description</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function subscriptionRow(sub: CatalogSubscription): string {
  const settings = [
    `${sub.maxDeliveryAttempts} attempts`,
    `ack ${sub.ackDeadlineSeconds} s`,
    `backoff ${sub.minBackoffSeconds}–${sub.maxBackoffSeconds} s`,
    ...(sub.ordered ? ["ordered"] : []),
    ...(sub.filter === "" ? [] : [`filter ${sub.filter}`]),
  ].join(", ");
  return (
    `<tr><td><code>${escapeXml(sub.name)}</code></td><td>${link("event", sub.eventType)}</td>` +
    `<td>${link("topic", sub.topic)}</td><td>${escapeXml(settings)}</td>` +
    `<td>${sub.deadLetter === undefined ? "—" : link("topic", sub.deadLetter.topic)}</td>` +
    `<td>${escapeXml(sub.comment.replace(/\s+/g, " "))}</td></tr>`
  );
}

function enumCard(e: CatalogEnum): string {
  const rows = e.values
    .map(
      (v) =>
        `<tr><td><code>${escapeXml(v.name)}</code></td><td class="mono">${v.number}</td><td>${escapeXml(v.comment.replace(/\s+/g, " "))}</td></tr>`,
    )
    .join("");
  return (
    `<div class="card" id="${escapeXml(anchor("enum", e.typeName))}"><h3><code>${escapeXml(e.typeName)}</code> <span class="badge">enum</span></h3>` +
    `${paragraphs(e.comment)}<table><thead><tr><th>value</th><th>number</th><th>description</th></tr></thead><tbody>${rows}</tbody></table></div>`
  );
}

/** Render the catalog page. */
export function renderCatalogHtml(catalog: Catalog, options: CatalogHtmlOptions): string {
  const title = options.title ?? "protoevents event catalog";
  const messages = new Set([...catalog.events, ...catalog.types].map((m) => m.typeName));
  const graph = renderFlowGraphSvg(layoutFlowGraph(catalog));
  const eventTopics = catalog.topics.filter((t) => t.kind === "event");
  const deadLetterTopics = catalog.topics.filter((t) => t.kind === "dead-letter");

  const services = catalog.applications.map((app) => {
    const comments = app.services
      .map(
        (s) =>
          `<p class="meta">Service <code>${escapeXml(s.typeName)}</code></p>${paragraphs(s.comment)}`,
      )
      .join("");
    const publishes =
      app.publishes.length === 0
        ? "nothing"
        : app.publishes.map((type) => link("event", type)).join(", ");
    const subs =
      app.subscriptions.length === 0
        ? `<p class="meta">Consumes nothing.</p>`
        : `<table><thead><tr><th>subscription</th><th>event</th><th>topic</th><th>settings</th><th>dead letters</th><th>what it does</th></tr></thead><tbody>${app.subscriptions.map(subscriptionRow).join("")}</tbody></table>`;
    return (
      `<div class="card service" id="${escapeXml(anchor("service", app.name))}" data-service="${escapeXml(app.name)}">` +
      `<h3>${escapeXml(app.name)}</h3>${comments}<p><strong>Publishes:</strong> ${publishes}</p>${subs}</div>`
    );
  });

  const events = catalog.events.map((event) => {
    const owners =
      event.owners.length === 0
        ? "no application declares it"
        : event.owners.map((o) => link("service", o)).join(", ");
    const consumers =
      event.subscriptions.length === 0
        ? "none"
        : event.subscriptions
            .map((s) => `${link("service", s.application)} (<code>${escapeXml(s.name)}</code>)`)
            .join(", ");
    const pii = event.fields.filter((f) => f.pii).map((f) => f.name);
    return (
      `<div class="card event" id="${escapeXml(anchor("event", event.typeName))}" data-event="${escapeXml(event.typeName)}">` +
      `<h3><code>${escapeXml(event.typeName)}</code></h3>` +
      `<div class="meta"><span>topic ${link("topic", event.topic)}</span>` +
      `<span>ordering key <code>${escapeXml(event.orderingKey ?? "—")}</code></span>` +
      `<span>subject <code>${escapeXml(event.subject ?? "—")}</code></span>` +
      `<span>${escapeXml(event.contentType)}</span><span class="mono">${escapeXml(event.file)}</span></div>` +
      paragraphs(event.comment) +
      `<p><strong>Owners (publish it):</strong> ${owners}<br><strong>Consumers:</strong> ${consumers}` +
      (pii.length === 0
        ? ""
        : `<br><strong>Personal data:</strong> ${pii.map((p) => `<code>${escapeXml(p)}</code>`).join(", ")} <span class="badge pii">pii</span> redacted in logs and dead-letter views`) +
      `</p>${fieldsTable(event, messages)}</div>`
    );
  });

  const types = catalog.types.map(
    (type) =>
      `<div class="card" id="${escapeXml(anchor("type", type.typeName))}"><h3><code>${escapeXml(type.typeName)}</code></h3>` +
      `<div class="meta mono">${escapeXml(type.file)}</div>${paragraphs(type.comment)}${fieldsTable(type, messages)}</div>`,
  );

  const topicRows = [...eventTopics, ...deadLetterTopics].map(
    (t) =>
      `<tr id="${escapeXml(anchor("topic", t.name))}"><td><code>${escapeXml(t.name)}</code></td>` +
      `<td>${t.kind === "event" ? "event topic" : `dead letters of <code>${escapeXml(t.deadLetterOf ?? "")}</code>`}</td>` +
      `<td>${t.eventTypes.map((e) => link("event", e)).join(", ")}</td>` +
      `<td>${t.subscriptions.length === 0 ? "—" : t.subscriptions.map((s) => `<code>${escapeXml(s)}</code>`).join(", ")}</td></tr>`,
  );

  const subscriptionCount = catalog.applications.reduce((n, a) => n + a.subscriptions.length, 0);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<link rel="icon" href="data:,">
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${escapeXml(title)}</h1>
<p>Contracts version ${escapeXml(options.version)} · ${catalog.events.length} events · ${catalog.applications.length} services · ${eventTopics.length} topics · ${subscriptionCount} subscriptions · ${deadLetterTopics.length} dead-letter topics${options.asyncApiFile === undefined ? "" : ` · <a href="${escapeXml(options.asyncApiFile)}">AsyncAPI 3.0 document</a>`}</p>
<p>Generated by <code>protoevents catalog</code> from the <code>.proto</code> contracts; do not edit.</p>
</header>
<nav><a href="#flow">Flow</a><a href="#services">Services</a><a href="#events">Events</a><a href="#types">Types</a><a href="#topics">Topics</a></nav>
<main>
<section id="flow">
<h2>Flow</h2>
<div class="graph">
${graph}
</div>
<p class="legend">Publishing applications → topics → subscriptions (one per consumer rpc) → consuming applications. Red, dashed: each subscription's dead-letter topic, where what it cannot process goes (inspect and replay with <code>protoevents dlq</code>).</p>
</section>
<section id="services">
<h2>Services</h2>
${services.join("\n")}
</section>
<section id="events">
<h2>Events</h2>
${events.join("\n")}
</section>
<section id="types">
<h2>Types</h2>
${types.join("\n")}
${catalog.enums.map(enumCard).join("\n")}
</section>
<section id="topics">
<h2>Topics</h2>
<div class="card"><table><thead><tr><th>topic</th><th>kind</th><th>events</th><th>subscriptions</th></tr></thead><tbody>${topicRows.join("")}</tbody></table></div>
</section>
</main>
</body>
</html>
`;
}
