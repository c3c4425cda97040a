// What needs no mesh: configuration from the environment, retries, error details decoded
// from a google.rpc.Status, the enumerations against the contract, the gate's cache, the
// trace context.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as grpc from "@grpc/grpc-js";
import { context, propagation, trace, type Context, type ContextManager, type TextMapPropagator } from "@opentelemetry/api";

import {
  Change,
  Channel,
  Code,
  Config,
  ConfigError,
  type Decision,
  LedgerEntryKind,
  LegalBasis,
  PdmError,
  Reason,
  RetryPolicy,
  TlsFiles,
  spiffeClientName,
  target,
} from "../src/index.js";
import { fromServiceError } from "../src/errors.js";
import { DEFAULT_GATE_OPTIONS, DecisionCache } from "../src/gate.js";
import { definition, enumValues } from "../src/proto.js";
import { activeTraceHeaders } from "../src/trace.js";
import { ENUMS } from "../src/types.js";

describe("configuration from the environment", () => {
  it("names endpoints, certificates and the timeout", () => {
    const config = Config.fromEnv({
      PDM_ENDPOINT_CONSENT: "http://consent.pdm:50052",
      PDM_CERT_DIR: "/certs",
      PDM_CLIENT_NAME: "newsletter",
      PDM_TIMEOUT_MS: "250",
      HOME: "/root",
    });
    assert.equal(config.endpoint("consent"), "consent.pdm:50052");
    assert.equal(config.tls?.cert, "/certs/client-newsletter.pem");
    assert.equal(config.tls?.key, "/certs/client-newsletter.key");
    assert.equal(config.tls?.ca, "/certs/ca.pem");
    assert.equal(config.timeoutMs, 250);

    const files = Config.fromEnv({
      PDM_ENDPOINT_CONSENT: "127.0.0.1:50052",
      PDM_CA_FILE: "/a/ca.pem",
      PDM_CERT_FILE: "/a/c.pem",
      PDM_KEY_FILE: "/a/c.key",
    });
    assert.deepEqual(files.tls, { ca: "/a/ca.pem", cert: "/a/c.pem", key: "/a/c.key" });
    assert.equal(files.timeoutMs, 5_000);
    assert.equal(Config.fromEnv({ PDM_ENDPOINT_CONSENT: "http://c:1" }).tls, undefined);
  });

  it("reports every problem with its key", () => {
    const problems = (env: Record<string, string>): string[] => {
      try {
        Config.fromEnv(env);
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.problems;
      }
      assert.fail("accepted");
    };
    assert.deepEqual(
      problems({ PDM_CERT_DIR: "/certs", PDM_TIMEOUT_MS: "soon" }).map((p) => p.split(":")[0]),
      ["PDM_ENDPOINT_<SERVICE>", "PDM_CLIENT_NAME", "PDM_TIMEOUT_MS"],
    );
    assert.match(
      problems({ PDM_ENDPOINT_CONSENT: "http://c:1", PDM_CA_FILE: "/ca.pem" })[0] ?? "",
      /^PDM_CA_FILE, PDM_CERT_FILE, PDM_KEY_FILE: /,
    );
    assert.deepEqual(
      problems({ PDM_ENDPOINT_CONSENT: "http://consent.pdm", PDM_TIMEOUT_MS: "0" }).map((p) => p.split(":")[0]),
      ["PDM_ENDPOINT_CONSENT", "PDM_TIMEOUT_MS"],
    );
    assert.throws(() => new Config({ endpoints: {} }).endpoint("consent"), /PDM_ENDPOINT_CONSENT: not configured/);
  });

  it("names the client after its SPIFFE id when PDM_CLIENT_NAME is not set", () => {
    const env = { PDM_ENDPOINT_CONSENT: "http://consent.pdm:50052", PDM_CERT_DIR: "/certs" };
    const config = Config.fromEnv({ ...env, PDM_SPIFFE_ID: "spiffe://pdm.local/client/newsletter" });
    assert.deepEqual(config.tls, TlsFiles.client("/certs", "newsletter"));
    assert.equal(config.spiffeId, "spiffe://pdm.local/client/newsletter");
    for (const id of [
      "spiffe://pdm.local/svc/consent",
      "spiffe://pdm.local/admin",
      "spiffe://pdm.local/client/",
      "spiffe://pdm.local/client/a/b",
      "spiffe://pdm.local/client/Newsletter",
      "https://pdm.local/client/newsletter",
    ]) {
      assert.equal(spiffeClientName(id), undefined, id);
      try {
        Config.fromEnv({ ...env, PDM_SPIFFE_ID: id });
        assert.fail(`accepted ${id}`);
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems.map((p) => p.split(":")[0]), ["PDM_SPIFFE_ID"], id);
      }
    }
  });

  it("takes the target of a URL", () => {
    assert.equal(target("http://127.0.0.1:50052"), "127.0.0.1:50052");
    assert.equal(target("https://consent.pdm:443/"), "consent.pdm:443");
    assert.equal(target("consent:1"), "consent:1");
    assert.equal(target("http://[::1]:50052"), "[::1]:50052");
    assert.equal(target("http://consent.pdm"), undefined);
    assert.equal(target("http://consent.pdm:70000"), undefined);
  });

  it("fails on unreadable certificate files, naming the file", () => {
    const config = new Config({
      endpoints: { consent: "http://127.0.0.1:1" },
      tls: { ca: "/nonexistent/ca.pem", cert: "/nonexistent/c.pem", key: "/nonexistent/c.key" },
    });
    assert.throws(() => config.credentials(), /certificates: \/nonexistent\/ca.pem: ENOENT/);
  });
});

describe("retries", () => {
  const exhausted = new PdmError(Code.RESOURCE_EXHAUSTED, "rate");
  const down = new PdmError(Code.UNAVAILABLE, "down");

  it("retry refusals always, unavailability only for reads", () => {
    const policy = new RetryPolicy({ firstBackoffMs: 1 });
    assert.equal(policy.retries(exhausted, false, 1), true);
    assert.equal(policy.retries(down, false, 1), false);
    assert.equal(policy.retries(down, true, 1), true);
    assert.equal(policy.retries(down, true, 4), false, "four attempts in all");
    assert.equal(policy.retries(new PdmError(Code.INVALID_ARGUMENT, "bad"), true, 1), false);
    assert.equal(policy.retries(new PdmError(Code.DEADLINE_EXCEEDED, "late"), true, 1), false);
  });

  it("wait a random time up to the doubled backoff, at least what the server asked", () => {
    const top = new RetryPolicy({ firstBackoffMs: 10, maxBackoffMs: 100, random: () => 0.999999 });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 30].map((a) => Math.round(top.backoffMs(a))),
      [10, 20, 40, 80, 100, 100],
    );
    const bottom = new RetryPolicy({ random: () => 0 });
    assert.equal(bottom.backoffMs(3), 0, "full jitter reaches zero");
    assert.equal(bottom.backoffMs(1, 700), 700);
    const real = new RetryPolicy({ firstBackoffMs: 1 });
    for (let attempt = 1; attempt < 10; attempt++) {
      assert.ok(real.backoffMs(attempt) <= Math.min(2 ** (attempt - 1), real.maxBackoffMs));
    }
  });

  it("run: a read is tried again after UNAVAILABLE, a write is not", async () => {
    const policy = new RetryPolicy({ firstBackoffMs: 1 });
    let calls = 0;
    const flaky = async (): Promise<number> => {
      calls++;
      if (calls < 3) throw down;
      return calls;
    };
    assert.equal(await policy.run(true, performance.now() + 5_000, flaky), 3);
    calls = 0;
    await assert.rejects(policy.run(false, performance.now() + 5_000, flaky), (e) => e === down);
    assert.equal(calls, 1);
    calls = 0;
    const refused = async (): Promise<number> => {
      calls++;
      if (calls < 2) throw exhausted;
      return calls;
    };
    assert.equal(await policy.run(false, performance.now() + 5_000, refused), 2, "a refusal is retried for a write");
  });

  it("run: honours RetryInfo and never waits past the deadline; each attempt gets the time left", async () => {
    const policy = new RetryPolicy({ firstBackoffMs: 1 });
    const slow = new PdmError(Code.UNAVAILABLE, "down", { retryAfterMs: 200 });
    const lefts: number[] = [];
    let calls = 0;
    const started = performance.now();
    const result = await policy.run(true, started + 5_000, async (left) => {
      lefts.push(left);
      if (++calls < 2) throw slow;
      return "ok";
    });
    assert.equal(result, "ok");
    assert.ok(performance.now() - started >= 195, "waited the server's 200 ms");
    assert.ok((lefts[0] ?? 0) <= 5_000 && (lefts[1] ?? 0) <= (lefts[0] ?? 0) - 195, lefts.join(","));

    calls = 0;
    const tooLong = new PdmError(Code.UNAVAILABLE, "down", { retryAfterMs: 10_000 });
    await assert.rejects(
      policy.run(true, performance.now() + 1_000, async () => {
        calls++;
        throw tooLong;
      }),
      (e) => e === tooLong,
    );
    assert.equal(calls, 1, "no attempt when the wait would pass the deadline");
    await assert.rejects(
      policy.run(true, performance.now() - 1, async () => "never"),
      (e) => e instanceof PdmError && e.code === Code.DEADLINE_EXCEEDED,
    );
  });
});

describe("errors", () => {
  function statusDetails(details: { type: string; value: object }[]): grpc.Metadata {
    const defs = definition() as unknown as Record<string, { serialize(v: object): Buffer }>;
    const ser = (name: string, value: object): Buffer => (defs[name] as { serialize(v: object): Buffer }).serialize(value);
    const status = ser("google.rpc.Status", {
      code: 3,
      message: "bad",
      details: details.map((d) => ({ type_url: `type.googleapis.com/${d.type}`, value: ser(d.type, d.value) })),
    });
    const metadata = new grpc.Metadata();
    metadata.set("grpc-status-details-bin", status);
    return metadata;
  }

  function serviceError(code: grpc.status, details: string, metadata = new grpc.Metadata()): grpc.ServiceError {
    return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
  }

  it("carry field violations, preconditions and RetryInfo", () => {
    const bad = fromServiceError(
      serviceError(
        Code.INVALID_ARGUMENT,
        "invalid",
        statusDetails([
          {
            type: "google.rpc.BadRequest",
            value: { fieldViolations: [{ field: "subject_id", description: "not a UUID" }, { field: "at_least", description: "not a token" }] },
          },
        ]),
      ),
    );
    assert.equal(bad.code, Code.INVALID_ARGUMENT);
    assert.deepEqual(bad.fields, ["subject_id", "at_least"]);
    assert.equal(bad.message, "invalid argument: subject_id: not a UUID; at_least: not a token");

    const pre = fromServiceError(
      serviceError(
        Code.FAILED_PRECONDITION,
        "no basis",
        statusDetails([
          { type: "google.rpc.PreconditionFailure", value: { violations: [{ type: "LEGAL_BASIS", subject: "purpose", description: "none" }] } },
        ]),
      ),
    );
    assert.deepEqual(pre.preconditions, [{ kind: "LEGAL_BASIS", subject: "purpose", description: "none" }]);

    const later = fromServiceError(
      serviceError(
        Code.UNAVAILABLE,
        "busy",
        statusDetails([{ type: "google.rpc.RetryInfo", value: { retryDelay: { seconds: 1, nanos: 500_000_000 } } }]),
      ),
    );
    assert.equal(later.retryAfterMs, 1_500);
    assert.equal(later.message, "unavailable: busy");

    const plain = fromServiceError(serviceError(Code.INTERNAL, "boom"));
    assert.deepEqual([plain.code, plain.message, plain.retryAfterMs], [Code.INTERNAL, "INTERNAL: boom", undefined]);
    const garbage = new grpc.Metadata();
    garbage.set("grpc-status-details-bin", Buffer.from([0xff, 0xff, 0xff]));
    assert.equal(fromServiceError(serviceError(Code.INVALID_ARGUMENT, "x", garbage)).fieldViolations.length, 0);
  });
});

describe("the contract", () => {
  it("has the enumerations this client names", () => {
    for (const [name, { values, prefix }] of Object.entries(ENUMS)) {
      const theirs = [...enumValues(name).keys()].map((n) => n.slice(prefix.length)).sort();
      assert.deepEqual(Object.keys(values).sort(), theirs, name);
      assert.deepEqual(Object.values(values).sort(), theirs, name);
    }
  });

  it("tells position markers and erasures apart", () => {
    const entry = (subjectId: string, kind: string) => ({
      sequence: 9,
      subjectId,
      kind: kind as "LEDGER_ENTRY_KIND_GRANT",
      purpose: "",
      channel: "CHANNEL_UNSPECIFIED" as const,
      source: "SOURCE_UNSPECIFIED" as const,
      policyVersion: "",
      textHash: "",
      actor: "",
      occurredAt: null,
      recordedAt: null,
    });
    const marker = Change.from(entry("", "LEDGER_ENTRY_KIND_UNSPECIFIED"));
    assert.deepEqual([marker.isPositionMarker, marker.isErasure, marker.sequence], [true, false, 9]);
    assert.equal(Change.from(entry("erased:x", "LEDGER_ENTRY_KIND_WITHDRAW")).isErasure, true);
    assert.equal(Change.from(entry("s", "LEDGER_ENTRY_KIND_ERASED")).isErasure, true);
    const grant = Change.from(entry("s", "LEDGER_ENTRY_KIND_GRANT"));
    assert.deepEqual([grant.isErasure, grant.isPositionMarker, grant.kind], [false, false, LedgerEntryKind.GRANT]);
    assert.equal(Change.from(entry("s", "LEDGER_ENTRY_KIND_FROM_THE_FUTURE")).kind, LedgerEntryKind.UNSPECIFIED);
    assert.equal(Channel.EMAIL, "EMAIL");
  });
});

describe("the gate's cache", () => {
  const ALLOWED: Decision = { allowed: true, reason: Reason.CONSENT_GIVEN, legalBasis: LegalBasis.CONSENT };
  const UNKNOWN: Decision = { allowed: false, reason: Reason.UNKNOWN_SUBJECT, legalBasis: LegalBasis.UNSPECIFIED };
  const quiet = { info() {}, warn() {}, debug() {} };

  it("stays within its capacity and forgets a subject on a change", () => {
    const cache = new DecisionCache({ ...DEFAULT_GATE_OPTIONS, capacity: 4 });
    for (let i = 0; i < 10; i++) {
      cache.keep(`s${i}`, "p", ALLOWED, cache.generation);
      assert.ok(cache.size <= 4);
    }
    assert.deepEqual(cache.get("s9", "p"), ALLOWED);
    assert.equal(cache.get("s0", "p"), undefined, "the oldest went first");
    cache.keep("s9", "EMAIL/PROMOTIONAL", ALLOWED, cache.generation);
    const generation = cache.generation;
    cache.apply(7, "s9", false);
    assert.equal(cache.get("s9", "p"), undefined);
    assert.equal(cache.get("s9", "EMAIL/PROMOTIONAL"), undefined);
    assert.deepEqual([cache.size, cache.position, cache.applied], [2, 7, 1]);
    // Fetched before that change: not cached.
    cache.keep("s8", "q", ALLOWED, generation);
    assert.equal(cache.get("s8", "q"), undefined);
    // An erasure names a pseudonym: everyone goes.
    cache.apply(8, "erased:abc", true);
    assert.equal(cache.size, 0);
    // Unknown subjects are not cached (a sign-up makes them known without a change).
    cache.keep("s1", "p", UNKNOWN, cache.generation);
    assert.equal(cache.get("s1", "p"), undefined);
  });

  it("moves its position on a position marker, counts it, and forgets nothing", () => {
    const cache = new DecisionCache(DEFAULT_GATE_OPTIONS);
    cache.keep("s", "p", ALLOWED, cache.generation);
    const generation = cache.generation;
    cache.marker(12);
    // Counted as the Rust gate counts it; no decision forgotten, none made stale.
    assert.deepEqual([cache.position, cache.applied, cache.generation, cache.size], [12, 1, generation, 1]);
    assert.deepEqual(cache.get("s", "p"), ALLOWED);
    cache.advance(5);
    assert.equal(cache.position, 12, "never backwards");
    assert.equal(cache.applied, 1, "where a stream starts is not an entry");
  });

  it("is trusted for staleAfter once the stream is lost, and a decision for maxAge", () => {
    let now = 1_000;
    const cache = new DecisionCache({ ...DEFAULT_GATE_OPTIONS, staleAfterMs: 200, maxAgeMs: 50 }, () => now);
    assert.equal(cache.trusted(), true, "trusted for staleAfter from the start");
    cache.caughtUp(4, 5, quiet);
    assert.equal(cache.connected, false, "not before it has replayed to the position read");
    cache.caughtUp(5, 5, quiet);
    assert.equal(cache.connected, true);
    cache.wentDown(quiet);
    assert.deepEqual([cache.connected, cache.trusted()], [false, true]);
    now += 250;
    assert.equal(cache.trusted(), false);
    cache.keep("s", "p", ALLOWED, cache.generation);
    now += 49;
    assert.deepEqual(cache.get("s", "p"), ALLOWED);
    now += 1;
    assert.equal(cache.get("s", "p"), undefined);
  });
});

describe("trace context", () => {
  it("carries the active OpenTelemetry span as traceparent", () => {
    // A context manager and a W3C propagator as an SDK would register them.
    let active: Context = context.active();
    const manager: ContextManager = {
      active: () => active,
      with(ctx, fn, thisArg, ...args) {
        const previous = active;
        active = ctx;
        try {
          return fn.call(thisArg, ...args);
        } finally {
          active = previous;
        }
      },
      bind: (_ctx, target) => target,
      enable() {
        return this;
      },
      disable() {
        return this;
      },
    };
    const w3c: TextMapPropagator = {
      inject(ctx, carrier, setter) {
        const span = trace.getSpanContext(ctx);
        if (span) setter.set(carrier, "traceparent", `00-${span.traceId}-${span.spanId}-0${span.traceFlags}`);
      },
      extract: (ctx) => ctx,
      fields: () => ["traceparent"],
    };
    assert.deepEqual(activeTraceHeaders(), {});
    context.setGlobalContextManager(manager);
    propagation.setGlobalPropagator(w3c);
    try {
      const span = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 1 };
      const headers = context.with(trace.setSpanContext(context.active(), span), () => activeTraceHeaders());
      assert.deepEqual(headers, { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" });
      assert.deepEqual(activeTraceHeaders(), {}, "outside the span: nothing");
      const explicit = new Config({ endpoints: {}, traceHeaders: () => ({ traceparent: "00-x" }) });
      assert.deepEqual(explicit.traceHeaders(), { traceparent: "00-x" });
    } finally {
      propagation.disable();
      context.disable();
    }
  });
});
