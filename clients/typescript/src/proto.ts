// The contracts, loaded at run time from the copy `npm run generate` made
// (generated/proto), with the options their TypeScript types were generated with
// (scripts/generate.mjs): camelCase fields, 64-bit integers as numbers, enums as their
// names, defaults filled in.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

import type { ProtoGrpcType as ConsentProto } from "../generated/types/consent.js";
import type { ProtoGrpcType as IdentityProto } from "../generated/types/identity.js";
import type { ProtoGrpcType as StatusProto } from "../generated/types/status.js";
import type { ProtoGrpcType as DetailsProto } from "../generated/types/error_details.js";
import type { ProtoGrpcType as RetentionProto } from "../generated/types/retention.js";
import type { ProtoGrpcType as RightsProto } from "../generated/types/rights.js";
import type { ProtoGrpcType as TelemetryProto } from "../generated/types/telemetry.js";
import type { ProtoGrpcType as TransfersProto } from "../generated/types/transfers.js";
import type { ProtoGrpcType as SubjectProto } from "../generated/types/subject.js";
import type { ProtoGrpcType as AuditProto } from "../generated/types/audit.js";

/** Every contract of the mesh, as `grpc.loadPackageDefinition` makes them. */
export type Contracts = ConsentProto &
  IdentityProto &
  StatusProto &
  DetailsProto &
  RetentionProto &
  RightsProto &
  TelemetryProto &
  TransfersProto &
  SubjectProto &
  AuditProto;

const FILES = [
  "pdm/audit/v1/audit.proto",
  "pdm/common/v1/common.proto",
  "pdm/consent/v1/consent.proto",
  "pdm/identity/v1/identity.proto",
  "pdm/retention/v1/retention.proto",
  "pdm/rights/v1/rights.proto",
  "pdm/subject/v1/subject.proto",
  "pdm/telemetry/v1/telemetry.proto",
  "pdm/transfers/v1/transfers.proto",
  "google/rpc/status.proto",
  "google/rpc/error_details.proto",
];

/** Where the contracts are: `generated/proto` beside `dist/` (this file is dist/src/proto.js). */
function protoDir(): string {
  const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "generated", "proto");
  if (!existsSync(dir)) {
    throw new Error(`pdm client: no contracts at ${dir}: run \`npm run build\` (it generates them)`);
  }
  return dir;
}

let loaded: { definition: protoLoader.PackageDefinition; contracts: Contracts } | undefined;

function load(): { definition: protoLoader.PackageDefinition; contracts: Contracts } {
  if (loaded === undefined) {
    const definition = protoLoader.loadSync(FILES, {
      includeDirs: [protoDir()],
      longs: Number,
      enums: String,
      defaults: true,
    });
    const contracts = grpc.loadPackageDefinition(definition) as unknown as Contracts;
    loaded = { definition, contracts };
  }
  return loaded;
}

/** The generated clients and messages of every contract (`contracts().pdm.identity.v1.IdentityService`). */
export function contracts(): Contracts {
  return load().contracts;
}

/** The package definition: message (de)serialisers and enum descriptors by full name. */
export function definition(): protoLoader.PackageDefinition {
  return load().definition;
}

/** The names and numbers of a contract's enum (`pdm.consent.v1.Reason`). */
export function enumValues(fullName: string): Map<string, number> {
  const found = definition()[fullName] as protoLoader.EnumTypeDefinition | undefined;
  const type = found?.type as { value?: { name: string; number: number }[] } | undefined;
  if (type?.value === undefined) throw new Error(`pdm client: no enum ${fullName}`);
  return new Map(type.value.map((v) => [v.name, v.number]));
}
