// One object for every service a company service may call: `pdm.consent`, `pdm.identity`,
// `pdm.telemetry`, `pdm.transfers`, `pdm.rights`, each made on first use from one
// configuration (so a service without an endpoint is a configuration error only when it
// is used).

import { Config } from "./config.js";
import { ConsentClient } from "./consent.js";
import { IdentityClient } from "./identity.js";
import { RightsClient } from "./rights.js";
import { TelemetryClient } from "./telemetry.js";
import { TransfersClient } from "./transfers.js";

interface Closable {
  close(): void;
}

/** The typed facades of pdm's services over one configuration. */
export class PdmClient {
  readonly config: Config;
  private readonly made = new Map<string, Closable>();

  constructor(config: Config) {
    this.config = config;
  }

  /** A client configured from the environment (see {@link Config.fromEnv}). */
  static fromEnv(): PdmClient {
    return new PdmClient(Config.fromEnv());
  }

  private facade<T extends Closable>(service: string, make: new (config: Config) => T): T {
    let found = this.made.get(service);
    if (found === undefined) {
      found = new make(this.config);
      this.made.set(service, found);
    }
    return found as T;
  }

  get consent(): ConsentClient {
    return this.facade("consent", ConsentClient);
  }

  get identity(): IdentityClient {
    return this.facade("identity", IdentityClient);
  }

  get telemetry(): TelemetryClient {
    return this.facade("telemetry", TelemetryClient);
  }

  get transfers(): TransfersClient {
    return this.facade("transfers", TransfersClient);
  }

  get rights(): RightsClient {
    return this.facade("rights", RightsClient);
  }

  /** Closes every channel made (calls in flight end as cancelled). */
  close(): void {
    for (const client of this.made.values()) client.close();
    this.made.clear();
  }
}
