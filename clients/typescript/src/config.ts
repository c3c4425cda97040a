// A client's configuration: endpoints, certificates, timeout; from the environment (the
// same variables as the Rust and Python clients) or in code. And the channel to a service,
// whose mutual-TLS credentials are made again when the certificate files change.

import { X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { debuglog } from "node:util";

import * as grpc from "@grpc/grpc-js";

import { RetryPolicy } from "./retry.js";
import { activeTraceHeaders } from "./trace.js";

const log = debuglog("pdm");

/** The deadline of a call when none is configured (retries included). */
export const DEFAULT_TIMEOUT_MS = 5_000;
/** How often, at most, the certificate files are looked at for a change. */
export const DEFAULT_RELOAD_CHECK_MS = 5_000;

/** What is wrong with a client's configuration: every problem, each with its key. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`pdm client configuration: ${problems.join("; ")}`);
  }
}

/** The files of mutual TLS: the mesh's CA, this client's certificate and key (PEM). */
export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export const TlsFiles = {
  /** The certificates of company client `name` laid out as `pdm certs init` writes them:
   * `ca.pem`, `client-<name>.pem`, `client-<name>.key`. */
  client(directory: string, name: string): TlsFiles {
    return {
      ca: join(directory, "ca.pem"),
      cert: join(directory, `client-${name}.pem`),
      key: join(directory, `client-${name}.key`),
    };
  },
};

export interface ConfigOptions {
  /** Service name -> URL (`http://consent.pdm:50052`: the scheme stays `http`, TLS comes
   * from the certificates). */
  endpoints: Record<string, string>;
  /** Mutual TLS; without it the client speaks plaintext (a mesh behind a sidecar). */
  tls?: TlsFiles | undefined;
  /** This client's own SPIFFE id (`spiffe://pdm.local/client/newsletter`): with `tls`, the
   * certificate must be for it (its URI SAN), else the client is not built (ConfigError). */
  spiffeId?: string | undefined;
  /** The deadline of a call, retries included. Default 5000. */
  timeoutMs?: number | undefined;
  retry?: RetryPolicy | undefined;
  /** The name the server's certificate is checked against, when it is not the endpoint's
   * host (gRPC's `grpc.ssl_target_name_override`). */
  serverName?: string | undefined;
  /** How often, at most, the certificate files are checked for a change. Default 5000. */
  reloadCheckMs?: number | undefined;
  /** The W3C trace-context headers of a call; by default the active OpenTelemetry
   * context's, when @opentelemetry/api is installed. */
  traceHeaders?: (() => Record<string, string>) | undefined;
}

/** `http://127.0.0.1:50052` -> `127.0.0.1:50052` (a bare `host:port` as is); undefined
 * when there is no host and port. */
export function target(url: string): string | undefined {
  const found = /^(?:[a-z][a-z0-9+.-]*:\/\/)?(\[[0-9a-f:.]+\]|[^:/?#[\]@\s]+):(\d{1,5})(?:[/?#].*)?$/i.exec(url);
  if (found === null) return undefined;
  const port = Number(found[2]);
  if (port < 1 || port > 65_535) return undefined;
  return `${found[1]}:${port}`;
}

/** The name of company client `<name>` in a SPIFFE id `spiffe://<trust domain>/client/<name>`
 * (undefined for an id of another form: a service's, the privacy team's, a path deeper, a
 * name the mesh would not read: 1-64 of a-z, 0-9, `-`, `_`). */
export function spiffeClientName(id: string): string | undefined {
  const found = /^spiffe:\/\/[^/]+\/client\/([a-z0-9_-]{1,64})$/.exec(id);
  return found?.[1];
}

/** The URI subject alternative names of a PEM certificate (its first, the leaf). */
function uriNames(pem: Buffer): string[] {
  const names = new X509Certificate(pem).subjectAltName ?? "";
  // Node writes "DNS:localhost, URI:spiffe://…"; a name holding a comma or a quote is
  // written as a JSON string.
  return (names.match(/(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g) ?? []).map((entry) => {
    const value = entry.replace(/^(?:, )?URI:/, "");
    return value.startsWith('"') ? (JSON.parse(value) as string) : value;
  });
}

/** Where the services answer and how to reach them. */
export class Config {
  readonly endpoints: Readonly<Record<string, string>>;
  readonly tls: TlsFiles | undefined;
  readonly spiffeId: string | undefined;
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly serverName: string | undefined;
  readonly reloadCheckMs: number;
  readonly traceHeaders: () => Record<string, string>;

  constructor(options: ConfigOptions) {
    this.endpoints = { ...options.endpoints };
    this.tls = options.tls;
    this.spiffeId = options.spiffeId;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retry = options.retry ?? new RetryPolicy();
    this.serverName = options.serverName;
    this.reloadCheckMs = options.reloadCheckMs ?? DEFAULT_RELOAD_CHECK_MS;
    this.traceHeaders = options.traceHeaders ?? activeTraceHeaders;
  }

  /**
   * Reads `PDM_ENDPOINT_<SERVICE>` (e.g. `PDM_ENDPOINT_CONSENT`), `PDM_CERT_DIR` with
   * `PDM_CLIENT_NAME` (or `PDM_CA_FILE`, `PDM_CERT_FILE` and `PDM_KEY_FILE`),
   * `PDM_SPIFFE_ID` (this client's identity; with `PDM_CERT_DIR` it names the client when
   * `PDM_CLIENT_NAME` is not set), `PDM_TIMEOUT_MS`. Throws a {@link ConfigError} naming
   * every problem.
   */
  static fromEnv(env: Readonly<Record<string, string | undefined>> = process.env): Config {
    const problems: string[] = [];
    const endpoints: Record<string, string> = {};
    const prefix = "PDM_ENDPOINT_";
    for (const key of Object.keys(env).sort()) {
      const value = env[key];
      if (key.startsWith(prefix) && key.length > prefix.length && value !== undefined) {
        endpoints[key.slice(prefix.length).toLowerCase()] = value;
      }
    }
    if (Object.keys(endpoints).length === 0) {
      problems.push("PDM_ENDPOINT_<SERVICE>: no endpoint given");
    }
    for (const [service, url] of Object.entries(endpoints)) {
      if (target(url) === undefined) {
        problems.push(`PDM_ENDPOINT_${service.toUpperCase()}: not a URL with a host and port`);
      }
    }
    let tls: TlsFiles | undefined;
    const [ca, cert, key] = [env["PDM_CA_FILE"], env["PDM_CERT_FILE"], env["PDM_KEY_FILE"]];
    const certDir = env["PDM_CERT_DIR"];
    const spiffeId = env["PDM_SPIFFE_ID"];
    const spiffeName = spiffeId === undefined ? undefined : spiffeClientName(spiffeId);
    const given = env["PDM_CLIENT_NAME"];
    if (spiffeId !== undefined && spiffeName === undefined) {
      problems.push(`PDM_SPIFFE_ID: a company client's id is spiffe://<trust domain>/client/<name>, not '${spiffeId}'`);
    } else if (spiffeName !== undefined && given !== undefined && spiffeName !== given) {
      problems.push(`PDM_SPIFFE_ID: names client ${spiffeName}, PDM_CLIENT_NAME is ${given}`);
    }
    const name = given ?? spiffeName;
    if (certDir !== undefined && name !== undefined) {
      tls = TlsFiles.client(certDir, name);
    } else if (certDir !== undefined && spiffeId === undefined) {
      problems.push("PDM_CLIENT_NAME: required with PDM_CERT_DIR (or PDM_SPIFFE_ID)");
    } else if (ca !== undefined && cert !== undefined && key !== undefined) {
      tls = { ca, cert, key };
    } else if (ca !== undefined || cert !== undefined || key !== undefined) {
      problems.push("PDM_CA_FILE, PDM_CERT_FILE, PDM_KEY_FILE: give all three or none");
    }
    let timeoutMs = DEFAULT_TIMEOUT_MS;
    const raw = env["PDM_TIMEOUT_MS"];
    if (raw !== undefined) {
      const ms = /^\d+$/.test(raw) ? Number(raw) : NaN;
      if (ms >= 1 && ms <= 600_000) {
        timeoutMs = ms;
      } else {
        problems.push("PDM_TIMEOUT_MS: a whole number of milliseconds, 1 to 600000");
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return new Config({ endpoints, tls, spiffeId, timeoutMs });
  }

  /** The target (`host:port`) of `service`. */
  endpoint(service: string): string {
    const url = this.endpoints[service];
    const key = `PDM_ENDPOINT_${service.toUpperCase()}`;
    if (url === undefined) throw new ConfigError([`${key}: not configured`]);
    const found = target(url);
    if (found === undefined) throw new ConfigError([`${key}: not a URL with a host and port`]);
    return found;
  }

  /** The channel credentials, the certificate files read now (insecure without TLS). */
  credentials(): grpc.ChannelCredentials {
    if (this.tls === undefined) return grpc.credentials.createInsecure();
    const read = (path: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? String(error);
        throw new ConfigError([`certificates: ${path}: ${reason}`]);
      }
    };
    const [ca, cert, key] = [read(this.tls.ca), read(this.tls.cert), read(this.tls.key)];
    if (this.spiffeId !== undefined) this.checkIdentity(cert);
    return grpc.credentials.createSsl(ca, key, cert);
  }

  /** The certificate must be for this client's SPIFFE id (its one URI SAN): a certificate
   * of another client would make every call act as that client. */
  private checkIdentity(cert: Buffer): void {
    let found: string[];
    try {
      found = uriNames(cert);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConfigError([`PDM_SPIFFE_ID: the certificate cannot be read: ${reason}`]);
    }
    if (found.length !== 1 || found[0] !== this.spiffeId) {
      const shown = found.length === 0 ? "no URI SAN" : found.join(", ");
      throw new ConfigError([`PDM_SPIFFE_ID: the certificate is for ${shown}, not ${this.spiffeId}`]);
    }
  }

  /** The options of every channel. */
  channelOptions(): grpc.ChannelOptions {
    const options: grpc.ChannelOptions = {
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_permit_without_calls": 1,
      // Reconnect quickly after a restart of the mesh (the gate's stream).
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 2_000,
    };
    if (this.serverName !== undefined) options["grpc.ssl_target_name_override"] = this.serverName;
    return options;
  }

  /** The channel to `service` through a generated client's constructor
   * (`contracts().pdm.<service>.v1.<Service>`): connects lazily, and is made again when
   * the certificate files change. */
  connect<C extends grpc.Client>(service: string, make: ClientConstructor<C>): ServiceChannel<C> {
    return new ServiceChannel(this, service, make);
  }
}

export type ClientConstructor<C extends grpc.Client> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => C;

interface Generation<C> {
  client: C;
  inFlight: number;
  retired: boolean;
}

/**
 * A generated client of one service whose credentials follow the certificate files: at
 * most every `reloadCheckMs` a call looks at the files' modification times, and when they
 * changed the next calls go through a new channel made with the new files. The old channel
 * is closed once its last call (a stream included) has ended.
 */
export class ServiceChannel<C extends grpc.Client> {
  private current: Generation<C>;
  private stamp: string | undefined;
  private checkedAt = performance.now();
  private closed = false;
  /** How many times the credentials were made again (for tests). */
  reloads = 0;

  constructor(
    private readonly config: Config,
    private readonly service: string,
    private readonly make: ClientConstructor<C>,
  ) {
    this.stamp = this.filesStamp();
    this.current = this.open();
  }

  /** The client for one call; `release` when the call has ended. */
  acquire(): { client: C; release: () => void } {
    this.maybeReload();
    const generation = this.current;
    generation.inFlight++;
    let released = false;
    return {
      client: generation.client,
      release: () => {
        if (released) return;
        released = true;
        generation.inFlight--;
        if (generation.retired && generation.inFlight === 0) generation.client.close();
      },
    };
  }

  close(): void {
    this.closed = true;
    this.current.client.close();
  }

  private open(): Generation<C> {
    const address = this.config.endpoint(this.service);
    const client = new this.make(address, this.config.credentials(), this.config.channelOptions());
    return { client, inFlight: 0, retired: false };
  }

  private filesStamp(): string | undefined {
    const tls = this.config.tls;
    if (tls === undefined) return undefined;
    try {
      return [tls.ca, tls.cert, tls.key]
        .map((p) => {
          const s = statSync(p);
          return `${s.mtimeMs}:${s.size}`;
        })
        .join(",");
    } catch {
      return undefined; // mid-rotation: look again at the next check
    }
  }

  private maybeReload(): void {
    if (this.config.tls === undefined || this.closed) return;
    const now = performance.now();
    if (now - this.checkedAt < this.config.reloadCheckMs) return;
    this.checkedAt = now;
    const stamp = this.filesStamp();
    if (stamp === undefined || stamp === this.stamp) return;
    let next: Generation<C>;
    try {
      next = this.open();
    } catch (error) {
      log("certificates changed but could not be read; keeping the current ones: %s", String(error));
      return;
    }
    this.stamp = stamp;
    this.reloads++;
    const old = this.current;
    this.current = next;
    old.retired = true;
    if (old.inFlight === 0) old.client.close();
    log("certificates changed: new channel to %s", this.service);
  }
}
