// The consent gate: "may we process this subject's data for this purpose?" and "may we
// send this message?" answered in-process.
//
// Decisions are cached (at most `capacity` of them, each for at most `maxAgeMs`), filled
// on a miss through BatchCheckProcessing (misses arriving within `batchWindowMs` share one
// call) and kept coherent by WatchConsentChanges: every change the ledger records drops the
// subject's cached decisions (an erasure drops them all), and after a disconnect the stream
// resumes from its cursor, so no change is lost or seen twice. The gate counts as connected
// only once it has replayed up to the ledger position read when it (re)connected. A
// decision fetched across a change is not cached. A position marker (an entry of a subject
// this client is not linked with) moves the cursor and forgets nothing; it counts as a
// change applied, as in the Rust gate (`changesApplied` counts the entries the stream
// delivered).
//
// Fail-closed: once the stream has been down longer than `staleAfterMs`, the cache is not
// trusted; decisions go to the network, and if that fails too, processing is denied
// (`Verdict.why` says why). Nothing here logs a subject id.

import { debuglog } from "node:util";

import type { ConsentClient, ChangeStream } from "./consent.js";
import { Code, PdmError } from "./errors.js";
import { type Channel, type Decision, type MessageKind, Reason } from "./types.js";

/** Where the gate says what happens to its stream (no personal data). */
export interface GateLogger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

const debug = debuglog("pdm");
/** `NODE_DEBUG=pdm` shows them. */
const DEFAULT_LOGGER: GateLogger = { info: debug, warn: debug, debug };

/** How a gate caches and when it stops trusting its cache. */
export interface GateOptions {
  /** Most decisions cached (subject × purpose, or subject × channel and kind). Default 100,000. */
  capacity: number;
  /** Longest a cached decision is used (changes outside the ledger, such as a subject's
   * region, reach the gate within this). Default 60 s. */
  maxAgeMs: number;
  /** How long the change stream may be down before the cache is no longer trusted. Default 5 s. */
  staleAfterMs: number;
  /** How long a miss waits for others to share its BatchCheckProcessing. Default 1 ms. */
  batchWindowMs: number;
  /** Most checks in one BatchCheckProcessing. Default 500. */
  maxBatch: number;
  logger: GateLogger;
}

export const DEFAULT_GATE_OPTIONS: Readonly<GateOptions> = {
  capacity: 100_000,
  maxAgeMs: 60_000,
  staleAfterMs: 5_000,
  batchWindowMs: 1,
  maxBatch: 500,
  logger: DEFAULT_LOGGER,
};

/** A gate's answer: the service's decision, or a denial because none could be had. */
export class Verdict {
  constructor(
    /** The consent service's decision (from the cache or the network); null when failed closed. */
    readonly decision: Decision | null,
    /** Why no decision could be had (failed closed); no personal data. */
    readonly why: string | null = null,
  ) {}

  /** Whether processing may go ahead. */
  get allowed(): boolean {
    return this.decision !== null && this.decision.allowed;
  }

  get failedClosed(): boolean {
    return this.decision === null;
  }
}

function failClosed(error: PdmError): Verdict {
  if (
    error.code === Code.INVALID_ARGUMENT ||
    error.code === Code.PERMISSION_DENIED ||
    error.code === Code.UNAUTHENTICATED ||
    error.code === Code.NOT_FOUND
  ) {
    // The service answered: a bad subject id or purpose is the caller's error, and still
    // no permission.
    return new Verdict(null, `consent refused the check: ${error.message}`);
  }
  return new Verdict(null, `consent unreachable and no trusted cached decision: ${error.message}`);
}

/** A cached decision's key: a purpose, or `channel/kind` of a contact decision. */
type Key = string;

function contactKey(channel: Channel, kind: MessageKind): Key {
  // Purposes are snake_case keys: a "/" cannot collide with one.
  return `${channel}/${kind}`;
}

interface Entry {
  decision: Decision;
  at: number;
}

// === impl DecisionCache ===

/** The decisions and the stream's state (exported for the unit tests). */
export class DecisionCache {
  private readonly subjects = new Map<string, Map<Key, Entry>>();
  /** Decisions cached now. */
  size = 0;
  /** Bumped by every invalidation: a decision fetched before one is not cached. */
  generation = 0;
  connected = false;
  downSince = performance.now();
  /** The ledger position the cache reflects: every change up to it is applied. */
  position = 0;
  /** Ledger entries applied, position markers included (as the Rust gate counts them). */
  applied = 0;

  constructor(
    private readonly options: GateOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.downSince = now();
  }

  /** Cached decisions may be used: the stream is up, or down for less than staleAfterMs. */
  trusted(): boolean {
    return this.connected || this.now() - this.downSince < this.options.staleAfterMs;
  }

  get(subject: string, key: Key): Decision | undefined {
    const entry = this.subjects.get(subject)?.get(key);
    if (entry === undefined || this.now() - entry.at >= this.options.maxAgeMs) return undefined;
    return entry.decision;
  }

  /** Caches `decision` unless a change was applied since it was asked for. Unknown
   * subjects are not cached: a sign-up makes them known without a ledger entry. */
  keep(subject: string, key: Key, decision: Decision, generation: number): void {
    if (decision.reason === Reason.UNKNOWN_SUBJECT || this.options.capacity <= 0) return;
    if (this.generation !== generation) return;
    // Room for one more: the oldest subjects go first.
    while (this.size >= this.options.capacity) {
      const victim = this.subjects.keys().next();
      if (victim.done === true) break;
      this.size -= this.subjects.get(victim.value)?.size ?? 0;
      this.subjects.delete(victim.value);
    }
    let entries = this.subjects.get(subject);
    if (entries === undefined) {
      entries = new Map();
      this.subjects.set(subject, entries);
    }
    if (!entries.has(key)) this.size++;
    entries.set(key, { decision, at: this.now() });
  }

  /** One ledger change: the subject's decisions go (an erasure's: everyone's). */
  apply(sequence: number, subject: string, erasure: boolean): void {
    if (erasure) {
      this.subjects.clear();
      this.size = 0;
    } else {
      this.size -= this.subjects.get(subject)?.size ?? 0;
      this.subjects.delete(subject);
    }
    this.generation++;
    this.applied++;
    this.position = sequence;
  }

  /** Where the stream starts: every change up to `sequence` is reflected. */
  advance(sequence: number): void {
    this.position = Math.max(this.position, sequence);
  }

  /** A position marker: the ledger moved on, nothing this client may see changed (no
   * decision is forgotten, and one fetched across it is still cached). */
  marker(sequence: number): void {
    this.advance(sequence);
    this.applied++;
  }

  wentDown(logger: GateLogger): void {
    if (this.connected) {
      this.connected = false;
      this.downSince = this.now();
      logger.warn("consent gate: change stream lost; reconnecting");
    }
  }

  caughtUp(at: number, position: number, logger: GateLogger): void {
    if (at >= position && !this.connected) {
      this.connected = true;
      logger.info("consent gate: change stream connected");
    }
  }
}

interface Miss {
  subject: string;
  purpose: string;
  resolve(decision: Decision): void;
  reject(error: PdmError): void;
}

// === impl ConsentGate ===

/**
 * The consent gate over a {@link ConsentClient}: follows the change stream until
 * {@link close} (the client stays the caller's).
 */
export class ConsentGate {
  readonly consent: ConsentClient;
  readonly options: Readonly<GateOptions>;
  private readonly cache: DecisionCache;
  private stopped = false;
  private stream: ChangeStream | undefined;
  private wakeFollower: (() => void) | undefined;
  private readonly following: Promise<void>;
  private misses: Miss[] = [];
  private batchTimer: NodeJS.Timeout | undefined;

  constructor(consent: ConsentClient, options: Partial<GateOptions> = {}) {
    this.consent = consent;
    this.options = { ...DEFAULT_GATE_OPTIONS, ...options };
    this.cache = new DecisionCache(this.options);
    this.following = this.follow();
  }

  /** Whether the change stream is connected and caught up. */
  get connected(): boolean {
    return this.cache.connected;
  }

  /** The ledger position the cache reflects: every change up to it is applied. */
  get position(): number {
    return this.cache.position;
  }

  /** Ledger entries applied since the gate started, position markers included (as the
   * Rust gate's `changes_applied`). */
  get changesApplied(): number {
    return this.cache.applied;
  }

  /** Decisions cached now. */
  get size(): number {
    return this.cache.size;
  }

  /** The cached answer alone, without a call (undefined on a miss or when the cache is not
   * trusted). */
  cached(subject: string, purpose: string): Decision | undefined {
    return this.cache.trusted() ? this.cache.get(subject, purpose) : undefined;
  }

  /** Whether `subject`'s data may be processed for `purpose`. */
  async allowed(subject: string, purpose: string): Promise<Verdict> {
    const trusted = this.cache.trusted();
    if (trusted) {
      const cached = this.cache.get(subject, purpose);
      if (cached !== undefined) return new Verdict(cached);
    }
    const generation = this.cache.generation;
    let decision: Decision;
    try {
      decision = trusted
        ? await this.throughBatch(subject, purpose)
        : await this.consent.check(subject, purpose);
    } catch (error) {
      if (error instanceof PdmError) return failClosed(error);
      throw error;
    }
    this.cache.keep(subject, purpose, decision, generation);
    return new Verdict(decision);
  }

  /** Whether a message of `kind` may be sent to `subject` on `channel`. */
  async canContact(subject: string, channel: Channel, kind: MessageKind): Promise<Verdict> {
    const key = contactKey(channel, kind);
    if (this.cache.trusted()) {
      const cached = this.cache.get(subject, key);
      if (cached !== undefined) return new Verdict(cached);
    }
    const generation = this.cache.generation;
    let decision: Decision;
    try {
      decision = await this.consent.canContact(subject, channel, kind);
    } catch (error) {
      if (error instanceof PdmError) return failClosed(error);
      throw error;
    }
    this.cache.keep(subject, key, decision, generation);
    return new Verdict(decision);
  }

  /** Stops following the stream and waits for the follower to end. */
  async close(): Promise<void> {
    this.stopped = true;
    this.stream?.cancel();
    this.wakeFollower?.();
    await this.following;
    this.flush();
  }

  // --- the change stream

  /** Follows the ledger: connects, replays what was missed, applies every change; after a
   * disconnect, resumes from the last change applied. */
  private async follow(): Promise<void> {
    const { cache, consent } = this;
    const logger = this.options.logger;
    let cursor: number | undefined;
    let backoff = 50;
    while (!this.stopped) {
      try {
        // Everything up to here is read from the service on a miss: start after it.
        const position = (await consent.ledgerPosition()).sequence;
        const after = cursor ?? position;
        cursor = after;
        if (this.stopped) return;
        const stream = consent.watch(after);
        this.stream = stream;
        if (this.stopped) {
          stream.cancel();
          return;
        }
        await stream.opened();
        cache.advance(after);
        cache.caughtUp(after, position, logger);
        for await (const change of stream) {
          if (change.isPositionMarker) {
            cache.marker(change.sequence);
          } else {
            cache.apply(change.sequence, change.subjectId, change.isErasure);
          }
          cursor = change.sequence;
          cache.caughtUp(change.sequence, position, logger);
        }
        backoff = 50;
      } catch (error) {
        if (this.stopped) return;
        logger.debug(`consent gate: change stream failed: ${error instanceof Error ? error.message : String(error)}`);
        backoff = Math.min(backoff * 2, 2_000);
      }
      cache.wentDown(logger);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoff);
        this.wakeFollower = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeFollower = undefined;
    }
  }

  // --- misses, batched

  private throughBatch(subject: string, purpose: string): Promise<Decision> {
    if (this.stopped) return this.consent.check(subject, purpose);
    return new Promise<Decision>((resolve, reject) => {
      this.misses.push({ subject, purpose, resolve, reject });
      if (this.misses.length >= Math.max(this.options.maxBatch, 1)) {
        this.flush();
      } else if (this.batchTimer === undefined) {
        this.batchTimer = setTimeout(() => this.flush(), this.options.batchWindowMs);
      }
    });
  }

  /** The misses waiting go out in one BatchCheckProcessing (at most maxBatch each). */
  private flush(): void {
    if (this.batchTimer !== undefined) {
      clearTimeout(this.batchTimer);
      this.batchTimer = undefined;
    }
    const max = Math.max(this.options.maxBatch, 1);
    while (this.misses.length > 0) {
      void this.answer(this.misses.splice(0, max));
    }
  }

  private async answer(misses: Miss[]): Promise<void> {
    let decisions: Decision[];
    try {
      decisions = await this.consent.checkMany(misses.map((m) => [m.subject, m.purpose] as const));
    } catch (error) {
      const failure = error instanceof PdmError ? error : new PdmError(Code.UNKNOWN, String(error));
      if (failure.code !== Code.INVALID_ARGUMENT) {
        for (const miss of misses) miss.reject(failure);
        return;
      }
      // One bad pair fails the batch: ask for each alone, so only it fails.
      await Promise.all(
        misses.map(async (miss) => {
          try {
            miss.resolve(await this.consent.check(miss.subject, miss.purpose));
          } catch (one) {
            miss.reject(one instanceof PdmError ? one : new PdmError(Code.UNKNOWN, String(one)));
          }
        }),
      );
      return;
    }
    misses.forEach((miss, i) => miss.resolve(decisions[i] as Decision));
  }
}
