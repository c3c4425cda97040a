// The consent service's values as TypeScript types: decisions, writes, changes, and the
// enumerations of the contract, by name without their prefix (`Reason.WITHDRAWN` is
// "WITHDRAWN" for REASON_WITHDRAWN; a test checks they agree with the contract).

import type { Decision__Output } from "../generated/types/pdm/consent/v1/Decision.js";
import type { LedgerEntry__Output } from "../generated/types/pdm/consent/v1/LedgerEntry.js";

/** Why a decision is what it is. */
export const Reason = {
  UNSPECIFIED: "UNSPECIFIED",
  CONSENT_GIVEN: "CONSENT_GIVEN",
  OTHER_LEGAL_BASIS: "OTHER_LEGAL_BASIS",
  NO_CONSENT: "NO_CONSENT",
  WITHDRAWN: "WITHDRAWN",
  RESTRICTED: "RESTRICTED",
  OBJECTED: "OBJECTED",
  DO_NOT_SELL: "DO_NOT_SELL",
  UNKNOWN_SUBJECT: "UNKNOWN_SUBJECT",
  UNKNOWN_PURPOSE: "UNKNOWN_PURPOSE",
  OPTED_OUT: "OPTED_OUT",
  NECESSARY_MESSAGE: "NECESSARY_MESSAGE",
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/** The legal basis a decision rests on (or would). */
export const LegalBasis = {
  UNSPECIFIED: "UNSPECIFIED",
  CONSENT: "CONSENT",
  CONTRACT: "CONTRACT",
  LEGAL_OBLIGATION: "LEGAL_OBLIGATION",
  VITAL_INTERESTS: "VITAL_INTERESTS",
  PUBLIC_TASK: "PUBLIC_TASK",
  LEGITIMATE_INTERESTS: "LEGITIMATE_INTERESTS",
} as const;
export type LegalBasis = (typeof LegalBasis)[keyof typeof LegalBasis];

/** A way of reaching a subject. */
export const Channel = {
  UNSPECIFIED: "UNSPECIFIED",
  EMAIL: "EMAIL",
  ADS: "ADS",
  SMS: "SMS",
  PUSH: "PUSH",
} as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

/** The kind of a message. */
export const MessageKind = {
  UNSPECIFIED: "UNSPECIFIED",
  PROMOTIONAL: "PROMOTIONAL",
  TRANSACTIONAL: "TRANSACTIONAL",
  ADMINISTRATIVE: "ADMINISTRATIVE",
  SECURITY: "SECURITY",
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

/** What a ledger entry records. */
export const LedgerEntryKind = {
  UNSPECIFIED: "UNSPECIFIED",
  GRANT: "GRANT",
  WITHDRAW: "WITHDRAW",
  RESTRICT: "RESTRICT",
  UNRESTRICT: "UNRESTRICT",
  OBJECT: "OBJECT",
  WITHDRAW_OBJECTION: "WITHDRAW_OBJECTION",
  OPT_OUT: "OPT_OUT",
  OPT_IN: "OPT_IN",
  DO_NOT_SELL: "DO_NOT_SELL",
  ALLOW_SELL: "ALLOW_SELL",
  ERASED: "ERASED",
  EXPLICIT_GRANT: "EXPLICIT_GRANT",
} as const;
export type LedgerEntryKind = (typeof LedgerEntryKind)[keyof typeof LedgerEntryKind];

/** The enumerations with the prefix of their values in the contract. */
export const ENUMS = {
  "pdm.consent.v1.Reason": { values: Reason, prefix: "REASON_" },
  "pdm.common.v1.LegalBasis": { values: LegalBasis, prefix: "LEGAL_BASIS_" },
  "pdm.consent.v1.Channel": { values: Channel, prefix: "CHANNEL_" },
  "pdm.consent.v1.MessageKind": { values: MessageKind, prefix: "MESSAGE_KIND_" },
  "pdm.consent.v1.LedgerEntryKind": { values: LedgerEntryKind, prefix: "LEDGER_ENTRY_KIND_" },
} as const;

/** The member named by a contract value (`REASON_WITHDRAWN`); UNSPECIFIED for a value newer
 * than this client. */
function member<T extends string>(values: Record<string, T>, prefix: string, raw: unknown): T {
  if (typeof raw === "string" && raw.startsWith(prefix)) {
    const found = values[raw.slice(prefix.length)];
    if (found !== undefined) return found;
  }
  return values["UNSPECIFIED"] as T;
}

/** The contract's name of a member (`CHANNEL_EMAIL`). */
export function wire<T extends string>(prefix: string, value: T): string {
  return `${prefix}${value}`;
}

/** A contract value's name without its prefix (`"EEA"` of `"REGION_EEA"`). */
type Stripped<V, P extends string> = V extends `${P}${infer Rest}` ? Rest : never;

/** The members of a contract's enum by their names without the prefix, made from the
 * generated enum itself so that they cannot drift from the contract (`Region.EEA` is
 * "EEA" for REGION_EEA). */
export function enumOf<const O extends Record<string, string>, const P extends string>(
  generated: O,
  prefix: P,
): { readonly [K in Stripped<O[keyof O], P>]: K } {
  const values: Record<string, string> = {};
  for (const name of Object.values(generated)) {
    if (name.startsWith(prefix)) values[name.slice(prefix.length)] = name.slice(prefix.length);
  }
  return Object.freeze(values) as { readonly [K in Stripped<O[keyof O], P>]: K };
}

/** The member named by a contract value; UNSPECIFIED for a value newer than this client. */
export function named<T extends string>(values: { readonly [K in T]: K }, prefix: string, raw: unknown): T {
  return member(values as Record<string, T>, prefix, raw);
}

/** The contract's name of a member, typed as the generated enum (`"REGION_EEA"`). */
export function toWire<W extends string>(prefix: string, value: string): W {
  return `${prefix}${value}` as W;
}

/** A google.protobuf.Timestamp of an answer as a Date (undefined when absent). */
export function time(t: { seconds: number | string; nanos: number } | null | undefined): Date | undefined {
  if (t === null || t === undefined) return undefined;
  return new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6));
}

/** A Date as a google.protobuf.Timestamp. */
export function timestamp(date: Date): { seconds: number; nanos: number } {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1e6 };
}

/** A text field where the contract's empty string means "none". */
export function nonempty(text: string): string | undefined {
  return text === "" ? undefined : text;
}

/** A decision of the consent service. */
export interface Decision {
  /** Whether processing (or the message) may go ahead. */
  readonly allowed: boolean;
  /** Why. */
  readonly reason: Reason;
  /** The legal basis it rests on (or would). */
  readonly legalBasis: LegalBasis;
}

export function decisionFrom(d: Decision__Output | null | undefined): Decision {
  return {
    allowed: d?.allowed ?? false,
    reason: member(Reason, "REASON_", d?.reason),
    legalBasis: member(LegalBasis, "LEGAL_BASIS_", d?.legalBasis),
  };
}

/** What a write recorded (or, from `ledgerPosition`, where the ledger is). */
export interface Written {
  /** Its ledger position. */
  readonly sequence: number;
  /** Its consistency token: given back as `atLeast`, the answer reflects the write on
   * whichever replica answers (read-your-writes). Opaque. */
  readonly token: string;
}

/** A grant of consent, as shown to the person. */
export interface Grant {
  readonly subjectId: string;
  /** For which purpose (`marketing_email`). */
  readonly purpose: string;
  /** The policy version the person saw. */
  readonly policyVersion: string;
  /** SHA-256 (hex) of the exact text shown. */
  readonly textHash: string;
  /** Who records it (the calling system). */
  readonly actor: string;
}

/** One ledger entry as WatchConsentChanges streams it (the fields a cache needs). */
export class Change {
  constructor(
    /** Its position: the cursor to resume from. */
    readonly sequence: number,
    /** The subject; a pseudonym (`erased:…`) once the subject is erased; empty in a
     * position marker. */
    readonly subjectId: string,
    readonly kind: LedgerEntryKind,
    readonly purpose: string,
    readonly channel: Channel,
  ) {}

  static from(e: LedgerEntry__Output): Change {
    return new Change(
      Number(e.sequence),
      e.subjectId,
      member(LedgerEntryKind, "LEDGER_ENTRY_KIND_", e.kind),
      e.purpose,
      member(Channel, "CHANNEL_", e.channel),
    );
  }

  /** An erasure names only a pseudonym: every subject's cached decisions go. */
  get isErasure(): boolean {
    return this.kind === LedgerEntryKind.ERASED || this.subjectId.startsWith("erased:");
  }

  /** An entry of a subject this client is not linked with, as a company client's stream
   * carries it: only its position, to move the cursor by. */
  get isPositionMarker(): boolean {
    return this.subjectId === "" && this.kind === LedgerEntryKind.UNSPECIFIED;
  }
}
