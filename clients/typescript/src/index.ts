// Calls pdm from a company service: typed calls to every service a company client may
// call (consent, identity, telemetry, transfers, rights), read-your-writes tokens, and an
// in-process consent gate. See README.md.

export { type ResponseStream } from "./call.js";
export { PdmClient } from "./client.js";
export {
  Config,
  ConfigError,
  type ConfigOptions,
  ServiceChannel,
  TlsFiles,
  spiffeClientName,
  target,
} from "./config.js";
export { type ChangeStream, type CheckOptions, ConsentClient, type Pair } from "./consent.js";
export { Code, type FieldViolation, PdmError, type Precondition } from "./errors.js";
export {
  ConsentGate,
  DEFAULT_GATE_OPTIONS,
  type GateLogger,
  type GateOptions,
  Verdict,
} from "./gate.js";
export {
  type Account,
  type Attachment,
  type BillingContact,
  type Credential,
  DeletionReason,
  type ErasureReceipt,
  IdentityClient,
  type NewTicket,
  type ProfileChanges,
  Region,
  type Session,
  type SessionOwner,
  type SignUp,
  SpecialCategory,
  type SupportTicket,
} from "./identity.js";
export { contracts, type Contracts } from "./proto.js";
export { RetryPolicy, type RetryOptions } from "./retry.js";
export {
  type ChildReport,
  type ChildReportForm,
  ChildReportStatus,
  type Concern,
  ConcernKind,
  ConcernStatus,
  type DataSubjectRequest,
  DeliveryError,
  DeliveryStatus,
  type ExportChunk,
  type ExportStream,
  type MessageDelivery,
  type NewConcern,
  type NewRequest,
  type RequestCredential,
  RequestKind,
  RequestRegime,
  RequestStatus,
  type RequestStream,
  RightsClient,
  type Task,
  readExport,
} from "./rights.js";
export {
  type Aggregates,
  type ChoiceMade,
  ConnectionType,
  type Crash,
  type CrashReceipt,
  type DeviceContext,
  Dimension,
  DropReason,
  type Event,
  EventKind,
  type Happened,
  type Ingested,
  TelemetryClient,
  TrackingCategory,
  type TrackingChoice,
} from "./telemetry.js";
export {
  type AdequacyList,
  type ExpiringMechanism,
  type ImpactAssessment,
  type LegalOrder,
  type Mechanism,
  MechanismKind,
  MechanismStatus,
  PartyRole,
  type Recipient,
  RecipientRole,
  TiaOutcome,
  type Transfer,
  type TransferDecision,
  TransferOutcome,
  TransferRegime,
  TransfersClient,
} from "./transfers.js";
export {
  Change,
  Channel,
  type Decision,
  type Grant,
  LedgerEntryKind,
  LegalBasis,
  MessageKind,
  Reason,
  type Written,
} from "./types.js";
