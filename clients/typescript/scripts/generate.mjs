// Generates what the client is built from (run by `npm run generate`, before `tsc`):
// generated/proto/ holds a copy of the contracts (../../proto) and of the two google.rpc
// files the error details need (proto/google/rpc, from googleapis), loaded at run time by
// @grpc/proto-loader; generated/types/ holds their TypeScript types, written by
// proto-loader-gen-types with the options the client loads them with (src/proto.ts).
// Nothing under generated/ is committed. dist/ is emptied: `tsc` builds it again.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const contracts = join(here, "..", "..", "proto");
const out = join(here, "generated");

function protos(dir, suffix = ".proto") {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return protos(path, suffix);
    return name.endsWith(suffix) ? [path] : [];
  });
}

if (!existsSync(contracts)) {
  console.error(`generate: no contracts at ${contracts}`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
// What tsc compiled from an older generation (or a test since removed) goes too.
rmSync(join(here, "dist"), { recursive: true, force: true });
cpSync(contracts, join(out, "proto"), { recursive: true, filter: (p) => !p.endsWith(".yaml") });
cpSync(join(here, "proto"), join(out, "proto"), { recursive: true });
const files = protos(join(out, "proto")).map((p) => relative(join(out, "proto"), p)).sort();
execFileSync(
  process.execPath,
  [
    join(here, "node_modules", "@grpc", "proto-loader", "build", "bin", "proto-loader-gen-types.js"),
    "--grpcLib=@grpc/grpc-js",
    "--longs=Number",
    "--enums=String",
    "--defaults",
    "--includeComments",
    "-I",
    join(out, "proto"),
    "-O",
    join(out, "types"),
    ...files,
  ],
  { stdio: "inherit" },
);
// The client is ESM (NodeNext): relative imports name their .js file.
for (const path of protos(join(out, "types"), ".ts")) {
  const text = readFileSync(path, "utf8");
  writeFileSync(path, text.replace(/from '(\.\.?\/[^']+)'/g, "from '$1.js'"));
}
console.log(`generate: ${files.length} contracts -> generated/`);
