/**
 * `npm run chaos`: the checkout under a seeded fault schedule, judged by its
 * invariants. Prints the report, writes it as JSON with `--report`, exits 1
 * when an invariant is violated (2 when the run itself could not be done).
 */
import { writeFile } from "node:fs/promises";
import { parseChaosArgs, USAGE } from "./options.js";
import { formatReport } from "./report.js";
import { runChaos } from "./run-chaos.js";

async function main(): Promise<number> {
  let options: ReturnType<typeof parseChaosArgs>;
  try {
    options = parseChaosArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`chaos: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const report = await runChaos(options);
  process.stdout.write(`\n${formatReport(report).join("\n")}\n`);
  if (options.reportFile !== undefined) {
    await writeFile(options.reportFile, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`report written to ${options.reportFile}\n`);
  }
  return report.passed ? 0 : 1;
}

// Ctrl-C or a SIGTERM: exit at once; the exit handlers SIGKILL the services
// and the emulator (its own process group, so the terminal's signal misses it).
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`chaos: ${signal}, stopping the services and the emulator\n`);
    process.exit(130);
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos: the run failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  },
);
