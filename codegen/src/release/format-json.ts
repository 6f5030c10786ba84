/**
 * JSON as Biome formats it (the repository lints committed JSON): objects
 * one member per line, arrays of plain values on one line when they fit in
 * the line width, two-space indent, a final newline. Release files are
 * written with it so they are byte-stable and lint-clean.
 */

/** Biome's line width in biome.json. */
const LINE_WIDTH = 100;

function isPlain(value: unknown): boolean {
  return value === null || typeof value !== "object";
}

function print(value: unknown, indent: string, prefixWidth: number, suffix: string): string {
  if (isPlain(value)) {
    return JSON.stringify(value);
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) {
      return "[]";
    }
    if (value.every(isPlain)) {
      const flat = `[${value.map((v) => JSON.stringify(v)).join(", ")}]`;
      if (prefixWidth + flat.length + suffix.length <= LINE_WIDTH) {
        return flat;
      }
    }
    const items = value.map(
      (v, i) => `${inner}${print(v, inner, inner.length, i < value.length - 1 ? "," : "")}`,
    );
    return `[\n${items.join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(
    ([, v]) => v !== undefined,
  );
  if (entries.length === 0) {
    return "{}";
  }
  const members = entries.map(([k, v], i) => {
    const key = `${inner}${JSON.stringify(k)}: `;
    return `${key}${print(v, inner, key.length, i < entries.length - 1 ? "," : "")}`;
  });
  return `{\n${members.join(",\n")}\n${indent}}`;
}

/** `value` as Biome-formatted JSON text, ending with a newline. */
export function formatJson(value: unknown): string {
  return `${print(value, "", 0, "")}\n`;
}
