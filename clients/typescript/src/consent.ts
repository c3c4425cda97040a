// The consent service as typed calls: decisions as `Decision`, writes as `Written` with
// their consistency token, failures as `PdmError`. Every call has a deadline
// (`Config.timeoutMs`, retries included); each attempt carries the time left as its gRPC
// deadline, and the caller's W3C trace context (call.ts, shared by every facade).

import type { ConsentServiceClient } from "../generated/types/pdm/consent/v1/ConsentService.js";
import type { WatchConsentChangesResponse__Output } from "../generated/types/pdm/consent/v1/WatchConsentChangesResponse.js";
import type { LedgerEntry__Output } from "../generated/types/pdm/consent/v1/LedgerEntry.js";
import type { BatchCheckProcessingResponse__Output } from "../generated/types/pdm/consent/v1/BatchCheckProcessingResponse.js";
import type { CanContactResponse__Output } from "../generated/types/pdm/consent/v1/CanContactResponse.js";
import type { CheckProcessingResponse__Output } from "../generated/types/pdm/consent/v1/CheckProcessingResponse.js";
import type { GetLedgerPositionResponse__Output } from "../generated/types/pdm/consent/v1/GetLedgerPositionResponse.js";
import { Caller, type ResponseStream } from "./call.js";
import { Config, type ClientConstructor } from "./config.js";
import { Code, PdmError } from "./errors.js";
import { contracts } from "./proto.js";
import {
  Change,
  type Channel,
  type Decision,
  type Grant,
  type MessageKind,
  type Written,
  decisionFrom,
  wire,
} from "./types.js";

/** A (subject id, purpose) pair. */
export type Pair = readonly [subjectId: string, purpose: string];

/** Options of a check. */
export interface CheckOptions {
  /** A write's consistency token: the answer reflects that write at least, on whichever
   * replica answers (read-your-writes). */
  atLeast?: string | undefined;
}

const SOURCE_API = "SOURCE_API" as const;

function written(r: { entry: LedgerEntry__Output | null; consistencyToken: string }): Written {
  return { sequence: Number(r.entry?.sequence ?? 0), token: r.consistencyToken };
}

/** The consent service. */
export class ConsentClient {
  readonly config: Config;
  private readonly caller: Caller<ConsentServiceClient>;

  constructor(config: Config) {
    this.config = config;
    const make = contracts().pdm.consent.v1.ConsentService as unknown as ClientConstructor<ConsentServiceClient>;
    this.caller = new Caller(config, "consent", make);
  }

  /** A client configured from the environment (see {@link Config.fromEnv}). */
  static fromEnv(): ConsentClient {
    return new ConsentClient(Config.fromEnv());
  }

  /** Closes the channel (calls in flight end as cancelled). */
  close(): void {
    this.caller.close();
  }

  /** How many times the certificate files were reloaded. */
  get certificateReloads(): number {
    return this.caller.channel.reloads;
  }

  /** Records consent (GrantConsent, source API). Not repeated after UNAVAILABLE. */
  async grant(grant: Grant): Promise<Written> {
    const request = { ...grant, source: SOURCE_API };
    return written(await this.caller.unary(false, (c, m, o, cb) => c.grantConsent(request, m, o, cb)));
  }

  /** Records a withdrawal (WithdrawConsent, source API). */
  async withdraw(subjectId: string, purpose: string, actor: string): Promise<Written> {
    const request = { subjectId, purpose, actor, source: SOURCE_API };
    return written(await this.caller.unary(false, (c, m, o, cb) => c.withdrawConsent(request, m, o, cb)));
  }

  /** Opts the subject out of (or back into) promotional messages on `channel`. */
  async setContactPreference(
    subjectId: string,
    channel: Channel,
    optedOut: boolean,
    actor: string,
  ): Promise<Written> {
    const request = {
      subjectId,
      channel: wire("CHANNEL_", channel) as "CHANNEL_EMAIL",
      optedOut,
      actor,
      source: SOURCE_API,
    };
    return written(
      await this.caller.unary(false, (c, m, o, cb) => c.setContactPreference(request, m, o, cb)),
    );
  }

  /** Whether the subject's data may be processed for `purpose`; with `atLeast` (a write's
   * token), as of that write at the latest. */
  async check(subjectId: string, purpose: string, options: CheckOptions = {}): Promise<Decision> {
    const request = { subjectId, purpose, atLeast: options.atLeast ?? "" };
    const r = await this.caller.unary<CheckProcessingResponse__Output>(true, (c, m, o, cb) => c.checkProcessing(request, m, o, cb));
    return decisionFrom(r.decision);
  }

  /** Many (subject, purpose) checks in one call (at most 10,000), decisions in order. */
  async checkMany(pairs: readonly Pair[], options: CheckOptions = {}): Promise<Decision[]> {
    const request = {
      items: pairs.map(([subjectId, purpose]) => ({ subjectId, purpose })),
      atLeast: options.atLeast ?? "",
    };
    const r = await this.caller.unary<BatchCheckProcessingResponse__Output>(true, (c, m, o, cb) => c.batchCheckProcessing(request, m, o, cb));
    if (r.decisions.length !== pairs.length) {
      throw new PdmError(Code.INTERNAL, "internal: a batch answered a different number of decisions");
    }
    return r.decisions.map(decisionFrom);
  }

  /** Whether a message of `kind` may be sent to the subject on `channel`. */
  async canContact(
    subjectId: string,
    channel: Channel,
    kind: MessageKind,
    options: CheckOptions = {},
  ): Promise<Decision> {
    const request = {
      subjectId,
      channel: wire("CHANNEL_", channel) as "CHANNEL_EMAIL",
      kind: wire("MESSAGE_KIND_", kind) as "MESSAGE_KIND_PROMOTIONAL",
      atLeast: options.atLeast ?? "",
    };
    const r = await this.caller.unary<CanContactResponse__Output>(true, (c, m, o, cb) => c.canContact(request, m, o, cb));
    return decisionFrom(r.decision);
  }

  /** The ledger's last position, and the token covering every write before now. */
  async ledgerPosition(): Promise<Written> {
    const r = await this.caller.unary<GetLedgerPositionResponse__Output>(true, (c, m, o, cb) => c.getLedgerPosition({}, m, o, cb));
    return { sequence: Number(r.sequence), token: r.consistencyToken };
  }

  /** The ledger's changes after `afterSequence`, then live ones (no deadline: the stream
   * lasts until it is cancelled or the connection ends). */
  watch(afterSequence = 0): ChangeStream {
    return this.caller.stream(
      (c, m) => c.watchConsentChanges({ afterSequence }, m),
      (message: WatchConsentChangesResponse__Output) =>
        message.entry === null ? undefined : Change.from(message.entry),
    );
  }
}

/**
 * The ledger's changes as WatchConsentChanges streams them: `for await (const change of
 * stream)`; `cancel()` ends it (the iteration then ends quietly). A failure of the stream
 * is thrown from the iteration as a {@link PdmError}. A company client's stream carries
 * the entries of subjects it is not linked with as position markers
 * ({@link Change.isPositionMarker}).
 */
export type ChangeStream = ResponseStream<WatchConsentChangesResponse__Output, Change>;
