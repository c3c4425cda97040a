// The transfers service as typed calls: ask before a transfer (`authorizeTransfer`, every decision
// logged), and read the register of recipients, their mechanisms and the adequacy lists.
// Failures as PdmError: a bad field is INVALID_ARGUMENT, an unknown recipient (or a subject
// this client is not linked with) NOT_FOUND. Registering recipients and mechanisms is the
// privacy team's (`pdm` command line).

import type { TransfersServiceClient } from "../generated/types/pdm/transfers/v1/TransfersService.js";
import type { Mechanism__Output } from "../generated/types/pdm/transfers/v1/Mechanism.js";
import { MechanismKind as MechanismKindPb } from "../generated/types/pdm/transfers/v1/MechanismKind.js";
import { MechanismStatus as MechanismStatusPb } from "../generated/types/pdm/transfers/v1/MechanismStatus.js";
import { Outcome as OutcomePb } from "../generated/types/pdm/transfers/v1/Outcome.js";
import { PartyRole as PartyRolePb } from "../generated/types/pdm/transfers/v1/PartyRole.js";
import { RecipientRole as RecipientRolePb } from "../generated/types/pdm/transfers/v1/RecipientRole.js";
import { Regime as RegimePb } from "../generated/types/pdm/transfers/v1/Regime.js";
import { TiaOutcome as TiaOutcomePb } from "../generated/types/pdm/transfers/v1/TiaOutcome.js";
import { Caller, missing } from "./call.js";
import type { ClientConstructor, Config } from "./config.js";
import { contracts } from "./proto.js";
import { enumOf, named, nonempty, time, timestamp, toWire } from "./types.js";

/** The regime a transfer is exported from (`EU`, `UK`, `CH`, `OTHER`). */
export const TransferRegime = enumOf(RegimePb, "REGIME_");
export type TransferRegime = (typeof TransferRegime)[keyof typeof TransferRegime];

/** Our role as exporter. */
export const PartyRole = enumOf(PartyRolePb, "PARTY_ROLE_");
export type PartyRole = (typeof PartyRole)[keyof typeof PartyRole];

/** What a recipient is to us. */
export const RecipientRole = enumOf(RecipientRolePb, "RECIPIENT_ROLE_");
export type RecipientRole = (typeof RecipientRole)[keyof typeof RecipientRole];

/** The legal tool a transfer rests on. */
export const MechanismKind = enumOf(MechanismKindPb, "MECHANISM_KIND_");
export type MechanismKind = (typeof MechanismKind)[keyof typeof MechanismKind];

/** Whether a mechanism is in force. */
export const MechanismStatus = enumOf(MechanismStatusPb, "MECHANISM_STATUS_");
export type MechanismStatus = (typeof MechanismStatus)[keyof typeof MechanismStatus];

/** The conclusion of a transfer impact assessment. */
export const TiaOutcome = enumOf(TiaOutcomePb, "TIA_OUTCOME_");
export type TiaOutcome = (typeof TiaOutcome)[keyof typeof TiaOutcome];

/** Why a transfer decision is what it is (`ALLOWED_ADEQUACY`, `DENIED_NO_MECHANISM`, …). */
export const TransferOutcome = enumOf(OutcomePb, "OUTCOME_");
export type TransferOutcome = (typeof TransferOutcome)[keyof typeof TransferOutcome];

type Wire<O> = O[keyof O];

/** What obliges a disclosure to a public authority. */
export interface LegalOrder {
  /** The law or provision (1-200 characters, one line). */
  readonly legalBasis: string;
  /** The order's reference (1-200 characters). */
  readonly orderReference: string;
  readonly issuedBy?: string | undefined;
  /** Until when the law forbids telling the subject (at most ten years ahead). */
  readonly secretUntil?: Date | undefined;
}

/** A transfer to decide on. */
export interface Transfer {
  readonly regime: TransferRegime;
  readonly recipientId: string;
  /** At least one. */
  readonly dataCategories: readonly string[];
  /** A purpose key. */
  readonly purpose: string;
  /** The subject, when the transfer concerns one (required for a consent derogation and
   * for a recipient that decides its own purposes). */
  readonly subjectId?: string | undefined;
  /** Default: controller. */
  readonly exporterRole?: PartyRole | undefined;
  /** The caller's reference, logged with the decision (one line, at most 200). */
  readonly reference?: string | undefined;
  /** Required for a recipient whose role is PUBLIC_AUTHORITY, refused for any other. */
  readonly legalOrder?: LegalOrder | undefined;
}

/** A transfer decision, as logged. */
export interface TransferDecision {
  readonly logId: string;
  readonly allowed: boolean;
  readonly outcome: TransferOutcome;
  /** The mechanism that covers it, or the best candidate examined. */
  readonly mechanismId: string | undefined;
  readonly mechanismKind: MechanismKind;
  /** Human-readable detail (e.g. the adequacy source). */
  readonly detail: string;
  readonly decidedAt: Date | undefined;
}

/** An entry of the recipients register. */
export interface Recipient {
  readonly recipientId: string;
  readonly key: string;
  readonly name: string;
  readonly role: RecipientRole;
  /** ISO 3166-1 alpha-2. */
  readonly country: string;
  readonly purposes: readonly string[];
  readonly dataCategories: readonly string[];
  readonly contractReference: string;
  readonly contractDate: string;
  readonly certifications: readonly string[];
}

/** A transfer impact assessment. */
export interface ImpactAssessment {
  readonly reference: string;
  readonly assessedOn: string;
  readonly outcome: TiaOutcome;
  readonly supplementaryMeasures: readonly string[];
}

/** A transfer mechanism of a recipient. */
export interface Mechanism {
  readonly mechanismId: string;
  readonly recipientId: string;
  readonly kind: MechanismKind;
  readonly regimes: readonly TransferRegime[];
  /** SCC module 1-4 (0: none). */
  readonly sccModule: number;
  readonly exporterRole: PartyRole;
  readonly signedOn: string;
  readonly parties: readonly string[];
  readonly annexReferences: readonly string[];
  readonly validFrom: Date | undefined;
  readonly expiresAt: Date | undefined;
  readonly reviewDue: Date | undefined;
  readonly status: MechanismStatus;
  /** Empty: every purpose of the recipient. */
  readonly purposes: readonly string[];
  /** Empty: every category of the recipient. */
  readonly dataCategories: readonly string[];
  readonly tia: ImpactAssessment | undefined;
  readonly occasional: boolean;
}

/** A mechanism due for expiry or review. */
export interface ExpiringMechanism {
  readonly mechanism: Mechanism;
  readonly recipientName: string;
  readonly due: "expires" | "review";
  readonly dueAt: Date | undefined;
  /** The date has passed. */
  readonly overdue: boolean;
}

/** A regime's adequacy list. */
export interface AdequacyList {
  readonly regime: TransferRegime;
  /** Where the list comes from, and its date (YYYY-MM-DD). */
  readonly source: string;
  readonly asOf: string;
  readonly countries: readonly { readonly country: string; readonly requiresCertification: string | undefined }[];
}

function mechanism(m: Mechanism__Output | null): Mechanism {
  if (m === null) throw missing("mechanism");
  return {
    mechanismId: m.mechanismId,
    recipientId: m.recipientId,
    kind: named(MechanismKind, "MECHANISM_KIND_", m.kind),
    regimes: m.regimes.map((r) => named(TransferRegime, "REGIME_", r)),
    sccModule: m.sccModule,
    exporterRole: named(PartyRole, "PARTY_ROLE_", m.exporterRole),
    signedOn: m.signedOn,
    parties: m.parties,
    annexReferences: m.annexReferences,
    validFrom: time(m.validFrom),
    expiresAt: time(m.expiresAt),
    reviewDue: time(m.reviewDue),
    status: named(MechanismStatus, "MECHANISM_STATUS_", m.status),
    purposes: m.purposes,
    dataCategories: m.dataCategories,
    tia:
      m.tia === null
        ? undefined
        : {
            reference: m.tia.reference,
            assessedOn: m.tia.assessedOn,
            outcome: named(TiaOutcome, "TIA_OUTCOME_", m.tia.outcome),
            supplementaryMeasures: m.tia.supplementaryMeasures,
          },
    occasional: m.occasional,
  };
}

/** The transfers service. */
export class TransfersClient {
  readonly config: Config;
  private readonly caller: Caller<TransfersServiceClient>;

  constructor(config: Config) {
    this.config = config;
    const make = contracts().pdm.transfers.v1.TransfersService as unknown as ClientConstructor<TransfersServiceClient>;
    this.caller = new Caller(config, "transfers", make);
  }

  /** Closes the channel (calls in flight end as cancelled). */
  close(): void {
    this.caller.close();
  }

  /** Whether a transfer may go ahead (AuthorizeTransfer). Every decision is logged, so the
   * call is not repeated after UNAVAILABLE. */
  async authorizeTransfer(transfer: Transfer): Promise<TransferDecision> {
    const order = transfer.legalOrder;
    const request = {
      regime: toWire<Wire<typeof RegimePb>>("REGIME_", transfer.regime),
      recipientId: transfer.recipientId,
      dataCategories: [...transfer.dataCategories],
      purpose: transfer.purpose,
      subjectId: transfer.subjectId ?? "",
      exporterRole: toWire<Wire<typeof PartyRolePb>>("PARTY_ROLE_", transfer.exporterRole ?? "UNSPECIFIED"),
      reference: transfer.reference ?? "",
      legalOrder:
        order === undefined
          ? null
          : {
              legalBasis: order.legalBasis,
              orderReference: order.orderReference,
              issuedBy: order.issuedBy ?? "",
              secretUntil: order.secretUntil === undefined ? null : timestamp(order.secretUntil),
            },
    };
    const r = await this.caller.call(false, "authorizeTransfer", request);
    const d = r.decision;
    if (d === null) throw missing("decision");
    return {
      logId: d.logId,
      allowed: d.allowed,
      outcome: named(TransferOutcome, "OUTCOME_", d.outcome),
      mechanismId: nonempty(d.mechanismId),
      mechanismKind: named(MechanismKind, "MECHANISM_KIND_", d.mechanismKind),
      detail: d.detail,
      decidedAt: time(d.decidedAt),
    };
  }

  /** The register, by key; given a subject, only the recipients its data was disclosed to
   * (empty for a subject this client is not linked with); given a country, only there. */
  async listRecipients(filter: { subjectId?: string; country?: string } = {}): Promise<Recipient[]> {
    const request = { subjectId: filter.subjectId ?? "", country: filter.country ?? "" };
    const r = await this.caller.call(true, "listRecipients", request);
    return r.recipients.map((x) => ({
      recipientId: x.recipientId,
      key: x.key,
      name: x.name,
      role: named(RecipientRole, "RECIPIENT_ROLE_", x.role),
      country: x.country,
      purposes: x.purposes,
      dataCategories: x.dataCategories,
      contractReference: x.contractReference,
      contractDate: x.contractDate,
      certifications: x.certifications,
    }));
  }

  /** The mechanisms, of one recipient when given. */
  async listMechanisms(recipientId?: string): Promise<Mechanism[]> {
    const r = await this.caller.call(true, "listMechanisms", { recipientId: recipientId ?? "" });
    return r.mechanisms.map(mechanism);
  }

  /** Active mechanisms whose expiry or review is due within `withinDays` (0-3650) days or
   * already passed, soonest first. */
  async listExpiringMechanisms(withinDays: number): Promise<ExpiringMechanism[]> {
    const r = await this.caller.call(true, "listExpiringMechanisms", { withinDays });
    return r.mechanisms.map((e) => {
      if (e.due !== "expires" && e.due !== "review") throw missing("known due date");
      return {
        mechanism: mechanism(e.mechanism),
        recipientName: e.recipientName,
        due: e.due,
        dueAt: time(e.dueAt),
        overdue: e.overdue,
      };
    });
  }

  /** The adequacy lists in force, one per restricted regime, with their dated sources. */
  async listAdequacy(): Promise<AdequacyList[]> {
    const r = await this.caller.call(true, "listAdequacy", {});
    return r.lists.map((l) => ({
      regime: named(TransferRegime, "REGIME_", l.regime),
      source: l.source,
      asOf: l.asOf,
      countries: l.entries.map((e) => ({
        country: e.country,
        requiresCertification: nonempty(e.requiresCertification),
      })),
    }));
  }
}
