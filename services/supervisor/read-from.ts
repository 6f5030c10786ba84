import { closeSync, openSync, readSync, statSync } from "node:fs";

/**
 * What was appended to `file` after byte `offset` (empty when nothing was):
 * how a supervisor follows a child's log file without holding it open.
 */
export function readFrom(file: string, offset: number): string {
  const size = statSync(file).size;
  if (size <= offset) {
    return "";
  }
  const buffer = Buffer.alloc(size - offset);
  const fd = openSync(file, "r");
  try {
    readSync(fd, buffer, 0, buffer.length, offset);
  } finally {
    closeSync(fd);
  }
  return buffer.toString("utf8");
}
