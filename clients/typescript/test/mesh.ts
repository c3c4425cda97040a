// A real mesh for the tests: the built `pdm` binary (`PDM_BIN`, as `make clients-test`
// sets it) runs `pdm serve all` in a temporary directory on free ports, with its own
// certificates (`pdm certs init`) and database (SQLite files, or a PostgreSQL database of
// its own when `PDM_TEST_DATABASE=postgres`), as clients/python/tests/mesh.py does.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";

import { Config, type ConfigOptions, ConsentClient, type Grant, TlsFiles, contracts } from "../src/index.js";
import type { IdentityServiceClient } from "../generated/types/pdm/identity/v1/IdentityService.js";
import type { CreateAccountResponse__Output } from "../generated/types/pdm/identity/v1/CreateAccountResponse.js";

export const PURPOSE = "product_analytics";
export const TEXT_HASH = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";

/** A grant of `purpose` as the tests record it. */
export function grant(subjectId: string, purpose = PURPOSE): Grant {
  return { subjectId, purpose, policyVersion: "2024-06-28", textHash: TEXT_HASH, actor: "checkout" };
}

/** grpc.health.v1.HealthCheckResponse{status: SERVING} */
const SERVING = Buffer.from([0x08, 0x01]);
/** This file is dist/test/mesh.js: the repository is four levels up. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");

export function binary(): string {
  const path = process.env["PDM_BIN"];
  if (!path) {
    throw new Error(
      "PDM_BIN is not set: run the tests with `make clients-test`, which builds the binary " +
        "(cargo build --bin pdm) and points PDM_BIN at it",
    );
  }
  if (!existsSync(path) || !statSync(path).isFile()) throw new Error(`PDM_BIN=${path} is not a file`);
  return path;
}

export function postgresWanted(): boolean {
  return ["postgres", "postgresql"].includes(process.env["PDM_TEST_DATABASE"] ?? "sqlite");
}

/** `n` ports free now (bound to port 0, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<ReturnType<typeof createServer>>((ok, fail) => {
        const server = createServer();
        server.once("error", fail);
        server.listen(0, "127.0.0.1", () => ok(server));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

/** SQLite (the default) or a PostgreSQL database made for one mesh. */
class Database {
  readonly postgres = postgresWanted();
  readonly adminUrl = process.env["PDM_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres";
  readonly name = `pdm_ts_${randomUUID().replaceAll("-", "")}`;

  constructor() {
    if (this.postgres) this.psql(`CREATE DATABASE "${this.name}"`);
  }

  private psql(sql: string): void {
    execFileSync("psql", [this.adminUrl, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], { stdio: "pipe" });
  }

  get url(): string | undefined {
    if (!this.postgres) return undefined;
    return `${this.adminUrl.slice(0, this.adminUrl.lastIndexOf("/"))}/${this.name}`;
  }

  drop(): void {
    if (this.postgres) this.psql(`DROP DATABASE IF EXISTS "${this.name}" WITH (FORCE)`);
  }
}

type Ports = Record<string, [grpc: number, health: number]>;

async function serving(port: number): Promise<boolean> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const answer = await new Promise<Buffer | undefined>((ok) => {
      client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        { deadline: Date.now() + 2_000 },
        (error, value) => ok(error ? undefined : value),
      );
    });
    return answer !== undefined && answer.equals(SERVING);
  } finally {
    client.close();
  }
}

/** One `pdm serve <services>` process. */
export class Process {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;

  constructor(
    private readonly mesh: Mesh,
    private readonly services: string,
    readonly ports: Ports,
  ) {}

  async start(): Promise<void> {
    const env = this.mesh.processEnv(this.ports);
    const log = openSync(join(this.mesh.dir, "pdm.log"), "a");
    const child = spawn(this.mesh.bin, ["serve", this.services], {
      cwd: this.mesh.dir,
      env,
      stdio: ["ignore", log, log],
    });
    closeSync(log);
    this.child = child;
    let gone = false;
    this.exited = new Promise((ok) =>
      child.once("exit", () => {
        gone = true;
        ok();
      }),
    );
    const names = this.services === "all" ? Object.keys(this.mesh.ports) : this.services.split(",");
    const limit = performance.now() + 90_000;
    for (const name of names) {
      const [, health] = this.ports[name] as [number, number];
      while (!(await serving(health))) {
        if (gone) throw new Error(`pdm exited while starting; its log:\n${this.mesh.logTail()}`);
        if (performance.now() > limit) throw new Error(`${name} not serving after 90 s:\n${this.mesh.logTail()}`);
        await sleep(50);
      }
    }
  }

  /** SIGKILL: no drain (the gate's stream is cut, as by a crash). */
  async kill(): Promise<void> {
    if (this.child === undefined) return;
    this.child.kill("SIGKILL");
    await this.exited;
    this.child = undefined;
  }
}

/** `pdm serve all` in a directory of its own. */
export class Mesh {
  readonly bin = binary();
  readonly dir = mkdtempSync(join(tmpdir(), "pdm-ts-"));
  readonly database = new Database();
  readonly ports: Ports;
  readonly main: Process;
  private readonly replicas: Process[] = [];
  private readonly clients: ConsentClient[] = [];

  private constructor(ports: Ports) {
    this.ports = ports;
    this.main = new Process(this, "all", ports);
  }

  static async start(): Promise<Mesh> {
    const listed = execFileSync(binary(), ["services"], { encoding: "utf8" });
    const names = listed
      .split("\n")
      .filter((line) => line.includes("built"))
      .map((line) => line.trim().split(/\s+/)[0] as string);
    const free = await freePorts(2 * names.length);
    const ports: Ports = {};
    names.forEach((name, i) => {
      ports[name] = [free[2 * i] as number, free[2 * i + 1] as number];
    });
    const mesh = new Mesh(ports);
    try {
      execFileSync(mesh.bin, ["certs", "init", "--clients", "demo,outsider"], {
        cwd: mesh.dir,
        env: { ...process.env, PDM__DATA_DIR: mesh.dataDir },
        stdio: "pipe",
      });
      await mesh.main.start();
    } catch (error) {
      await mesh.stop();
      throw error;
    }
    return mesh;
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }

  get postgres(): boolean {
    return this.database.postgres;
  }

  settings(): Record<string, string> {
    const env: Record<string, string> = {
      PDM__DATA_DIR: this.dataDir,
      PDM__LOG__FORMAT: "json",
      // The web front (issue 20) on any free port: meshes run side by side.
      PDM__WEB__PORT: "0",
      // serve all holds a pool per service and the web front's: meshes side by side
      // (two consent replicas) must fit PostgreSQL's 100 connections.
      PDM__DATABASE__MAX_CONNECTIONS: "4",
    };
    if (this.database.url !== undefined) env["PDM__DATABASE__URL"] = this.database.url;
    return env;
  }

  /** Runs the `pdm` command line (the privacy team's, with the admin certificate) against
   * this mesh; its output. */
  cli(...args: string[]): string {
    const env = this.processEnv(this.ports);
    return execFileSync(this.bin, args, { cwd: this.dir, env, encoding: "utf8", stdio: "pipe" });
  }

  /** The environment of a `pdm` process of this mesh: ours without PDM_* (the mesh's
   * settings instead), and the services' ports. */
  processEnv(ports: Ports): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !key.startsWith("PDM_") && key !== "RUST_LOG") env[key] = value;
    }
    Object.assign(env, this.settings());
    for (const [name, [grpcPort, healthPort]] of Object.entries(ports)) {
      env[`PDM__SERVICES__${name.toUpperCase()}__PORT`] = String(grpcPort);
      env[`PDM__SERVICES__${name.toUpperCase()}__HEALTH_PORT`] = String(healthPort);
    }
    return env;
  }

  logTail(lines = 40): string {
    const path = join(this.dir, "pdm.log");
    if (!existsSync(path)) return "(no log)";
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  }

  /** Kills `pdm serve all` and starts it again: same directory, ports, database. */
  async restart(): Promise<void> {
    await this.main.kill();
    await this.main.start();
  }

  /** A second consent (`pdm serve consent`) on the same database; its port. */
  async startReplica(): Promise<number> {
    const [grpcPort, healthPort] = (await freePorts(2)) as [number, number];
    const ports: Ports = { ...this.ports, consent: [grpcPort, healthPort] };
    const replica = new Process(this, "consent", ports);
    this.replicas.push(replica);
    await replica.start();
    return grpcPort;
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.close();
    for (const process of [...this.replicas, this.main]) await process.kill();
    this.database.drop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  // --- clients, as a company service configures them

  /** The certificates of company client `name`: `demo`, or `outsider` (linked with no
   * subject demo signs up). */
  tls(name = "demo"): TlsFiles {
    return TlsFiles.client(join(this.dataDir, "certs"), name);
  }

  /** Every service of the mesh (consent on `port` when given: a replica). */
  endpoints(port?: number): Record<string, string> {
    const endpoints: Record<string, string> = {};
    for (const [name, [grpcPort]] of Object.entries(this.ports)) {
      endpoints[name] = `http://127.0.0.1:${grpcPort}`;
    }
    if (port !== undefined) endpoints["consent"] = `http://127.0.0.1:${port}`;
    return endpoints;
  }

  config(port?: number, overrides: Partial<ConfigOptions> = {}): Config {
    return new Config({ endpoints: this.endpoints(port), tls: this.tls(), ...overrides });
  }

  /** A consent client closed with the mesh. */
  consent(port?: number, overrides: Partial<ConfigOptions> = {}): ConsentClient {
    const client = new ConsentClient(this.config(port, overrides));
    this.clients.push(client);
    return client;
  }

  /** A new account created by company client `caller` (which links it): its subject id. */
  async signUp(region = "REGION_EEA", caller = "demo"): Promise<string> {
    const config = this.config(undefined, { tls: this.tls(caller) });
    const Identity = contracts().pdm.identity.v1.IdentityService;
    const client = new Identity(config.endpoint("identity"), config.credentials()) as unknown as IdentityServiceClient;
    const tag = randomBytes(6).toString("hex");
    try {
      const created = await new Promise<CreateAccountResponse__Output>((ok, fail) => {
        client.createAccount(
          {
            firstName: "Test",
            lastName: `Person${tag}`,
            email: `test.${tag}@example.org`,
            region: region as "REGION_EEA",
            password: randomBytes(18).toString("base64url"),
          },
          { deadline: Date.now() + 30_000 },
          (error, value) => (error || value === undefined ? fail(error) : ok(value)),
        );
      });
      const subject = created.account?.subjectId;
      if (!subject) throw new Error("CreateAccount answered no subject id");
      return subject;
    } finally {
      client.close();
    }
  }
}

/** Polls `condition` until it is truthy; fails after `boundMs`. */
export async function eventually<T>(
  what: string,
  condition: () => T | Promise<T>,
  boundMs = 5_000,
): Promise<NonNullable<T>> {
  const until = performance.now() + boundMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (performance.now() > until) throw new Error(`${what}: not within ${boundMs} ms`);
    await sleep(20);
  }
}
