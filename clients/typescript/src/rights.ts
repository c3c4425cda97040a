// The rights service as typed calls: a data subject's requests (access, portability,
// rectification, erasure, restriction, objection, the CCPA's), their progress as a stream,
// the export package as a stream of bytes, complaints and reports of a child's data.
// Failures as PdmError: a bad field is INVALID_ARGUMENT with its `fieldViolations`
// (nothing stored); a request this client did not submit (without the subject's session)
// is NOT_FOUND.

import type { RightsServiceClient } from "../generated/types/pdm/rights/v1/RightsService.js";
import type { DataSubjectRequest__Output } from "../generated/types/pdm/rights/v1/DataSubjectRequest.js";
import type { DownloadExportResponse__Output } from "../generated/types/pdm/rights/v1/DownloadExportResponse.js";
import type { WatchRequestResponse__Output } from "../generated/types/pdm/rights/v1/WatchRequestResponse.js";
import type { Credential as CredentialPb } from "../generated/types/pdm/rights/v1/Credential.js";
import { ChildReportStatus as ChildReportStatusPb } from "../generated/types/pdm/rights/v1/ChildReportStatus.js";
import { ConcernKind as ConcernKindPb } from "../generated/types/pdm/rights/v1/ConcernKind.js";
import { ConcernStatus as ConcernStatusPb } from "../generated/types/pdm/rights/v1/ConcernStatus.js";
import { DeliveryError as DeliveryErrorPb } from "../generated/types/pdm/rights/v1/DeliveryError.js";
import { DeliveryStatus as DeliveryStatusPb } from "../generated/types/pdm/rights/v1/DeliveryStatus.js";
import { Regime as RegimePb } from "../generated/types/pdm/rights/v1/Regime.js";
import { RequestKind as RequestKindPb } from "../generated/types/pdm/rights/v1/RequestKind.js";
import { Status as StatusPb } from "../generated/types/pdm/rights/v1/Status.js";
import { Caller, type ResponseStream, missing, newKey } from "./call.js";
import type { ClientConstructor, Config } from "./config.js";
import { type ErasureReceipt, erasureReceipt } from "./identity.js";
import { contracts } from "./proto.js";
import { enumOf, named, nonempty, time, toWire } from "./types.js";

/** What a subject asks for. */
export const RequestKind = enumOf(RequestKindPb, "REQUEST_KIND_");
export type RequestKind = (typeof RequestKind)[keyof typeof RequestKind];

/** The law a request is made under (`GDPR`, `UK_GDPR`, `SWISS`, `CCPA`). */
export const RequestRegime = enumOf(RegimePb, "REGIME_");
export type RequestRegime = (typeof RequestRegime)[keyof typeof RequestRegime];

/** Where a request stands. */
export const RequestStatus = enumOf(StatusPb, "STATUS_");
export type RequestStatus = (typeof RequestStatus)[keyof typeof RequestStatus];

/** Where the delivery of a message to the subject stands. */
export const DeliveryStatus = enumOf(DeliveryStatusPb, "DELIVERY_STATUS_");
export type DeliveryStatus = (typeof DeliveryStatus)[keyof typeof DeliveryStatus];

/** What went wrong at a message's last failed attempt (a category, never the relay's words). */
export const DeliveryError = enumOf(DeliveryErrorPb, "DELIVERY_ERROR_");
export type DeliveryError = (typeof DeliveryError)[keyof typeof DeliveryError];

/** What a concern is about. */
export const ConcernKind = enumOf(ConcernKindPb, "CONCERN_KIND_");
export type ConcernKind = (typeof ConcernKind)[keyof typeof ConcernKind];

/** Where a concern stands. */
export const ConcernStatus = enumOf(ConcernStatusPb, "CONCERN_STATUS_");
export type ConcernStatus = (typeof ConcernStatus)[keyof typeof ConcernStatus];

/** Where a report of a child's data stands. */
export const ChildReportStatus = enumOf(ChildReportStatusPb, "CHILD_REPORT_STATUS_");
export type ChildReportStatus = (typeof ChildReportStatus)[keyof typeof ChildReportStatus];

type Wire<O> = O[keyof O];

/** Proof that the requester is the subject: a live session token or the account password
 * (with the subject id). */
export type RequestCredential = { readonly sessionToken: string } | { readonly password: string };

/** A new request. */
export interface NewRequest {
  readonly kind: RequestKind;
  readonly regime: RequestRegime;
  /** Required unless a session token identifies the subject. */
  readonly subjectId?: string | undefined;
  /** Without it the request waits for {@link RightsClient.verifyRequest}. */
  readonly credential?: RequestCredential | undefined;
  /** The purpose objected to (OBJECTION). */
  readonly purpose?: string | undefined;
  /** Corrections (RECTIFICATION): field (`email`, `phone`, …) and the correct value. */
  readonly rectifications?: readonly { readonly field: string; readonly value: string }[] | undefined;
  /** Concerns a child's data: handled first. */
  readonly concernsChild?: boolean | undefined;
  /** The requester's notes (at most 1,000 characters). */
  readonly notes?: string | undefined;
  /** The idempotency key (1-128 printable ASCII characters, no spaces): a retry returns
   * the first request. Without one a key is made for this call. */
  readonly clientReference?: string | undefined;
}

/** One service's part of a request. */
export interface Task {
  readonly service: string;
  /** e.g. "erase", "export", "restrict". */
  readonly action: string;
  /** "pending", "running", "done" or "failed" (retried). */
  readonly status: string;
  readonly attempts: number;
  /** No personal data. */
  readonly lastError: string | undefined;
  readonly doneAt: Date | undefined;
  /** An erasure's receipt. */
  readonly receipt: ErasureReceipt | undefined;
}

/** How one message to the subject about the request fared. */
export interface MessageDelivery {
  /** "received", "extended", "completed" or "refused". */
  readonly topic: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  /** Undefined once sent, and before any failure. */
  readonly lastError: DeliveryError | undefined;
  readonly queuedAt: Date | undefined;
  readonly sentAt: Date | undefined;
  readonly nextAttemptAt: Date | undefined;
}

/** A data-subject request and where it stands. */
export interface DataSubjectRequest {
  readonly requestId: string;
  readonly kind: RequestKind;
  readonly regime: RequestRegime;
  /** Undefined while unverified. */
  readonly subjectId: string | undefined;
  readonly status: RequestStatus;
  readonly receivedAt: Date | undefined;
  readonly verifiedAt: Date | undefined;
  /** The current deadline. */
  readonly dueAt: Date | undefined;
  readonly originalDueAt: Date | undefined;
  readonly extensionReason: string | undefined;
  /** CCPA: receipt confirmed by then. */
  readonly confirmBy: Date | undefined;
  readonly closedAt: Date | undefined;
  /** Why it was denied or cancelled. */
  readonly outcomeReason: string | undefined;
  readonly concernsChild: boolean;
  readonly tasks: readonly Task[];
  /** The deadline passed while open. */
  readonly overdue: boolean;
  /** Access and portability: until when the package can be downloaded. */
  readonly packageExpiresAt: Date | undefined;
  /** Access and portability, once completed: the one-time token
   * {@link RightsClient.downloadExport} needs. Given once, to the first caller that sees
   * the request completed: keep it. */
  readonly downloadToken: string | undefined;
  /** A refused request's reasons and the right to complain, as the subject was told. */
  readonly refusal:
    | { readonly reasons: readonly string[]; readonly rightToComplain: string; readonly notifiedAt: Date | undefined }
    | undefined;
  /** The reason given when deleting the account (a DeletionReason name). */
  readonly deletionReason: string | undefined;
  /** The messages sent to the subject about it, oldest first. */
  readonly messages: readonly MessageDelivery[];
}

/** A complaint, or a report that someone's data may have been compromised. */
export interface NewConcern {
  readonly kind: ConcernKind;
  /** How to answer the reporter (at most 254 characters). */
  readonly contactEmail: string;
  /** 1-4,000 characters, in the reporter's words. */
  readonly description: string;
  /** The subject it concerns, when the reporter is signed in. */
  readonly subjectId?: string | undefined;
}

/** A concern as its reporter sees it. */
export interface Concern {
  readonly concernId: string;
  readonly kind: ConcernKind;
  readonly status: ConcernStatus;
  readonly receivedAt: Date | undefined;
  /** When the privacy team owes an answer (a month; 72 hours for a compromise). */
  readonly dueAt: Date | undefined;
  readonly closedAt: Date | undefined;
  readonly overdue: boolean;
  readonly outcome: string | undefined;
  /** Where the reporter may complain if unsatisfied. */
  readonly rightToComplain: string;
}

/** A report that a child's data is held: exactly one of `subjectId` and `email` names the
 * account. */
export interface ChildReportForm {
  readonly subjectId?: string | undefined;
  /** The account's email address (at most 254 characters). */
  readonly email?: string | undefined;
  /** How to reach the reporter: an email address. */
  readonly reporterContact: string;
  /** At most 1,000 characters. */
  readonly notes?: string | undefined;
}

/** A report of a child's data, as its reporter sees it (nothing of the account). */
export interface ChildReport {
  readonly reportId: string;
  readonly status: ChildReportStatus;
  readonly receivedAt: Date | undefined;
}

/** One piece of an export package (JSON, schema "pdm.export.v1"). */
export interface ExportChunk {
  readonly chunk: Buffer;
  readonly contentType: string;
}

/** A request's states as WatchRequest streams them: the request after each change, until
 * it ends. */
export type RequestStream = ResponseStream<WatchRequestResponse__Output, DataSubjectRequest>;
/** An export package as DownloadExport streams it. */
export type ExportStream = ResponseStream<DownloadExportResponse__Output, ExportChunk>;

function credential(c: RequestCredential | undefined): CredentialPb | null {
  if (c === undefined) return null;
  return "sessionToken" in c ? { sessionToken: c.sessionToken } : { password: c.password };
}

/** A request as the service answers it. */
export function dataSubjectRequest(r: DataSubjectRequest__Output | null): DataSubjectRequest {
  if (r === null) throw missing("request");
  const lastError = (e: unknown): DeliveryError | undefined => {
    const found = named(DeliveryError, "DELIVERY_ERROR_", e);
    return found === DeliveryError.UNSPECIFIED ? undefined : found;
  };
  return {
    requestId: r.requestId,
    kind: named(RequestKind, "REQUEST_KIND_", r.kind),
    regime: named(RequestRegime, "REGIME_", r.regime),
    subjectId: nonempty(r.subjectId),
    status: named(RequestStatus, "STATUS_", r.status),
    receivedAt: time(r.receivedAt),
    verifiedAt: time(r.verifiedAt),
    dueAt: time(r.dueAt),
    originalDueAt: time(r.originalDueAt),
    extensionReason: nonempty(r.extensionReason),
    confirmBy: time(r.confirmBy),
    closedAt: time(r.closedAt),
    outcomeReason: nonempty(r.outcomeReason),
    concernsChild: r.concernsChild,
    tasks: r.tasks.map((t) => ({
      service: t.service,
      action: t.action,
      status: t.status,
      attempts: t.attempts,
      lastError: nonempty(t.lastError),
      doneAt: time(t.doneAt),
      receipt: t.receipt === null ? undefined : erasureReceipt(t.receipt),
    })),
    overdue: r.overdue,
    packageExpiresAt: time(r.packageExpiresAt),
    downloadToken: nonempty(r.downloadToken),
    refusal:
      r.refusal === null
        ? undefined
        : { reasons: r.refusal.reasons, rightToComplain: r.refusal.rightToComplain, notifiedAt: time(r.refusal.notifiedAt) },
    deletionReason: nonempty(r.deletionReason),
    messages: r.messages.map((m) => ({
      topic: m.topic,
      status: named(DeliveryStatus, "DELIVERY_STATUS_", m.status),
      attempts: m.attempts,
      lastError: lastError(m.lastError),
      queuedAt: time(m.queuedAt),
      sentAt: time(m.sentAt),
      nextAttemptAt: time(m.nextAttemptAt),
    })),
  };
}

/** The rights service. */
export class RightsClient {
  readonly config: Config;
  private readonly caller: Caller<RightsServiceClient>;

  constructor(config: Config) {
    this.config = config;
    const make = contracts().pdm.rights.v1.RightsService as unknown as ClientConstructor<RightsServiceClient>;
    this.caller = new Caller(config, "rights", make);
  }

  /** Closes the channel (calls in flight, streams included, end as cancelled). */
  close(): void {
    this.caller.close();
  }

  /** Records a request and, when the credential checks out, starts it. `clientReference`
   * is the idempotency key (one is made when none is given), so the call is retried
   * after UNAVAILABLE too: the retry returns the first request. */
  async submitRequest(request: NewRequest): Promise<DataSubjectRequest> {
    const message = {
      kind: toWire<Wire<typeof RequestKindPb>>("REQUEST_KIND_", request.kind),
      regime: toWire<Wire<typeof RegimePb>>("REGIME_", request.regime),
      subjectId: request.subjectId ?? "",
      credential: credential(request.credential),
      purpose: request.purpose ?? "",
      rectifications: (request.rectifications ?? []).map((r) => ({ field: r.field, value: r.value })),
      concernsChild: request.concernsChild ?? false,
      notes: request.notes ?? "",
      clientReference: request.clientReference ?? newKey(),
    };
    const r = await this.caller.call(true, "submitRequest", message);
    return dataSubjectRequest(r.request);
  }

  /** Supplies the credential of a request waiting for verification; the request as it now
   * stands (still waiting when the credential failed). Verifying a request already
   * verified changes nothing, so the call is retried like a read. */
  async verifyRequest(
    requestId: string,
    proof: RequestCredential,
    subjectId?: string,
  ): Promise<DataSubjectRequest> {
    const message = { requestId, subjectId: subjectId ?? "", credential: credential(proof) };
    const r = await this.caller.call(true, "verifyRequest", message);
    return dataSubjectRequest(r.request);
  }

  /** A request with its per-service tasks. `sessionToken` (the subject's) lets a client
   * other than the one that submitted it see it. */
  async getRequest(requestId: string, options: { sessionToken?: string } = {}): Promise<DataSubjectRequest> {
    const message = { requestId, sessionToken: options.sessionToken ?? "" };
    const r = await this.caller.call(true, "getRequest", message);
    return dataSubjectRequest(r.request);
  }

  /** The request after each change, until it ends (no deadline; `cancel()` ends it
   * sooner): `for await (const request of rights.watchRequest(id))`. */
  watchRequest(requestId: string, options: { sessionToken?: string } = {}): RequestStream {
    const message = { requestId, sessionToken: options.sessionToken ?? "" };
    return this.caller.stream(
      (c, m) => c.watchRequest(message, m),
      (response: WatchRequestResponse__Output) =>
        response.request === null ? undefined : dataSubjectRequest(response.request),
    );
  }

  /** The package of a completed access or portability request, in pieces. A caller other
   * than the privacy team needs the request's one-time `downloadToken`; a complete
   * download uses it up, so a download is never retried by the client. */
  downloadExport(
    requestId: string,
    options: { downloadToken?: string; sessionToken?: string } = {},
  ): ExportStream {
    const message = {
      requestId,
      downloadToken: options.downloadToken ?? "",
      sessionToken: options.sessionToken ?? "",
    };
    return this.caller.stream(
      (c, m) => c.downloadExport(message, m),
      (response: DownloadExportResponse__Output) => ({ chunk: response.chunk, contentType: response.contentType }),
    );
  }

  /** Files a complaint or a report of compromised data (no idempotency key: not repeated
   * after UNAVAILABLE). The answer never says whether a named subject exists. */
  async reportConcern(concern: NewConcern): Promise<Concern> {
    const message = {
      kind: toWire<Wire<typeof ConcernKindPb>>("CONCERN_KIND_", concern.kind),
      contactEmail: concern.contactEmail,
      description: concern.description,
      subjectId: concern.subjectId ?? "",
    };
    const r = await this.caller.call(false, "reportConcern", message);
    const c = r.concern;
    if (c === null) throw missing("concern");
    return {
      concernId: c.concernId,
      kind: named(ConcernKind, "CONCERN_KIND_", c.kind),
      status: named(ConcernStatus, "CONCERN_STATUS_", c.status),
      receivedAt: time(c.receivedAt),
      dueAt: time(c.dueAt),
      closedAt: time(c.closedAt),
      overdue: c.overdue,
      outcome: nonempty(c.outcome),
      rightToComplain: c.rightToComplain,
    };
  }

  /** Reports that a child's data is held (not repeated after UNAVAILABLE). Nothing is
   * erased until the privacy team confirms; the answer is the same whether or not the
   * account exists. */
  async reportChild(report: ChildReportForm): Promise<ChildReport> {
    const message = {
      subjectId: report.subjectId ?? "",
      email: report.email ?? "",
      reporterContact: report.reporterContact,
      notes: report.notes ?? "",
    };
    const r = await this.caller.call(false, "reportChild", message);
    const c = r.report;
    if (c === null) throw missing("report");
    return { reportId: c.reportId, status: named(ChildReportStatus, "CHILD_REPORT_STATUS_", c.status), receivedAt: time(c.receivedAt) };
  }
}

/** Every byte of an export package, read to its end. */
export async function readExport(stream: ExportStream): Promise<{ contentType: string; bytes: Buffer }> {
  const chunks: Buffer[] = [];
  let contentType = "";
  for await (const piece of stream) {
    chunks.push(piece.chunk);
    if (piece.contentType !== "") contentType = piece.contentType;
  }
  return { contentType, bytes: Buffer.concat(chunks) };
}
