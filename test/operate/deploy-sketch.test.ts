/**
 * The container and Kubernetes sketch cannot run here (no cluster,
 * no registry): this keeps it in step with the code instead. It reads the
 * sketch out of docs/running.md, and the environment every service reads out of
 * the sources.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  HEALTH_HOST_ENV,
  HEALTH_PORT_ENV,
  STOP_TIMEOUT_MS,
} from "../../services/lib/run-service.js";
import { ROOT } from "../helpers/cli.js";

const doc = readFileSync(join(ROOT, "docs", "running.md"), "utf8");

/** The fenced block of `language` in the docs/running.md section headed `heading`. */
function block(heading: string, language: string): string {
  const section = doc.slice(doc.indexOf(heading));
  const match = new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``).exec(section);
  if (match?.[1] === undefined) {
    throw new Error(`no ${language} block under ${heading}`);
  }
  return match[1];
}

/** The table of variables just before "Running under an orchestrator". */
function documentedVariables(): Set<string> {
  const end = doc.indexOf("### Running under an orchestrator");
  const start = doc.lastIndexOf("| variable", end);
  return new Set(
    [...doc.slice(start, end).matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] as string),
  );
}

/** Every environment variable the services and the runtime read, found in their sources. */
function variablesRead(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(path);
      } else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) {
        const text = readFileSync(path, "utf8");
        for (const m of text.matchAll(/\b(?:process\.env|env)\.([A-Z][A-Z0-9_]{2,})\b/g)) {
          names.add(m[1] as string);
        }
        for (const m of text.matchAll(/\b[A-Z_]+_ENV = "([A-Z][A-Z0-9_]+)"/g)) {
          names.add(m[1] as string);
        }
        for (const m of text.matchAll(/^\s+(?:host|token): "([A-Z][A-Z0-9_]+)",$/gm)) {
          names.add(m[1] as string);
        }
      }
    }
  };
  walk(join(ROOT, "services"));
  walk(join(ROOT, "runtime", "src"));
  // Read by the operating system and the Google client, not configuration of ours.
  names.delete("PATH");
  return names;
}

describe("docs/running.md: the environment table and deployment sketch", () => {
  it("should document every variable the services read", () => {
    const read = variablesRead();
    expect(read.size).toBeGreaterThan(15);
    expect([...read].filter((name) => !documentedVariables().has(name)).sort()).toEqual([]);
  });

  it("should set only variables the services read, and probe what the health server serves", () => {
    const yaml = block("### Running under an orchestrator", "yaml");
    const env = [...yaml.matchAll(/- name: ([A-Z][A-Z0-9_]+)/g)].map((m) => m[1] as string);
    expect(env).toContain(HEALTH_PORT_ENV);
    expect(env.filter((name) => !variablesRead().has(name))).toEqual([]);
    expect(env).not.toContain("PUBSUB_EMULATOR_HOST");

    const port = new RegExp(`name: ${HEALTH_PORT_ENV}\\n\\s+value: "(\\d+)"`).exec(yaml)?.[1];
    expect(yaml).toContain(`{ name: health, containerPort: ${port} }`);
    expect(new RegExp(`name: ${HEALTH_HOST_ENV}\\n\\s+value: 0\\.0\\.0\\.0`).test(yaml)).toBe(true);
    expect([...yaml.matchAll(/path: (\/\w+), port: health/g)].map((m) => m[1])).toEqual([
      "/readyz",
      "/readyz",
      "/livez",
    ]);
    const grace = Number(/terminationGracePeriodSeconds: (\d+)/.exec(yaml)?.[1]);
    expect(grace * 1000).toBeGreaterThan(STOP_TIMEOUT_MS);

    const args = /args: \["([^"]+)"\]/.exec(yaml)?.[1] ?? "";
    expect(existsSync(join(ROOT, args)), args).toBe(true);
  });

  it("should build an image that runs a service the way this repository does", () => {
    const dockerfile = block("### Running under an orchestrator", "dockerfile");
    const entry = /ENTRYPOINT (\[.*\])/.exec(dockerfile)?.[1] ?? "[]";
    const cmd = /CMD (\[.*\])/.exec(dockerfile)?.[1] ?? "[]";
    const [node, ...nodeArgs] = JSON.parse(entry) as string[];
    expect(node).toBe("node");
    // The same flags the supervisor and tests use (TS_NODE_ARGS resolves tsx to a path).
    expect(nodeArgs).toEqual(["--conditions=@protoevents/source", "--import", "tsx"]);
    const [main] = JSON.parse(cmd) as string[];
    expect(existsSync(join(ROOT, main ?? ""))).toBe(true);
    // tsx runs the services: it must survive --omit=dev.
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(pkg.dependencies)).toEqual(expect.arrayContaining(["tsx", "pg"]));
  });
});
