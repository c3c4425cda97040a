// What a call to pdm can answer besides success: a PdmError carrying the status code and
// what the status's details (google.rpc.Status in `grpc-status-details-bin`) say: the bad
// fields, the unmet preconditions, how long to wait.

import * as grpc from "@grpc/grpc-js";

import type { BadRequest__Output } from "../generated/types/google/rpc/BadRequest.js";
import type { PreconditionFailure__Output } from "../generated/types/google/rpc/PreconditionFailure.js";
import type { RetryInfo__Output } from "../generated/types/google/rpc/RetryInfo.js";
import type { Status__Output } from "../generated/types/google/rpc/Status.js";
import { definition } from "./proto.js";

/** The gRPC status codes (`Code.INVALID_ARGUMENT` is 3). */
export const Code = grpc.status;
export type Code = grpc.status;

/** One bad field of a request. */
export interface FieldViolation {
  /** The field, as the proto names it (`items[3].purpose`). */
  readonly field: string;
  /** What is wrong with it. */
  readonly description: string;
}

/** One unmet precondition (e.g. `LEGAL_BASIS` on `purpose`). */
export interface Precondition {
  readonly kind: string;
  readonly subject: string;
  readonly description: string;
}

export interface PdmErrorDetails {
  fieldViolations?: FieldViolation[];
  preconditions?: Precondition[];
  retryAfterMs?: number;
}

/**
 * An error from pdm (or from reaching it). `code` says which:
 *
 * - INVALID_ARGUMENT: bad input, nothing was stored; `fieldViolations` lists every bad field.
 * - FAILED_PRECONDITION: valid, but the state does not allow it; `preconditions`.
 * - NOT_FOUND: unknown subject, or one this client is not linked with.
 * - PERMISSION_DENIED (also UNAUTHENTICATED): this caller may not call the method.
 * - UNAVAILABLE, RESOURCE_EXHAUSTED: could not answer now / refused by a limit;
 *   `retryAfterMs` when the server said how long to wait (RetryInfo).
 * - DEADLINE_EXCEEDED: the call's deadline passed.
 */
export class PdmError extends Error {
  override readonly name = "PdmError";
  /** The gRPC status code. */
  readonly code: Code;
  /** The bad fields of an INVALID_ARGUMENT (empty otherwise). */
  readonly fieldViolations: readonly FieldViolation[];
  /** The unmet preconditions of a FAILED_PRECONDITION (empty otherwise). */
  readonly preconditions: readonly Precondition[];
  /** The delay the server asked for (RetryInfo), in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(code: Code, message: string, details: PdmErrorDetails = {}) {
    super(message);
    this.code = code;
    this.fieldViolations = details.fieldViolations ?? [];
    this.preconditions = details.preconditions ?? [];
    this.retryAfterMs = details.retryAfterMs;
  }

  /** The name of the code (`INVALID_ARGUMENT`). */
  get codeName(): string {
    return Code[this.code] ?? `CODE_${this.code}`;
  }

  /** The names of the bad fields, in the server's order. */
  get fields(): string[] {
    return this.fieldViolations.map((v) => v.field);
  }
}

function deserialize<T>(name: string, bytes: Buffer): T {
  const type = definition()[name] as { deserialize(b: Buffer): object } | undefined;
  if (type === undefined) throw new Error(`no message ${name}`);
  return type.deserialize(bytes) as T;
}

/** The details of a failed call's status, when it carries a google.rpc.Status. */
function details(metadata: grpc.Metadata | undefined): PdmErrorDetails {
  const found: Required<Pick<PdmErrorDetails, "fieldViolations" | "preconditions">> &
    PdmErrorDetails = { fieldViolations: [], preconditions: [] };
  const raw = metadata?.get("grpc-status-details-bin")[0];
  if (!(raw instanceof Buffer)) return found;
  let status: Status__Output;
  try {
    status = deserialize<Status__Output>("google.rpc.Status", raw);
  } catch {
    return found; // not a google.rpc.Status: the code and message still say what happened
  }
  for (const detail of status.details) {
    const type = detail.type_url.slice(detail.type_url.lastIndexOf("/") + 1);
    try {
      if (type === "google.rpc.BadRequest") {
        const bad = deserialize<BadRequest__Output>(type, detail.value);
        found.fieldViolations.push(
          ...bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })),
        );
      } else if (type === "google.rpc.PreconditionFailure") {
        const failure = deserialize<PreconditionFailure__Output>(type, detail.value);
        found.preconditions.push(
          ...failure.violations.map((v) => ({
            kind: v.type,
            subject: v.subject,
            description: v.description,
          })),
        );
      } else if (type === "google.rpc.RetryInfo") {
        const info = deserialize<RetryInfo__Output>(type, detail.value);
        const delay = info.retryDelay;
        if (delay !== null) {
          found.retryAfterMs = Number(delay.seconds) * 1000 + delay.nanos / 1e6;
        }
      }
    } catch {
      // A detail this client cannot read is left out; the others still count.
    }
  }
  return found;
}

function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === "number";
}

/** The typed error for a failed call. */
export function fromServiceError(error: unknown): PdmError {
  if (error instanceof PdmError) return error;
  if (!isServiceError(error)) {
    return new PdmError(Code.UNKNOWN, `unknown: ${error instanceof Error ? error.message : String(error)}`);
  }
  const code = error.code;
  const message = error.details ?? "";
  const found = details(error.metadata);
  switch (code) {
    case Code.INVALID_ARGUMENT: {
      const described = (found.fieldViolations ?? [])
        .map((v) => `${v.field}: ${v.description}`)
        .join("; ");
      return new PdmError(code, `invalid argument: ${described || message}`, found);
    }
    case Code.FAILED_PRECONDITION:
      return new PdmError(code, `failed precondition: ${message}`, found);
    case Code.NOT_FOUND:
      return new PdmError(code, `not found: ${message}`, found);
    case Code.PERMISSION_DENIED:
    case Code.UNAUTHENTICATED:
      return new PdmError(code, `permission denied: ${message}`, found);
    case Code.UNAVAILABLE:
      return new PdmError(code, `unavailable: ${message}`, found);
    case Code.RESOURCE_EXHAUSTED:
      return new PdmError(code, `resource exhausted: ${message}`, found);
    case Code.DEADLINE_EXCEEDED:
      return new PdmError(code, "deadline exceeded", found);
    default:
      return new PdmError(code, `${Code[code] ?? code}: ${message}`, found);
  }
}
