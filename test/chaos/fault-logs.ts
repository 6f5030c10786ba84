/**
 * The fault hook's outcome logs (`<faults dir>/<service>.log`, see
 * `services/lib/fault-injection.ts`), followed as they grow: each call
 * reads only what was appended since the last one.
 */
import { join } from "node:path";
import { type FaultLogLine, parseFaultLog } from "../../services/lib/fault-injection.js";
import { readFrom } from "../../services/supervisor/read-from.js";
import type { DeliveryCounts } from "./report.js";
import type { ServiceName } from "./schedule.js";

interface Followed {
  /** Bytes read so far: always the end of a whole line. */
  offset: number;
  /** The last line per `subscription \0 event id`. */
  readonly last: Map<string, FaultLogLine>;
  readonly counts: DeliveryCounts;
}

export class FaultLogs {
  private readonly followed = new Map<ServiceName, Followed>();

  constructor(private readonly dir: string) {}

  /** The service's log as far as it is written now. */
  private read(service: ServiceName): Followed {
    let state = this.followed.get(service);
    if (state === undefined) {
      state = {
        offset: 0,
        last: new Map(),
        counts: { handled: 0, duplicate: 0, fault: 0, failed: 0 },
      };
      this.followed.set(service, state);
    }
    let text: string;
    try {
      text = readFrom(join(this.dir, `${service}.log`), state.offset);
    } catch {
      return state; // Not written yet.
    }
    // A line still being appended is read next time.
    const whole = text.slice(0, text.lastIndexOf("\n") + 1);
    state.offset += Buffer.byteLength(whole, "utf8");
    for (const line of parseFaultLog(whole)) {
      state.last.set(`${line.subscription}\u0000${line.eventId}`, line);
      if (line.outcome !== "claiming") {
        state.counts[line.outcome]++;
      }
    }
    return state;
  }

  /** The last line per `subscription \0 event id` of the service. */
  lastLines(service: ServiceName): ReadonlyMap<string, FaultLogLine> {
    return this.read(service).last;
  }

  /** How the service's claiming transactions ended. */
  counts(service: ServiceName): DeliveryCounts {
    return { ...this.read(service).counts };
  }
}
