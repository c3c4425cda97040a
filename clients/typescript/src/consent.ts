// The consent service as typed calls: decisions as `Decision`, writes as `Written` with
// their consistency token, the catalogue, a subject's state and ledger as plain objects,
// failures as `PdmError`. Every call has a deadline
// (`Config.timeoutMs`, retries included); each attempt carries the time left as its gRPC
// deadline, and the caller's W3C trace context (call.ts, shared by every facade).

import type { ConsentServiceClient } from "../generated/types/pdm/consent/v1/ConsentService.js";
import type { WatchConsentChangesResponse__Output } from "../generated/types/pdm/consent/v1/WatchConsentChangesResponse.js";
import type { LedgerEntry__Output } from "../generated/types/pdm/consent/v1/LedgerEntry.js";
import type { BatchCheckProcessingResponse__Output } from "../generated/types/pdm/consent/v1/BatchCheckProcessingResponse.js";
import type { CanContactResponse__Output } from "../generated/types/pdm/consent/v1/CanContactResponse.js";
import type { CheckProcessingResponse__Output } from "../generated/types/pdm/consent/v1/CheckProcessingResponse.js";
import type { GetLedgerPositionResponse__Output } from "../generated/types/pdm/consent/v1/GetLedgerPositionResponse.js";
import type { Purpose__Output } from "../generated/types/pdm/consent/v1/Purpose.js";
import type { PurposeState__Output } from "../generated/types/pdm/consent/v1/PurposeState.js";
import { Channel as ChannelPb } from "../generated/types/pdm/consent/v1/Channel.js";
import { ConsentStatus as ConsentStatusPb } from "../generated/types/pdm/consent/v1/ConsentStatus.js";
import { Source as SourcePb } from "../generated/types/pdm/consent/v1/Source.js";
import { Caller, type ResponseStream } from "./call.js";
import { Config, type ClientConstructor } from "./config.js";
import { Code, PdmError } from "./errors.js";
import { Region } from "./identity.js";
import { contracts } from "./proto.js";
import {
  Change,
  Channel,
  type Decision,
  type Grant,
  LedgerEntryKind,
  LegalBasis,
  type MessageKind,
  type Written,
  decisionFrom,
  enumOf,
  named,
  nonempty,
  time,
  toWire,
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

/** The consent state of one purpose for a subject (`NOT_REQUIRED`: the purpose does not
 * rest on consent in the subject's region). */
export const ConsentStatus = enumOf(ConsentStatusPb, "CONSENT_STATUS_");
export type ConsentStatus = (typeof ConsentStatus)[keyof typeof ConsentStatus];

/** How a change reached the ledger (this client's writes are `API`). */
export const Source = enumOf(SourcePb, "SOURCE_");
export type Source = (typeof Source)[keyof typeof Source];

type ChannelWire = (typeof ChannelPb)[keyof typeof ChannelPb];

/** One entry of the purpose catalogue. */
export interface Purpose {
  /** Stable key (`marketing_email`). */
  readonly key: string;
  readonly description: string;
  readonly dataCategories: readonly string[];
  /** The legal basis in each region. */
  readonly legalBases: Readonly<Partial<Record<Region, LegalBasis>>>;
  /** The subject can refuse it (it rests on consent somewhere). */
  readonly refusable: boolean;
  /** The subject can object to it (legitimate interests or direct marketing). */
  readonly objectable: boolean;
  /** An objection to it is absolute. */
  readonly directMarketing: boolean;
  /** Art. 9 GDPR data: only explicit consent counts. */
  readonly specialCategory: boolean;
}

/** A subject's current state for one purpose. */
export interface PurposeState {
  readonly purpose: string;
  /** The legal basis in the subject's region. */
  readonly legalBasis: LegalBasis;
  readonly consent: ConsentStatus;
  readonly objected: boolean;
  /** What a check would answer now. */
  readonly decision: Decision;
}

/** A subject's current state (GetConsents). */
export interface Consents {
  readonly subjectId: string;
  readonly region: Region;
  /** One per purpose of the catalogue. */
  readonly purposes: readonly PurposeState[];
  /** Processing is restricted (Art. 18 GDPR). */
  readonly restricted: boolean;
  /** Sale and sharing are refused. */
  readonly doNotSell: boolean;
  /** Channels opted out of promotional messages. */
  readonly optedOutChannels: readonly Channel[];
}

/** One immutable entry of the consent ledger: the proof of a change. */
export interface LedgerEntry {
  readonly sequence: number;
  /** A pseudonym (`erased:…`) once the subject is erased. */
  readonly subjectId: string;
  readonly kind: LedgerEntryKind;
  /** For consent and objection entries. */
  readonly purpose: string | undefined;
  /** For opt-out entries (`UNSPECIFIED` otherwise). */
  readonly channel: Channel;
  readonly source: Source;
  /** For grants. */
  readonly policyVersion: string | undefined;
  /** For grants. */
  readonly textHash: string | undefined;
  /** Cleared on erasure. */
  readonly actor: string | undefined;
  readonly occurredAt: Date | undefined;
  readonly recordedAt: Date | undefined;
}

/** A page of a subject's ledger, oldest first. */
export interface HistoryPage {
  readonly entries: readonly LedgerEntry[];
  /** Pass as `afterSequence` for the next page; undefined when there is no more. */
  readonly nextAfterSequence: number | undefined;
}

/** The token of one promotional message's unsubscribe link (URL-safe, single use). */
export interface UnsubscribeLink {
  readonly token: string;
  readonly expiresAt: Date | undefined;
}

/** What presenting an unsubscribe link did. */
export interface Unsubscribed {
  /** The channel opted out of. */
  readonly channel: Channel;
  /** The link had been used before: the opt-out was recorded then, nothing now. */
  readonly alreadyUsed: boolean;
  /** The ledger entry written (undefined when already used). */
  readonly sequence: number | undefined;
  /** Consistency token covering the opt-out (read-your-writes with `atLeast`). */
  readonly token: string;
}

function purposeFrom(p: Purpose__Output): Purpose {
  const legalBases: Partial<Record<Region, LegalBasis>> = {};
  for (const b of p.legalBases) {
    legalBases[named(Region, "REGION_", b.region)] = named(LegalBasis, "LEGAL_BASIS_", b.legalBasis);
  }
  return {
    key: p.key,
    description: p.description,
    dataCategories: p.dataCategories,
    legalBases,
    refusable: p.refusable,
    objectable: p.objectable,
    directMarketing: p.directMarketing,
    specialCategory: p.specialCategory,
  };
}

function purposeStateFrom(s: PurposeState__Output): PurposeState {
  return {
    purpose: s.purpose,
    legalBasis: named(LegalBasis, "LEGAL_BASIS_", s.legalBasis),
    consent: named(ConsentStatus, "CONSENT_STATUS_", s.consent),
    objected: s.objected,
    decision: decisionFrom(s.decision),
  };
}

function entryFrom(e: LedgerEntry__Output): LedgerEntry {
  return {
    sequence: Number(e.sequence),
    subjectId: e.subjectId,
    kind: named(LedgerEntryKind, "LEDGER_ENTRY_KIND_", e.kind),
    purpose: nonempty(e.purpose),
    channel: named(Channel, "CHANNEL_", e.channel),
    source: named(Source, "SOURCE_", e.source),
    policyVersion: nonempty(e.policyVersion),
    textHash: nonempty(e.textHash),
    actor: nonempty(e.actor),
    occurredAt: time(e.occurredAt),
    recordedAt: time(e.recordedAt),
  };
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

  /** The purpose catalogue, each purpose with its legal basis per region. */
  async listPurposes(): Promise<Purpose[]> {
    const r = await this.caller.call(true, "listPurposes", {});
    return r.purposes.map(purposeFrom);
  }

  /** The subject's current state for every purpose, and their restriction, do-not-sell
   * choice and opted-out channels. */
  async getConsents(subjectId: string): Promise<Consents> {
    const r = await this.caller.call(true, "getConsents", { subjectId });
    return {
      subjectId: r.subjectId,
      region: named(Region, "REGION_", r.region),
      purposes: r.purposes.map(purposeStateFrom),
      restricted: r.restricted,
      doNotSell: r.doNotSell,
      optedOutChannels: r.optedOutChannels.map((c) => named(Channel, "CHANNEL_", c)),
    };
  }

  /** A page of the subject's ledger entries, oldest first (`pageSize` 1-1000; 0 or none
   * means 100): the proof of every change. */
  async getConsentHistory(
    subjectId: string,
    page: { afterSequence?: number; pageSize?: number } = {},
  ): Promise<HistoryPage> {
    const request = { subjectId, afterSequence: page.afterSequence ?? 0, pageSize: page.pageSize ?? 0 };
    const r = await this.caller.call(true, "getConsentHistory", request);
    const next = Number(r.nextAfterSequence);
    return { entries: r.entries.map(entryFrom), nextAfterSequence: next === 0 ? undefined : next };
  }

  // The ledger's writes below have no idempotency key: each repeat is an entry of its own,
  // so none is repeated after UNAVAILABLE (as grant and withdraw).

  /** Sets (or clears) the "do not sell or share" choice (CCPA). */
  async setDoNotSell(subjectId: string, doNotSell: boolean, actor: string): Promise<Written> {
    return written(await this.caller.call(false, "setDoNotSell", { subjectId, doNotSell, actor, source: SOURCE_API }));
  }

  /** Restricts processing (Art. 18 GDPR) or lifts the restriction. */
  async setRestriction(subjectId: string, restricted: boolean, actor: string): Promise<Written> {
    return written(await this.caller.call(false, "setRestriction", { subjectId, restricted, actor, source: SOURCE_API }));
  }

  /** Records an objection to `purpose` (Art. 21 GDPR), or with `withdraw` withdraws an
   * earlier one; FAILED_PRECONDITION when the purpose cannot be objected to in the
   * subject's region. */
  async recordObjection(
    subjectId: string,
    purpose: string,
    actor: string,
    options: { withdraw?: boolean } = {},
  ): Promise<Written> {
    const request = { subjectId, purpose, actor, withdraw: options.withdraw ?? false, source: SOURCE_API };
    return written(await this.caller.call(false, "recordObjection", request));
  }

  /** The token for the unsubscribe link of one promotional message on `channel` (EMAIL,
   * SMS or PUSH). Each call stores a link of its own: not repeated after UNAVAILABLE. */
  async issueUnsubscribeLink(subjectId: string, channel: Channel): Promise<UnsubscribeLink> {
    const request = { subjectId, channel: toWire<ChannelWire>("CHANNEL_", channel) };
    const r = await this.caller.call(false, "issueUnsubscribeLink", request);
    return { token: r.token, expiresAt: time(r.expiresAt) };
  }

  /** Records the opt-out a link stands for (any client may present it). A link used before
   * answers `alreadyUsed` and records nothing, so the call is repeated after UNAVAILABLE;
   * an expired link is FAILED_PRECONDITION, a forged one INVALID_ARGUMENT on `token`. */
  async unsubscribe(token: string): Promise<Unsubscribed> {
    const r = await this.caller.call(true, "unsubscribe", { token });
    return {
      channel: named(Channel, "CHANNEL_", r.channel),
      alreadyUsed: r.alreadyUsed,
      sequence: r.entry === null ? undefined : Number(r.entry.sequence),
      token: r.consistencyToken,
    };
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
