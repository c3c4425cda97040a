// The telemetry service as typed calls: usage events (admitted only with the subject's or
// the visitor's agreement), crash reports, cookie-banner choices and k-anonymous
// aggregates, failures as PdmError (a bad event is INVALID_ARGUMENT naming it, e.g.
// `events[2].feature`, and refuses the whole batch; too many batches in flight is
// RESOURCE_EXHAUSTED, retried).

import type { TelemetryServiceClient } from "../generated/types/pdm/telemetry/v1/TelemetryService.js";
import type { TrackingChoice__Output } from "../generated/types/pdm/telemetry/v1/TrackingChoice.js";
import type { Event as EventPb } from "../generated/types/pdm/telemetry/v1/Event.js";
import type { DeviceContext as DeviceContextPb } from "../generated/types/pdm/telemetry/v1/DeviceContext.js";
import { ConnectionType as ConnectionTypePb } from "../generated/types/pdm/telemetry/v1/ConnectionType.js";
import { Dimension as DimensionPb } from "../generated/types/pdm/telemetry/v1/Dimension.js";
import { DropReason as DropReasonPb } from "../generated/types/pdm/telemetry/v1/DropReason.js";
import { EventKind as EventKindPb } from "../generated/types/pdm/telemetry/v1/EventKind.js";
import { TrackingCategory as TrackingCategoryPb } from "../generated/types/pdm/telemetry/v1/TrackingCategory.js";
import { Caller, missing, newKey } from "./call.js";
import type { ClientConstructor, Config } from "./config.js";
import { contracts } from "./proto.js";
import { enumOf, named, nonempty, time, timestamp, toWire } from "./types.js";

/** What a tracking technology is for (cookies, beacons, device identifiers). */
export const TrackingCategory = enumOf(TrackingCategoryPb, "TRACKING_CATEGORY_");
export type TrackingCategory = (typeof TrackingCategory)[keyof typeof TrackingCategory];

/** What happened. */
export const EventKind = enumOf(EventKindPb, "EVENT_KIND_");
export type EventKind = (typeof EventKind)[keyof typeof EventKind];

/** How the device was connected. */
export const ConnectionType = enumOf(ConnectionTypePb, "CONNECTION_TYPE_");
export type ConnectionType = (typeof ConnectionType)[keyof typeof ConnectionType];

/** Why an event (or a crash report) was not stored. */
export const DropReason = enumOf(DropReasonPb, "DROP_REASON_");
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

/** What aggregates are grouped by. */
export const Dimension = enumOf(DimensionPb, "DIMENSION_");
export type Dimension = (typeof Dimension)[keyof typeof Dimension];

/** The device an event came from (minimised on the way in: the IP truncated, URLs
 * stripped, the device id kept as a keyed hash). */
export interface DeviceContext {
  readonly connection?: ConnectionType | undefined;
  /** e.g. "en-GB". */
  readonly locale?: string | undefined;
  /** e.g. "Europe/London". */
  readonly timeZone?: string | undefined;
  readonly osName?: string | undefined;
  readonly osVersion?: string | undefined;
  readonly browserName?: string | undefined;
  readonly browserVersion?: string | undefined;
  readonly appVersion?: string | undefined;
  readonly ipAddress?: string | undefined;
  readonly referrerUrl?: string | undefined;
  readonly exitUrl?: string | undefined;
  /** The device pseudonym's source (a logged-out visitor's choice is keyed by it). */
  readonly deviceId?: string | undefined;
  /** The request carried Sec-GPC: 1 (advertising events are dropped). */
  readonly globalPrivacyControl?: boolean | undefined;
}

/** What happened, with the one field its kind needs. */
export type Happened =
  | { readonly kind: "FEATURE_USED"; readonly feature: string }
  | { readonly kind: "LINK_CLICKED"; readonly linkUrl: string }
  /** With another user: the peer is stored as a keyed hash. */
  | { readonly kind: "INTERACTION"; readonly peerSubjectId: string }
  | { readonly kind: "PAGE_VIEW"; readonly screen: string };

/** One usage event. */
export type Event = Happened & {
  /** Undefined for a logged-out visitor (admitted under the device's tracking choice). */
  readonly subjectId?: string | undefined;
  /** Default: now. */
  readonly occurredAt?: Date | undefined;
  readonly device?: DeviceContext | undefined;
  /** Default UNSPECIFIED, which counts as ANALYTICS. */
  readonly tracking?: TrackingCategory | undefined;
};

/** What happened to a batch. */
export interface Ingested {
  /** The batch's idempotency key (made by the client when not given): sending the same
   * batch again under it stores nothing twice. */
  readonly batchId: string;
  /** Events stored (committed). */
  readonly accepted: number;
  /** Events not stored, per reason (reasons with none left out). */
  readonly dropped: Readonly<Partial<Record<DropReason, number>>>;
  /** This batch id was stored before: this is its first answer again. */
  readonly duplicate: boolean;
}

/** A crash report. */
export interface Crash {
  readonly subjectId?: string | undefined;
  /** e.g. "NullPointerException" (1-256 characters). */
  readonly errorType: string;
  /** At most 4 KiB; scrubbed of emails, tokens, card numbers and user paths. */
  readonly message: string;
  /** At most 64 KiB; scrubbed. */
  readonly stackTrace: string;
  /** Default: now. */
  readonly occurredAt?: Date | undefined;
  readonly device?: DeviceContext | undefined;
}

/** The answer to a crash report. */
export interface CrashReceipt {
  /** Undefined when nothing was stored (see `dropped`). */
  readonly crashId: string | undefined;
  /** Pieces of personal data scrubbed. */
  readonly scrubbed: number;
  /** Why nothing was stored (OBJECTED, RESTRICTED); undefined when stored. */
  readonly dropped: DropReason | undefined;
}

/** A logged-out visitor's answer to the cookie banner, to record. */
export interface ChoiceMade {
  /** 1-256 printable characters; only its keyed hash is stored. */
  readonly deviceId: string;
  readonly analytics: boolean;
  readonly advertising: boolean;
  readonly globalPrivacyControl?: boolean | undefined;
  /** The cookie policy version shown (1-32 characters). */
  readonly policyVersion: string;
  /** SHA-256 (hex) of the banner text shown. */
  readonly textHash: string;
}

/** A recorded choice, as it applies. */
export interface TrackingChoice {
  readonly analytics: boolean;
  /** As recorded (see `advertisingEffective`). */
  readonly advertising: boolean;
  readonly globalPrivacyControl: boolean;
  /** Agreed to and no GPC signal. */
  readonly advertisingEffective: boolean;
  readonly policyVersion: string;
  readonly textHash: string;
  readonly recordedAt: Date | undefined;
  /** When it lapses (the visitor is asked again). */
  readonly expiresAt: Date | undefined;
}

/** Daily counts of the buckets at least k distinct people contributed to. */
export interface Aggregates {
  /** By day, then value. */
  readonly buckets: readonly { readonly day: string; readonly value: string; readonly count: number }[];
  /** Buckets withheld for having fewer than k people behind them. */
  readonly suppressed: number;
  /** The k applied. */
  readonly kThreshold: number;
}

type Wire<O> = O[keyof O];

function device(d: DeviceContext | undefined): DeviceContextPb | null {
  if (d === undefined) return null;
  const { connection, ...rest } = d;
  return {
    ...rest,
    connection:
      connection === undefined ? undefined : toWire<Wire<typeof ConnectionTypePb>>("CONNECTION_TYPE_", connection),
  };
}

function event(e: Event): EventPb {
  const { kind, subjectId, occurredAt, device: context, tracking, ...field } = e;
  return {
    ...field,
    kind: toWire<Wire<typeof EventKindPb>>("EVENT_KIND_", kind),
    subjectId: subjectId ?? "",
    occurredAt: timestamp(occurredAt ?? new Date()),
    device: device(context),
    tracking: toWire<Wire<typeof TrackingCategoryPb>>("TRACKING_CATEGORY_", tracking ?? "UNSPECIFIED"),
  };
}

function choice(c: TrackingChoice__Output | null): TrackingChoice {
  if (c === null) throw missing("choice");
  return {
    analytics: c.analytics,
    advertising: c.advertising,
    globalPrivacyControl: c.globalPrivacyControl,
    advertisingEffective: c.advertisingEffective,
    policyVersion: c.policyVersion,
    textHash: c.textHash,
    recordedAt: time(c.recordedAt),
    expiresAt: time(c.expiresAt),
  };
}

/** The telemetry service. */
export class TelemetryClient {
  readonly config: Config;
  private readonly caller: Caller<TelemetryServiceClient>;

  constructor(config: Config) {
    this.config = config;
    const make = contracts().pdm.telemetry.v1.TelemetryService as unknown as ClientConstructor<TelemetryServiceClient>;
    this.caller = new Caller(config, "telemetry", make);
  }

  /** Closes the channel (calls in flight end as cancelled). */
  close(): void {
    this.caller.close();
  }

  /** Stores a batch of at most 1,000 events: each admitted only with the subject's
   * agreement (or, logged out, the device's tracking choice), the others counted in
   * `dropped`; a bad event refuses the whole batch. `batchId` (1-128 printable ASCII
   * characters; one is made for the call when none is given) is the idempotency key: a
   * repeated batch is stored once and answered with the first answer, so the call is
   * retried after UNAVAILABLE too. */
  async ingestEvents(events: readonly Event[], options: { batchId?: string } = {}): Promise<Ingested> {
    const batchId = options.batchId ?? newKey();
    const request = { batchId, events: events.map(event) };
    const r = await this.caller.call(true, "ingestEvents", request);
    const dropped: Partial<Record<DropReason, number>> = {};
    for (const d of r.dropped) {
      const reason = named(DropReason, "DROP_REASON_", d.reason);
      dropped[reason] = (dropped[reason] ?? 0) + d.count;
    }
    return { batchId, accepted: r.accepted, dropped, duplicate: r.duplicate };
  }

  /** Stores a crash report (no idempotency key: not repeated after UNAVAILABLE). */
  async reportCrash(crash: Crash): Promise<CrashReceipt> {
    const request = {
      subjectId: crash.subjectId ?? "",
      errorType: crash.errorType,
      message: crash.message,
      stackTrace: crash.stackTrace,
      occurredAt: timestamp(crash.occurredAt ?? new Date()),
      device: device(crash.device),
    };
    const r = await this.caller.call(false, "reportCrash", request);
    const dropped = named(DropReason, "DROP_REASON_", r.dropped);
    return {
      crashId: nonempty(r.crashId),
      scrubbed: r.scrubbed,
      dropped: dropped === DropReason.UNSPECIFIED ? undefined : dropped,
    };
  }

  /** Records a logged-out visitor's choice (each call is a new choice and the latest
   * counts: not repeated after UNAVAILABLE). */
  async recordTrackingChoice(made: ChoiceMade): Promise<TrackingChoice> {
    const request = { ...made, globalPrivacyControl: made.globalPrivacyControl ?? false };
    const r = await this.caller.call(false, "recordTrackingChoice", request);
    return choice(r.choice);
  }

  /** A device's current choice; undefined when none was recorded or the last one lapsed
   * (only strictly necessary tracking then). */
  async getTrackingChoice(deviceId: string): Promise<TrackingChoice | undefined> {
    const r = await this.caller.call(true, "getTrackingChoice", { deviceId });
    return r.found ? choice(r.choice) : undefined;
  }

  /** Daily event counts by `dimension` from `fromDay` to `toDay` (YYYY-MM-DD, inclusive,
   * at most 366 days), only of buckets at least k distinct people contributed to. */
  async queryAggregates(dimension: Dimension, fromDay: string, toDay: string): Promise<Aggregates> {
    const request = { dimension: toWire<Wire<typeof DimensionPb>>("DIMENSION_", dimension), fromDay, toDay };
    const r = await this.caller.call(true, "queryAggregates", request);
    return {
      buckets: r.buckets.map((b) => ({ day: b.day, value: b.value, count: Number(b.count) })),
      suppressed: r.suppressed,
      kThreshold: r.kThreshold,
    };
  }
}
