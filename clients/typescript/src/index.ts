// Calls pdm from a company service: typed consent calls, read-your-writes tokens, and an
// in-process consent gate. See README.md.

export { Config, ConfigError, type ConfigOptions, ServiceChannel, TlsFiles, target } from "./config.js";
export { ChangeStream, type CheckOptions, ConsentClient, type Pair } from "./consent.js";
export { Code, type FieldViolation, PdmError, type Precondition } from "./errors.js";
export {
  ConsentGate,
  DEFAULT_GATE_OPTIONS,
  type GateLogger,
  type GateOptions,
  Verdict,
} from "./gate.js";
export { contracts, type Contracts } from "./proto.js";
export { RetryPolicy, type RetryOptions } from "./retry.js";
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
