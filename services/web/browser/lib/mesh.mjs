// A real mesh for the browser tests: the built `pdm` binary (`PDM_BIN`, as `make web-test`
// sets it) runs `pdm serve all` (the services and the web front) in a temporary directory
// on free ports, with its own certificates (`pdm certs init`) and database (SQLite files, or
// a PostgreSQL database of its own when `PDM_TEST_DATABASE=postgres`), as
// clients/typescript/test/mesh.ts does. The services are reached over mutual TLS with
// grpcurl (`make grpcurl`) as the demo company client or the privacy team (admin), and with
// the `pdm` command line.

import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

/** The repository (this file is services/web/browser/lib/mesh.mjs). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");

function binary() {
  const path = process.env.PDM_BIN;
  if (!path) {
    throw new Error(
      "PDM_BIN is not set: run the tests with `make web-test`, which builds the binary " +
        "(cargo build --bin pdm) and points PDM_BIN at it",
    );
  }
  if (!existsSync(path) || !statSync(path).isFile()) throw new Error(`PDM_BIN=${path} is not a file`);
  return path;
}

function grpcurlPath() {
  const path = process.env.GRPCURL ?? join(REPO, ".tools", "bin", "grpcurl");
  if (!existsSync(path)) throw new Error(`grpcurl is missing at ${path}: run \`make grpcurl\``);
  return path;
}

/** Whether the tests run on PostgreSQL (`PDM_TEST_DATABASE=postgres`). */
export function postgresWanted() {
  return ["postgres", "postgresql"].includes(process.env.PDM_TEST_DATABASE ?? "sqlite");
}

/** `n` ports free now (bound to port 0, then released). */
async function freePorts(n) {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise((ok, fail) => {
          const server = createServer();
          server.once("error", fail);
          server.listen(0, "127.0.0.1", () => ok(server));
        }),
    ),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

/** SQLite (the default) or a PostgreSQL database made for one mesh. */
class Database {
  constructor() {
    this.postgres = postgresWanted();
    this.adminUrl = process.env.PDM_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
    this.name = `pdm_web_${randomUUID().replaceAll("-", "")}`;
    if (this.postgres) this.psql(`CREATE DATABASE "${this.name}"`);
  }

  psql(sql) {
    execFileSync("psql", [this.adminUrl, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], { stdio: "pipe" });
  }

  get url() {
    if (!this.postgres) return undefined;
    return `${this.adminUrl.slice(0, this.adminUrl.lastIndexOf("/"))}/${this.name}`;
  }

  drop() {
    if (this.postgres) this.psql(`DROP DATABASE IF EXISTS "${this.name}" WITH (FORCE)`);
  }
}

/** A gRPC call that failed: its status code name (`NotFound`...) and message. */
export class GrpcError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

/** `pdm serve all` in a directory of its own, the web front on `mesh.url`. */
export class Mesh {
  constructor(ports, webPort) {
    this.bin = binary();
    this.grpcurl = grpcurlPath();
    this.dir = mkdtempSync(join(tmpdir(), "pdm-web-"));
    this.database = new Database();
    this.ports = ports;
    this.webPort = webPort;
    this.child = undefined;
  }

  /** A mesh serving, its web front answering /healthz. */
  static async start() {
    const listed = execFileSync(binary(), ["services"], { encoding: "utf8" });
    const names = listed
      .split("\n")
      .filter((line) => line.includes("built"))
      .map((line) => line.trim().split(/\s+/)[0]);
    const free = await freePorts(2 * names.length + 1);
    const ports = {};
    names.forEach((name, i) => {
      ports[name] = [free[2 * i], free[2 * i + 1]];
    });
    const mesh = new Mesh(ports, free[2 * names.length]);
    try {
      execFileSync(mesh.bin, ["certs", "init", "--clients", "demo"], {
        cwd: mesh.dir,
        env: mesh.env(),
        stdio: "pipe",
      });
      await mesh.serve();
    } catch (error) {
      await mesh.stop();
      throw error;
    }
    return mesh;
  }

  get dataDir() {
    return join(this.dir, "data");
  }

  get certs() {
    return join(this.dataDir, "certs");
  }

  /** The web front's origin. `localhost` is a secure context to browsers, so the
   * `Secure` cookies the front sets by default are kept over plain HTTP. */
  get url() {
    return `http://localhost:${this.webPort}`;
  }

  /** The environment of a `pdm` process of this mesh: ours without PDM_* (the mesh's
   * settings instead), the services' ports and the web front's. */
  env() {
    const env = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith("PDM_") && key !== "RUST_LOG") env[key] = value;
    }
    Object.assign(env, {
      PDM__DATA_DIR: this.dataDir,
      PDM__LOG__FORMAT: "json",
      PDM__WEB__PORT: String(this.webPort),
      // serve all holds a pool per service and the web front's.
      PDM__DATABASE__MAX_CONNECTIONS: "4",
    });
    if (this.database.url !== undefined) env.PDM__DATABASE__URL = this.database.url;
    for (const [name, [grpcPort, healthPort]] of Object.entries(this.ports)) {
      env[`PDM__SERVICES__${name.toUpperCase()}__PORT`] = String(grpcPort);
      env[`PDM__SERVICES__${name.toUpperCase()}__HEALTH_PORT`] = String(healthPort);
    }
    return env;
  }

  async serve() {
    const logPath = join(this.dir, "pdm.log");
    const log = openSync(logPath, "a");
    const child = spawn(this.bin, ["serve", "all"], { cwd: this.dir, env: this.env(), stdio: ["ignore", log, log] });
    closeSync(log);
    this.child = child;
    let gone = false;
    this.exited = new Promise((ok) =>
      child.once("exit", () => {
        gone = true;
        ok();
      }),
    );
    const limit = performance.now() + 90_000;
    for (;;) {
      if (gone) throw new Error(`pdm exited while starting; its log:\n${this.logTail()}`);
      if (performance.now() > limit) throw new Error(`pdm not serving after 90 s:\n${this.logTail()}`);
      if (readFileSync(logPath, "utf8").includes("is serving")) {
        const ok = await fetch(`${this.url}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) return;
      }
      await sleep(100);
    }
  }

  logTail(lines = 40) {
    const path = join(this.dir, "pdm.log");
    if (!existsSync(path)) return "(no log)";
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  }

  /** The whole log of `pdm serve all`. */
  log() {
    return readFileSync(join(this.dir, "pdm.log"), "utf8");
  }

  async stop() {
    if (this.child !== undefined) {
      this.child.kill("SIGTERM");
      await this.exited;
      this.child = undefined;
    }
    this.database.drop();
    if (!process.env.PDM_WEB_TEST_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Calls `method` (`pdm.consent.v1.ConsentService/CheckProcessing`) on `service` over
   * mutual TLS as `as` (`demo`, the company client; `admin`, the privacy team): the
   * answer as JSON, or a GrpcError. */
  grpc(service, method, body, as = "demo") {
    const [cert, key] =
      as === "admin"
        ? [join(this.certs, "admin.pem"), join(this.certs, "admin.key")]
        : [join(this.certs, `client-${as}.pem`), join(this.certs, `client-${as}.key`)];
    const args = [
      "-cacert",
      join(this.certs, "ca.pem"),
      "-cert",
      cert,
      "-key",
      key,
      "-emit-defaults",
      "-d",
      JSON.stringify(body),
      `127.0.0.1:${this.ports[service][0]}`,
      method,
    ];
    return new Promise((ok, fail) => {
      execFile(this.grpcurl, args, { encoding: "utf8", timeout: 30_000 }, (error, stdout, stderr) => {
        if (!error) return ok(JSON.parse(stdout || "{}"));
        const code = /Code: (\w+)/.exec(stderr)?.[1];
        const message = /Message: (.*)/.exec(stderr)?.[1] ?? "";
        if (code) return fail(new GrpcError(code, message));
        fail(new Error(`grpcurl ${method} failed: ${stderr || error.message}`));
      });
    });
  }

  /** Runs the `pdm` command line (the privacy team's, with the admin certificate) against
   * this mesh; its output. A last argument that is an object adds environment variables. */
  cli(...args) {
    const extra = typeof args.at(-1) === "object" ? args.pop() : {};
    return execFileSync(this.bin, args, {
      cwd: this.dir,
      env: { ...this.env(), ...extra },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  }

  /** A person signed up through identity by the demo company client (which links them):
   * their name, email, password and subject id. */
  async person() {
    const tag = randomBytes(5).toString("hex");
    const person = {
      firstName: "Ada",
      lastName: `Tester${tag}`,
      email: `ada.${tag}@example.org`,
      password: randomBytes(18).toString("base64url"),
    };
    const created = await this.grpc("identity", "pdm.identity.v1.IdentityService/CreateAccount", {
      first_name: person.firstName,
      last_name: person.lastName,
      email: person.email,
      region: "REGION_EEA",
      password: person.password,
    });
    const subjectId = created.account?.subjectId;
    if (!subjectId) throw new Error(`CreateAccount answered no subject id: ${JSON.stringify(created)}`);
    return { ...person, subjectId };
  }
}

/** Polls `condition` until it is truthy; fails after `boundMs`. */
export async function eventually(what, condition, boundMs = 10_000) {
  const until = performance.now() + boundMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (performance.now() > until) throw new Error(`${what}: not within ${boundMs} ms`);
    await sleep(50);
  }
}
