// Retries: a call refused before any work (RESOURCE_EXHAUSTED: a rate limit or load
// shedding) is tried again whatever it is; an idempotent call (a check, a read) also after
// UNAVAILABLE. Waits double from `firstBackoffMs` to `maxBackoffMs` with full jitter, never
// shorter than a RetryInfo delay, and never past the call's deadline.

import { setTimeout as sleep } from "node:timers/promises";
import { debuglog } from "node:util";

import { Code, PdmError } from "./errors.js";

const log = debuglog("pdm");

export interface RetryOptions {
  /** Attempts in all (1: no retry). Default 4. */
  maxAttempts?: number;
  /** The first wait's upper bound. Default 50 ms. */
  firstBackoffMs?: number;
  /** The longest wait's upper bound. Default 2 s. */
  maxBackoffMs?: number;
  /** A number in [0, 1): the jitter's source (for tests). Default Math.random. */
  random?: () => number;
}

/** How calls are retried. */
export class RetryPolicy {
  readonly maxAttempts: number;
  readonly firstBackoffMs: number;
  readonly maxBackoffMs: number;
  private readonly random: () => number;

  constructor(options: RetryOptions = {}) {
    this.maxAttempts = Math.max(options.maxAttempts ?? 4, 1);
    this.firstBackoffMs = options.firstBackoffMs ?? 50;
    this.maxBackoffMs = options.maxBackoffMs ?? 2_000;
    this.random = options.random ?? Math.random;
  }

  /** Whether `error` on attempt `attempt` (1-based) is worth another attempt. */
  retries(error: PdmError, idempotent: boolean, attempt: number): boolean {
    if (attempt >= this.maxAttempts) return false;
    if (error.code === Code.RESOURCE_EXHAUSTED) return true;
    return error.code === Code.UNAVAILABLE && idempotent;
  }

  /** The wait before attempt `attempt + 1`: a random time up to the doubled backoff (full
   * jitter), at least what the server asked for. */
  backoffMs(attempt: number, askedMs?: number): number {
    const doublings = Math.min(Math.max(attempt - 1, 0), 16);
    const ceiling = Math.min(this.firstBackoffMs * 2 ** doublings, this.maxBackoffMs);
    const jittered = ceiling * this.random();
    return askedMs === undefined ? jittered : Math.max(jittered, askedMs);
  }

  /**
   * Runs `call` (given the milliseconds left before `deadline`, a `performance.now()`
   * instant) until it succeeds, fails in a way not worth retrying, or the deadline leaves
   * no room for another attempt.
   */
  async run<T>(
    idempotent: boolean,
    deadline: number,
    call: (leftMs: number) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const left = deadline - performance.now();
      if (left <= 0) throw new PdmError(Code.DEADLINE_EXCEEDED, "deadline exceeded");
      try {
        return await call(left);
      } catch (error) {
        if (!(error instanceof PdmError) || !this.retries(error, idempotent, attempt)) throw error;
        const wait = this.backoffMs(attempt, error.retryAfterMs);
        if (performance.now() + wait >= deadline) throw error;
        log("pdm call retried (attempt %d, wait %d ms): %s", attempt, Math.round(wait), error.message);
        await sleep(wait);
      }
    }
  }
}
