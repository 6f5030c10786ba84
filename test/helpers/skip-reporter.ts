import type { Reporter, TestModule } from "vitest/node";

/**
 * Prints, after the run's summary, every test skipped with a note
 * (`context.skip(condition, note)`): a test that cannot run on this machine
 * says so, and what it needs, where the reader of the summary looks.
 */
export default class SkipReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const lines: string[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const result = test.result();
        if (result.state === "skipped" && result.note !== undefined) {
          lines.push(`  ${module.relativeModuleId} > ${test.name}\n    ${result.note}`);
        }
      }
    }
    if (lines.length > 0) {
      process.stdout.write(
        `\n${lines.length} test${lines.length === 1 ? "" : "s"} could not run on this machine:\n${lines.join("\n")}\n`,
      );
    }
  }
}
