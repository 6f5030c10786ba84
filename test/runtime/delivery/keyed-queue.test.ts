import { describe, expect, it } from "vitest";
import { KeyedQueue, type TaskResult } from "../../../runtime/src/delivery/keyed-queue.js";

/** A task whose end the test decides, recording when it starts. */
function controlledTask(name: string, log: string[]) {
  let finish: (result: TaskResult) => void = () => {};
  let fail: (error: Error) => void = () => {};
  const task = () =>
    new Promise<TaskResult>((resolve, reject) => {
      log.push(`start ${name}`);
      finish = resolve;
      fail = reject;
    });
  return { task, finish: (result: TaskResult) => finish(result), fail: (e: Error) => fail(e) };
}

/** Let every queued promise callback run. */
async function settled(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

describe("KeyedQueue", () => {
  it("should run the tasks of one key one after another, in order", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a = controlledTask("a", log);
    const b = controlledTask("b", log);
    const doneA = queue.run("k", a.task, () => log.push("skip a"));
    const doneB = queue.run("k", b.task, () => log.push("skip b"));
    await settled();
    expect(log).toEqual(["start a"]);
    a.finish("ok");
    await doneA;
    await settled();
    expect(log).toEqual(["start a", "start b"]);
    b.finish("ok");
    await doneB;
  });

  it("should run tasks of different keys at the same time", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a = controlledTask("a", log);
    const b = controlledTask("b", log);
    const done = [queue.run("k1", a.task, () => {}), queue.run("k2", b.task, () => {})];
    await settled();
    expect(log).toEqual(["start a", "start b"]);
    b.finish("ok");
    a.finish("ok");
    await Promise.all(done);
  });

  it("should skip the rest of a key's queue after a failed task, and run the key again once it drained", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a = controlledTask("a", log);
    const b = controlledTask("b", log);
    const c = controlledTask("c", log);
    const other = controlledTask("other", log);
    const queued = [
      queue.run("k", a.task, () => log.push("skip a")),
      queue.run("k", b.task, () => log.push("skip b")),
      queue.run("k", c.task, () => log.push("skip c")),
      queue.run("j", other.task, () => log.push("skip other")),
    ];
    await settled();
    a.finish("failed");
    other.finish("ok");
    await Promise.all(queued);
    expect(log).toEqual(["start a", "start other", "skip b", "skip c"]);
    expect(queue.size).toBe(0);

    const d = controlledTask("d", log);
    const doneD = queue.run("k", d.task, () => log.push("skip d"));
    await settled();
    d.finish("ok");
    await doneD;
    expect(log.slice(4)).toEqual(["start d"]);
  });

  it("should treat a thrown task as failed, reject its own promise, and skip the rest of the key", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a = controlledTask("a", log);
    const b = controlledTask("b", log);
    const doneA = queue.run("k", a.task, () => log.push("skip a"));
    const doneB = queue.run("k", b.task, () => log.push("skip b"));
    await settled();
    a.fail(new Error("bug"));
    await expect(doneA).rejects.toThrow("bug");
    await doneB;
    expect(log).toEqual(["start a", "skip b"]);
    expect(queue.size).toBe(0);
  });

  it("should hold a key only while it has tasks", async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a = controlledTask("a", log);
    const done = queue.run("k", a.task, () => {});
    expect(queue.size).toBe(1);
    await settled();
    a.finish("ok");
    await done;
    expect(queue.size).toBe(0);
  });
});
