/**
 * Runs tasks one after another per key, and stops a key after a failure:
 * once a task of a key failed, every task of that key already queued behind
 * it is skipped, until the key's queue drains. The next task of the key
 * after that runs again. A key holds state only while it has tasks.
 *
 * This is what ordered delivery needs: events with one ordering key are
 * handled in order, and after a nack none of the key's later events may
 * overtake the nacked one (Pub/Sub redelivers them all in order).
 */
export class KeyedQueue {
  private readonly keys = new Map<string, KeyState>();

  /**
   * Queue `task` behind every queued task of `key`. When it is its turn, it
   * runs, unless an earlier task of the key failed: then `skip` runs
   * instead. A task fails when it resolves `"failed"` or throws; a throw
   * also rejects the promise this returns. Resolves once the task (or
   * `skip`) finished.
   */
  run(key: string, task: () => Promise<TaskResult>, skip: () => void): Promise<void> {
    let state = this.keys.get(key);
    if (state === undefined) {
      state = { tail: Promise.resolve(), pending: 0, failed: false };
      this.keys.set(key, state);
    }
    const keyState = state;
    keyState.pending++;
    const turn = keyState.tail.then(async () => {
      if (keyState.failed) {
        skip();
        return;
      }
      try {
        if ((await task()) === "failed") {
          keyState.failed = true;
        }
      } catch (error) {
        keyState.failed = true;
        throw error;
      }
    });
    const done = turn.finally(() => {
      keyState.pending--;
      if (keyState.pending === 0) {
        this.keys.delete(key);
      }
    });
    // The next task waits for this one whatever became of it.
    keyState.tail = done.catch(() => {});
    return done;
  }

  /** How many keys have queued or running tasks. */
  get size(): number {
    return this.keys.size;
  }
}

/** How a task of a {@link KeyedQueue} ended. */
export type TaskResult = "ok" | "failed";

interface KeyState {
  tail: Promise<void>;
  pending: number;
  /** An earlier task with this key failed: skip the rest until the queue drains. */
  failed: boolean;
}
