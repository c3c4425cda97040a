// The identity service as typed calls: accounts, profile photos, public profiles,
// sessions, billing contacts and support tickets as plain objects, failures as PdmError (a bad field is INVALID_ARGUMENT with its
// `fieldViolations`; an under-18 birth date, or a support ticket whose special categories
// lack explicit consent, is FAILED_PRECONDITION with its `preconditions`; bad credentials
// are UNAUTHENTICATED; repeated failed sign-ins RESOURCE_EXHAUSTED with `retryAfterMs`).
//
// A client sees only the subjects it is linked with (by creating the account, a sign-in
// through it, or `linkSubject`); any other answers NOT_FOUND.

import type { IdentityServiceClient } from "../generated/types/pdm/identity/v1/IdentityService.js";
import type { Account__Output } from "../generated/types/pdm/identity/v1/Account.js";
import type { BillingContact__Output } from "../generated/types/pdm/identity/v1/BillingContact.js";
import type { SupportTicket__Output } from "../generated/types/pdm/identity/v1/SupportTicket.js";
import type { ErasureReceipt__Output } from "../generated/types/pdm/subject/v1/ErasureReceipt.js";
import { Region as RegionPb } from "../generated/types/pdm/common/v1/Region.js";
import { DeletionReason as DeletionReasonPb } from "../generated/types/pdm/identity/v1/DeletionReason.js";
import { SpecialCategory as SpecialCategoryPb } from "../generated/types/pdm/identity/v1/SpecialCategory.js";
import { Caller, missing, newKey } from "./call.js";
import type { ClientConstructor, Config } from "./config.js";
import { contracts } from "./proto.js";
import { LegalBasis, enumOf, named, nonempty, time, toWire } from "./types.js";

/** Where a subject lives: it picks the privacy regime (shared by every contract). */
export const Region = enumOf(RegionPb, "REGION_");
export type Region = (typeof Region)[keyof typeof Region];

/** Why a subject closes the account. */
export const DeletionReason = enumOf(DeletionReasonPb, "DELETION_REASON_");
export type DeletionReason = (typeof DeletionReason)[keyof typeof DeletionReason];

/** A special category of personal data (Art. 9 GDPR): each needs the subject's explicit
 * consent (purpose `special_category_<name>`, lower case) before it is collected. */
export const SpecialCategory = enumOf(SpecialCategoryPb, "SPECIAL_CATEGORY_");
export type SpecialCategory = (typeof SpecialCategory)[keyof typeof SpecialCategory];

type RegionWire = (typeof RegionPb)[keyof typeof RegionPb];
type CategoryWire = (typeof SpecialCategoryPb)[keyof typeof SpecialCategoryPb];

/** The profile of a subject. */
export interface Account {
  /** Subject id (UUIDv7). */
  readonly subjectId: string;
  readonly firstName: string;
  readonly lastName: string;
  /** Normalised (trimmed, lower case). */
  readonly email: string;
  /** E.164; undefined when none was given. */
  readonly phone: string | undefined;
  readonly region: Region;
  /** YYYY-MM-DD; undefined when none was given. */
  readonly birthDate: string | undefined;
  readonly hasPhoto: boolean;
  /** Processing is restricted (Art. 18 GDPR). */
  readonly restricted: boolean;
  readonly createdAt: Date | undefined;
  readonly updatedAt: Date | undefined;
}

/** The sign-up form. */
export interface SignUp {
  /** 1-100 characters, one line. */
  readonly firstName: string;
  readonly lastName: string;
  /** Unique. */
  readonly email: string;
  /** E.164 (+ and 8-15 digits). */
  readonly phone?: string | undefined;
  /** Required. */
  readonly region: Region;
  /** YYYY-MM-DD; under 18 is refused (FAILED_PRECONDITION). */
  readonly birthDate?: string | undefined;
  /** 12-256 characters. */
  readonly password: string;
}

/** Changes to a profile: the fields given change (rectification). */
export interface ProfileChanges {
  readonly firstName?: string | undefined;
  readonly lastName?: string | undefined;
  /** Checked for uniqueness again. */
  readonly email?: string | undefined;
  /** E.164; "" removes it. */
  readonly phone?: string | undefined;
  readonly region?: Region | undefined;
  /** Added or corrected (it cannot be removed). */
  readonly birthDate?: string | undefined;
}

/** A profile photo as stored: its type, detected from the content, and its size. */
export interface StoredPhoto {
  readonly contentType: string;
  readonly sizeBytes: number;
}

/** A profile photo (JPEG, PNG or WebP, at most 2 MiB). */
export interface ProfilePhoto {
  readonly contentType: string;
  readonly photo: Uint8Array;
}

/** What other users see of a subject: nothing but a display name and whether a photo
 * exists (its bytes come from `getProfilePhoto`). */
export interface PublicProfile {
  readonly subjectId: string;
  /** The first name and the last name's initial: "Ada L." (at most 103 characters). */
  readonly displayName: string;
  readonly hasPhoto: boolean;
}

/** A session from {@link IdentityClient.authenticate}. */
export interface Session {
  /** Opaque; only its hash is stored. */
  readonly token: string;
  readonly subjectId: string;
  readonly expiresAt: Date | undefined;
}

/** Whose a live session token is. */
export interface SessionOwner {
  readonly subjectId: string;
  readonly expiresAt: Date | undefined;
}

/** A credential of a subject: the account password or a live session token. */
export type Credential = { readonly password: string } | { readonly sessionToken: string };

/** The person responsible for billing (card numbers are never stored: payment details live
 * with the payment processor). */
export interface BillingContact {
  /** 1-200 characters, one line. */
  readonly name: string;
  readonly email: string;
  /** E.164. */
  readonly phone?: string | undefined;
  /** The payment processor's customer reference (1-200 characters, one line). */
  readonly paymentProcessorRef: string;
}

/** A file attached to a support ticket. */
export interface Attachment {
  /** 1-200 characters, one line. */
  readonly fileName: string;
  /** Detected from the content (ignored when sending). */
  readonly contentType?: string | undefined;
  /** At most 1 MiB; empty in listings. */
  readonly content: Uint8Array;
  /** Its size (set by the server in answers). */
  readonly sizeBytes?: number | undefined;
  /** Special categories the file carries (each needs explicit consent). */
  readonly specialCategories?: readonly SpecialCategory[] | undefined;
}

/** A support ticket to open. */
export interface NewTicket {
  readonly subjectId: string;
  /** An email address or an E.164 phone. */
  readonly contact: string;
  /** One line, 1-200 characters. */
  readonly summary: string;
  /** 1-10,000 characters, in the subject's words. */
  readonly description: string;
  /** At most 3. */
  readonly attachments?: readonly Attachment[] | undefined;
  /** Special categories the summary and description carry: each needs explicit consent in
   * force, else FAILED_PRECONDITION (`EXPLICIT_CONSENT`) and nothing is stored. */
  readonly specialCategories?: readonly SpecialCategory[] | undefined;
}

/** A support ticket as stored. */
export interface SupportTicket {
  readonly ticketId: string;
  readonly subjectId: string;
  readonly contact: string;
  readonly summary: string;
  readonly description: string;
  /** Contents omitted in listings. */
  readonly attachments: readonly Required<Attachment>[];
  readonly createdAt: Date | undefined;
  readonly specialCategories: readonly SpecialCategory[];
}

/** What an erasure removed and what it kept. */
export interface ErasureReceipt {
  /** The request it answers (the idempotency key). */
  readonly requestId: string;
  readonly subjectId: string;
  /** The service that erased. */
  readonly service: string;
  readonly erased: readonly { readonly category: string; readonly count: number }[];
  /** Records kept under a legal basis, with the date they go. */
  readonly retained: readonly {
    readonly category: string;
    readonly legalBasis: LegalBasis;
    readonly reason: string;
    readonly retainUntil: Date | undefined;
    readonly count: number;
  }[];
  readonly completedAt: Date | undefined;
  /** The subject's key was destroyed (crypto-shredding). */
  readonly keyDestroyed: boolean;
  /** When the last key-store backup that could hold the destroyed key is deleted. */
  readonly keyBackupsGoneBy: Date | undefined;
}

function account(a: Account__Output | null): Account {
  if (a === null) throw missing("account");
  return {
    subjectId: a.subjectId,
    firstName: a.firstName,
    lastName: a.lastName,
    email: a.email,
    phone: nonempty(a.phone),
    region: named(Region, "REGION_", a.region),
    birthDate: nonempty(a.birthDate),
    hasPhoto: a.hasPhoto,
    restricted: a.restricted,
    createdAt: time(a.createdAt),
    updatedAt: time(a.updatedAt),
  };
}

function billingContact(c: BillingContact__Output | null): BillingContact {
  if (c === null) throw missing("billing contact");
  return { name: c.name, email: c.email, phone: nonempty(c.phone), paymentProcessorRef: c.paymentProcessorRef };
}

function categories(values: readonly unknown[]): SpecialCategory[] {
  return values.map((v) => named(SpecialCategory, "SPECIAL_CATEGORY_", v));
}

function categoryWires(values: readonly SpecialCategory[] | undefined): CategoryWire[] {
  return (values ?? []).map((c) => toWire<CategoryWire>("SPECIAL_CATEGORY_", c));
}

function ticket(t: SupportTicket__Output | null): SupportTicket {
  if (t === null) throw missing("ticket");
  return {
    ticketId: t.ticketId,
    subjectId: t.subjectId,
    contact: t.contact,
    summary: t.summary,
    description: t.description,
    attachments: t.attachments.map((a) => ({
      fileName: a.fileName,
      contentType: a.contentType,
      content: a.content,
      sizeBytes: Number(a.sizeBytes),
      specialCategories: categories(a.specialCategories),
    })),
    createdAt: time(t.createdAt),
    specialCategories: categories(t.specialCategories),
  };
}

/** An erasure's receipt (identity's DeleteAccount, a rights task). */
export function erasureReceipt(r: ErasureReceipt__Output | null): ErasureReceipt {
  if (r === null) throw missing("receipt");
  return {
    requestId: r.requestId,
    subjectId: r.subjectId,
    service: r.service,
    erased: r.erased.map((e) => ({ category: e.category, count: Number(e.count) })),
    retained: r.retained.map((k) => ({
      category: k.category,
      legalBasis: named(LegalBasis, "LEGAL_BASIS_", k.legalBasis),
      reason: k.reason,
      retainUntil: time(k.retainUntil),
      count: Number(k.count),
    })),
    completedAt: time(r.completedAt),
    keyDestroyed: r.keyDestroyed,
    keyBackupsGoneBy: time(r.keyBackupsGoneBy),
  };
}

/** The identity service. */
export class IdentityClient {
  readonly config: Config;
  private readonly caller: Caller<IdentityServiceClient>;

  constructor(config: Config) {
    this.config = config;
    const make = contracts().pdm.identity.v1.IdentityService as unknown as ClientConstructor<IdentityServiceClient>;
    this.caller = new Caller(config, "identity", make);
  }

  /** Closes the channel (calls in flight end as cancelled). */
  close(): void {
    this.caller.close();
  }

  /** Creates an account (CreateAccount; not repeated after UNAVAILABLE: it may exist). */
  async createAccount(form: SignUp): Promise<Account> {
    const request = {
      firstName: form.firstName,
      lastName: form.lastName,
      email: form.email,
      phone: form.phone ?? "",
      region: toWire<RegionWire>("REGION_", form.region),
      birthDate: form.birthDate ?? "",
      password: form.password,
    };
    const r = await this.caller.call(false, "createAccount", request);
    return account(r.account);
  }

  /** The profile of an account. */
  async getAccount(subjectId: string): Promise<Account> {
    const r = await this.caller.call(true, "getAccount", { subjectId });
    return account(r.account);
  }

  /** Only the region of an account (what picks the privacy regime). */
  async getRegion(subjectId: string): Promise<Region> {
    const r = await this.caller.call(true, "getRegion", { subjectId });
    return named(Region, "REGION_", r.region);
  }

  /** Changes the fields given (UpdateProfile; not repeated after UNAVAILABLE). */
  async updateProfile(subjectId: string, changes: ProfileChanges): Promise<Account> {
    const request = {
      subjectId,
      firstName: changes.firstName,
      lastName: changes.lastName,
      email: changes.email,
      phone: changes.phone,
      region: changes.region === undefined ? undefined : toWire<RegionWire>("REGION_", changes.region),
      birthDate: changes.birthDate,
    };
    const r = await this.caller.call(false, "updateProfile", request);
    return account(r.account);
  }

  /** Stores or replaces the profile photo: JPEG, PNG or WebP (read from the content), at
   * most 2 MiB; anything else is INVALID_ARGUMENT on `photo`. Not repeated after
   * UNAVAILABLE (a repeat could put back a photo replaced in between). */
  async setProfilePhoto(subjectId: string, photo: Uint8Array): Promise<StoredPhoto> {
    const r = await this.caller.call(false, "setProfilePhoto", { subjectId, photo: Buffer.from(photo) });
    return { contentType: r.contentType, sizeBytes: Number(r.sizeBytes) };
  }

  /** The profile photo; NOT_FOUND when there is none. */
  async getProfilePhoto(subjectId: string): Promise<ProfilePhoto> {
    const r = await this.caller.call(true, "getProfilePhoto", { subjectId });
    return { contentType: r.contentType, photo: r.photo };
  }

  /** What other users see of the subject; NOT_FOUND for a restricted, erased or unknown
   * subject. */
  async getPublicProfile(subjectId: string): Promise<PublicProfile> {
    const r = await this.caller.call(true, "getPublicProfile", { subjectId });
    return { subjectId: r.subjectId, displayName: r.displayName, hasPhoto: r.hasPhoto };
  }

  /** The organisation inferred from the subject's email domain ("acme.co.uk"); undefined
   * for a free-mail address, a restricted subject, or one who objected to
   * `organisation_insights`. */
  async getOrganisation(subjectId: string): Promise<string | undefined> {
    const r = await this.caller.call(true, "getOrganisation", { subjectId });
    return nonempty(r.organisation);
  }

  /** Exchanges email and password for a session (a new session each call: not repeated
   * after UNAVAILABLE). Bad credentials: UNAUTHENTICATED; repeated failures:
   * RESOURCE_EXHAUSTED with `retryAfterMs`. */
  async authenticate(email: string, password: string): Promise<Session> {
    const r = await this.caller.call(false, "authenticate", { email, password });
    return { token: r.sessionToken, subjectId: r.subjectId, expiresAt: time(r.expiresAt) };
  }

  /** Whose a live session token is; UNAUTHENTICATED for an unknown or expired one. */
  async validateSession(token: string): Promise<SessionOwner> {
    const request = { sessionToken: token };
    const r = await this.caller.call(true, "validateSession", request);
    return { subjectId: r.subjectId, expiresAt: time(r.expiresAt) };
  }

  /** Checks that `credential` is the subject's (the verified subject id);
   * UNAUTHENTICATED otherwise. */
  async verifySubject(subjectId: string, credential: Credential): Promise<string> {
    const request = { subjectId, ...credential };
    const r = await this.caller.call(true, "verifySubject", request);
    return r.subjectId;
  }

  /** Links this client with the subject whose live session token it presents; the subject
   * id. A link is a fact, not an event: linking again changes nothing, so the call is
   * retried like a read. */
  async linkSubject(sessionToken: string): Promise<string> {
    const r = await this.caller.call(true, "linkSubject", { sessionToken });
    return r.subjectId;
  }

  /** Closes an account: the password again and a reason. `requestId` is the idempotency
   * key (a retry with it returns the first receipt); without one a key is made for this
   * call, so its retries are safe too. */
  async deleteAccount(
    subjectId: string,
    password: string,
    reason: DeletionReason,
    requestId?: string,
  ): Promise<ErasureReceipt> {
    const request = {
      subjectId,
      password,
      reason: toWire<(typeof DeletionReasonPb)[keyof typeof DeletionReasonPb]>("DELETION_REASON_", reason),
      requestId: requestId ?? newKey(),
    };
    const r = await this.caller.call(true, "deleteAccount", request);
    return erasureReceipt(r.receipt);
  }

  /** Stores (or replaces) the billing contact (not repeated after UNAVAILABLE). */
  async setBillingContact(subjectId: string, contact: BillingContact): Promise<BillingContact> {
    const request = {
      subjectId,
      billingContact: {
        name: contact.name,
        email: contact.email,
        phone: contact.phone ?? "",
        paymentProcessorRef: contact.paymentProcessorRef,
      },
    };
    const r = await this.caller.call(false, "setBillingContact", request);
    return billingContact(r.billingContact);
  }

  /** The billing contact; NOT_FOUND when there is none. */
  async getBillingContact(subjectId: string): Promise<BillingContact> {
    const r = await this.caller.call(true, "getBillingContact", { subjectId });
    return billingContact(r.billingContact);
  }

  /** Opens a support ticket (no idempotency key: not repeated after UNAVAILABLE). */
  async createSupportTicket(t: NewTicket): Promise<SupportTicket> {
    const request = {
      subjectId: t.subjectId,
      contact: t.contact,
      summary: t.summary,
      description: t.description,
      attachments: (t.attachments ?? []).map((a) => ({
        fileName: a.fileName,
        contentType: a.contentType ?? "",
        content: Buffer.from(a.content),
        sizeBytes: a.content.length,
        specialCategories: categoryWires(a.specialCategories),
      })),
      specialCategories: categoryWires(t.specialCategories),
    };
    const r = await this.caller.call(false, "createSupportTicket", request);
    return ticket(r.ticket);
  }

  /** The subject's tickets, newest first (attachment contents omitted). */
  async listSupportTickets(subjectId: string): Promise<SupportTicket[]> {
    const r = await this.caller.call(true, "listSupportTickets", { subjectId });
    return r.tickets.map(ticket);
  }
}
