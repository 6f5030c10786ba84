/**
 * The flow graph of the contracts, laid out in columns and rendered to SVG:
 * producing applications → topics → subscriptions → consuming applications,
 * with each subscription's dead-letter topic beside it.
 *
 * The layout is a fixed-column layered layout written for this one shape
 * (no layout library): subscriptions are the densest column and get one row
 * each, grouped by topic; every other node sits at the mean height of its
 * neighbours (the barycenter heuristic), pushed apart where they would
 * overlap. Dead-letter topics sit half a row below their subscription, so
 * the straight first stretch of every subscription → consumer edge passes
 * between them.
 */
import type { Catalog, CatalogSubscription } from "./load-catalog.js";

/** The columns, left to right. */
export type FlowColumn = "producer" | "topic" | "subscription" | "dead-letter" | "consumer";

/** A box in the graph. */
export interface FlowNode {
  readonly id: string;
  readonly column: FlowColumn;
  /** The text in the box: an application, topic or subscription id. */
  readonly label: string;
  /** Shown on hover. */
  readonly tooltip: string;
  readonly x: number;
  /** Vertical centre. */
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** An arrow between two boxes. */
export interface FlowEdge {
  readonly from: string;
  readonly to: string;
  readonly kind: "publish" | "deliver" | "consume" | "dead-letter";
}

/** A laid-out graph. */
export interface FlowGraph {
  readonly nodes: readonly FlowNode[];
  readonly edges: readonly FlowEdge[];
  readonly width: number;
  readonly height: number;
  /** Column headings: label and horizontal centre. */
  readonly headings: readonly { readonly label: string; readonly x: number }[];
}

/** Vertical distance between two subscription rows. */
const ROW = 40;
const NODE_HEIGHT = 24;
const DEAD_LETTER_HEIGHT = 18;
/** Smallest vertical gap between two boxes of one column. */
const MIN_GAP = 8;
/** Horizontal space between columns, where the edges run. */
const COLUMN_GAP = 56;
const MARGIN = 16;
/** Room for the column headings. */
const TOP = 48;
/** Width of one character of the labels (12 px monospace; 11 px for dead-letter topics) and the padding around a label. */
const CHAR_WIDTH = 7.3;
const SMALL_CHAR_WIDTH = 6.7;
const PADDING = 20;

const HEADINGS: Record<FlowColumn, string> = {
  producer: "publishers",
  topic: "topics",
  subscription: "subscriptions",
  "dead-letter": "dead-letter topics",
  consumer: "consumers",
};

interface Draft {
  id: string;
  column: FlowColumn;
  label: string;
  tooltip: string;
  y: number;
  height: number;
}

const mean = (values: readonly number[]): number | undefined =>
  values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length;

/** Place boxes at their wished heights, in that order, pushing each below the one before if they overlap. */
function spread(nodes: Draft[], wished: Map<Draft, number>): void {
  const ordered = [...nodes].sort(
    (a, b) => (wished.get(a) ?? 0) - (wished.get(b) ?? 0) || a.label.localeCompare(b.label),
  );
  let bottom = Number.NEGATIVE_INFINITY;
  for (const node of ordered) {
    const y = Math.max(wished.get(node) ?? 0, bottom + MIN_GAP + node.height / 2);
    node.y = y;
    bottom = y + node.height / 2;
  }
}

/** Rounds of the barycenter heuristic; the order settles after a few. */
const ORDERING_ROUNDS = 8;

/**
 * The subscriptions top to bottom: first grouped by topic, then repeatedly
 * sorted by the mean of their topic's and their consumer's position (each
 * the mean row of its subscriptions), which pulls a consumer's
 * subscriptions together without tearing a topic's apart.
 */
function orderSubscriptions(catalog: Catalog): CatalogSubscription[] {
  const topicIndex = new Map(catalog.topics.map((t, i) => [t.name, i]));
  let order = catalog.applications
    .flatMap((a) => a.subscriptions)
    .sort(
      (a, b) =>
        (topicIndex.get(a.topic) ?? 0) - (topicIndex.get(b.topic) ?? 0) ||
        a.name.localeCompare(b.name),
    );
  for (let round = 0; round < ORDERING_ROUNDS; round++) {
    const rows = new Map(order.map((s, i) => [s.name, i]));
    const position = (names: readonly string[]) =>
      mean(names.map((name) => rows.get(name) ?? 0)) ?? 0;
    const topicPosition = new Map(catalog.topics.map((t) => [t.name, position(t.subscriptions)]));
    const consumerPosition = new Map(
      catalog.applications.map((a) => [a.name, position(a.subscriptions.map((s) => s.name))]),
    );
    const key = (s: CatalogSubscription) =>
      ((topicPosition.get(s.topic) ?? 0) + (consumerPosition.get(s.application) ?? 0)) / 2;
    order = [...order].sort(
      (a, b) => key(a) - key(b) || (rows.get(a.name) ?? 0) - (rows.get(b.name) ?? 0),
    );
  }
  return order;
}

/** Lay out the flow graph of a catalog. */
export function layoutFlowGraph(catalog: Catalog): FlowGraph {
  const drafts: Draft[] = [];
  const edges: FlowEdge[] = [];
  const add = (draft: Omit<Draft, "y">): Draft => {
    const node = { ...draft, y: 0 };
    drafts.push(node);
    return node;
  };
  const eventTopics = catalog.topics.filter((t) => t.kind === "event");
  const subscriptions = orderSubscriptions(catalog);

  // Subscriptions: one row each.
  const subNodes = new Map<string, Draft>();
  subscriptions.forEach((sub, i) => {
    const node = add({
      id: `subscription:${sub.name}`,
      column: "subscription",
      label: sub.name,
      tooltip: `subscription ${sub.name}: ${sub.application} consumes ${sub.eventType}`,
      height: NODE_HEIGHT,
    });
    node.y = TOP + NODE_HEIGHT / 2 + i * ROW;
    subNodes.set(sub.name, node);
    if (sub.deadLetter !== undefined) {
      const dl = add({
        id: `dead-letter:${sub.deadLetter.topic}`,
        column: "dead-letter",
        label: sub.deadLetter.topic,
        tooltip: `dead-letter topic of ${sub.name}, kept by subscription ${sub.deadLetter.subscription}`,
        height: DEAD_LETTER_HEIGHT,
      });
      dl.y = node.y + ROW / 2;
      edges.push({ from: node.id, to: dl.id, kind: "dead-letter" });
    }
  });

  // Topics at the mean height of their subscriptions; those without any in topic order.
  const topicNodes = new Map<string, Draft>();
  const wished = new Map<Draft, number>();
  let previous = TOP;
  for (const topic of eventTopics) {
    const node = add({
      id: `topic:${topic.name}`,
      column: "topic",
      label: topic.name,
      tooltip: `topic ${topic.name}: ${topic.eventTypes.join(", ")}`,
      height: NODE_HEIGHT,
    });
    topicNodes.set(topic.name, node);
    const y = mean(topic.subscriptions.flatMap((s) => subNodes.get(s)?.y ?? [])) ?? previous + ROW;
    wished.set(node, y);
    previous = y;
    for (const sub of topic.subscriptions) {
      const target = subNodes.get(sub);
      if (target !== undefined) {
        edges.push({ from: node.id, to: target.id, kind: "deliver" });
      }
    }
  }
  spread([...topicNodes.values()], wished);

  // Consumers at the mean height of their subscriptions; producers of their topics.
  const consumers: Draft[] = [];
  const producers: Draft[] = [];
  for (const app of catalog.applications) {
    if (app.subscriptions.length > 0) {
      const node = add({
        id: `consumer:${app.name}`,
        column: "consumer",
        label: app.name,
        tooltip: `application ${app.name} consumes ${app.subscriptions.map((s) => s.name).join(", ")}`,
        height: NODE_HEIGHT,
      });
      consumers.push(node);
      wished.set(node, mean(app.subscriptions.flatMap((s) => subNodes.get(s.name)?.y ?? [])) ?? 0);
      for (const sub of app.subscriptions) {
        edges.push({ from: `subscription:${sub.name}`, to: node.id, kind: "consume" });
      }
    }
    const topics = [
      ...new Set(
        app.publishes.flatMap(
          (type) => catalog.events.find((e) => e.typeName === type)?.topic ?? [],
        ),
      ),
    ];
    if (topics.length > 0) {
      const node = add({
        id: `producer:${app.name}`,
        column: "producer",
        label: app.name,
        tooltip: `application ${app.name} publishes ${app.publishes.join(", ")}`,
        height: NODE_HEIGHT,
      });
      producers.push(node);
      wished.set(node, mean(topics.flatMap((t) => topicNodes.get(t)?.y ?? [])) ?? 0);
      for (const topic of topics) {
        edges.push({ from: node.id, to: `topic:${topic}`, kind: "publish" });
      }
    }
  }
  spread(consumers, wished);
  spread(producers, wished);

  // Columns as wide as their longest label.
  const columns: FlowColumn[] = ["producer", "topic", "subscription", "dead-letter", "consumer"];
  const widths = new Map<FlowColumn, number>();
  for (const column of columns) {
    const labels = drafts.filter((d) => d.column === column).map((d) => d.label.length);
    widths.set(
      column,
      Math.ceil(
        Math.max(HEADINGS[column].length, ...labels) *
          (column === "dead-letter" ? SMALL_CHAR_WIDTH : CHAR_WIDTH) +
          PADDING,
      ),
    );
  }
  const xs = new Map<FlowColumn, number>();
  let x = MARGIN;
  for (const column of columns) {
    xs.set(column, x);
    x += (widths.get(column) ?? 0) + COLUMN_GAP;
  }
  const width = x - COLUMN_GAP + MARGIN;
  const nodes: FlowNode[] = drafts.map((d) => ({
    id: d.id,
    column: d.column,
    label: d.label,
    tooltip: d.tooltip,
    x: xs.get(d.column) ?? 0,
    y: d.y,
    width: widths.get(d.column) ?? 0,
    height: d.height,
  }));
  const height = Math.ceil(Math.max(...nodes.map((n) => n.y + n.height / 2)) + MARGIN);
  return {
    nodes,
    edges,
    width: Math.ceil(width),
    height,
    headings: columns.map((column) => ({
      label: HEADINGS[column],
      x: (xs.get(column) ?? 0) + (widths.get(column) ?? 0) / 2,
    })),
  };
}

/** Escape text for XML and HTML. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const round = (n: number): string => String(Math.round(n * 10) / 10);

/**
 * The SVG of a laid-out graph: boxes with their labels (as `<text>`, so the
 * page can be searched and tested), curved arrows, dashed red arrows to
 * dead-letter topics. Inline, self-contained, no external references.
 */
export function renderFlowGraphSvg(graph: FlowGraph): string {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const deadLetterColumnEnd = Math.max(
    ...graph.nodes.filter((n) => n.column === "dead-letter").map((n) => n.x + n.width),
    0,
  );
  const paths = graph.edges.flatMap((edge) => {
    const from = byId.get(edge.from);
    const to = byId.get(edge.to);
    if (from === undefined || to === undefined) {
      return [];
    }
    const x1 = from.x + from.width;
    const y1 = from.y;
    const x2 = to.x;
    const y2 = to.y;
    let d: string;
    if (edge.kind === "consume" && deadLetterColumnEnd > x1) {
      // Straight past the dead-letter topics (they sit between the rows), then curve.
      const xa = deadLetterColumnEnd + 8;
      const k = (x2 - xa) / 2;
      d = `M${round(x1)},${round(y1)} H${round(xa)} C${round(xa + k)},${round(y1)} ${round(x2 - k)},${round(y2)} ${round(x2)},${round(y2)}`;
    } else if (edge.kind === "dead-letter") {
      d = `M${round(x1)},${round(y1 + 4)} C${round(x1 + 18)},${round(y1 + 4)} ${round(x2 - 18)},${round(y2)} ${round(x2)},${round(y2)}`;
    } else {
      const k = (x2 - x1) / 2;
      d = `M${round(x1)},${round(y1)} C${round(x1 + k)},${round(y1)} ${round(x2 - k)},${round(y2)} ${round(x2)},${round(y2)}`;
    }
    return [
      `<path class="edge ${edge.kind}" d="${d}" marker-end="url(#arrow-${edge.kind === "dead-letter" ? "dl" : "flow"})"><title>${escapeXml(`${from.label} → ${to.label}`)}</title></path>`,
    ];
  });
  const boxes = graph.nodes.map((n) => {
    const top = n.y - n.height / 2;
    return (
      `<g class="node ${n.column}" data-id="${escapeXml(n.id)}"><title>${escapeXml(n.tooltip)}</title>` +
      `<rect x="${round(n.x)}" y="${round(top)}" width="${round(n.width)}" height="${n.height}" rx="5"/>` +
      `<text x="${round(n.x + n.width / 2)}" y="${round(n.y)}">${escapeXml(n.label)}</text></g>`
    );
  });
  const headings = graph.headings.map(
    (h) => `<text class="heading" x="${round(h.x)}" y="24">${escapeXml(h.label)}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph" role="img" aria-labelledby="flow-graph-title" viewBox="0 0 ${graph.width} ${graph.height}" width="${graph.width}" height="${graph.height}">`,
    `<title id="flow-graph-title">Flow graph: publishers → topics → subscriptions → consumers, with dead-letter topics</title>`,
    "<defs>",
    `<marker id="arrow-flow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#64748b"/></marker>`,
    `<marker id="arrow-dl" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#dc2626"/></marker>`,
    "</defs>",
    `<g class="headings">${headings.join("")}</g>`,
    `<g class="edges">${paths.join("")}</g>`,
    `<g class="nodes">${boxes.join("")}</g>`,
    "</svg>",
  ].join("\n");
}
