// The typed facades of consent, identity, telemetry, transfers and rights against one real mesh
// (`pdm serve all` from the built binary, mutual TLS as company client `demo`): each
// returns plain typed results, and bad input surfaces as a PdmError carrying the field
// violations (or the unmet preconditions, or the delay to wait). And the client's SPIFFE
// identity: the name taken from PDM_SPIFFE_ID, a certificate for another id refused.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  Code,
  Config,
  ConfigError,
  IdentityClient,
  PdmClient,
  PdmError,
  RetryPolicy,
  TlsFiles,
  readExport,
} from "../src/index.js";
import { Mesh, eventually, grant } from "./mesh.js";

async function rejection(promise: Promise<unknown>): Promise<PdmError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PdmError, `a PdmError, not ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

function configError(make: () => unknown): ConfigError {
  try {
    make();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `a ConfigError, not ${String(error)}`);
    return error;
  }
  assert.fail("no configuration error");
}

const tag = (): string => randomBytes(6).toString("hex");
const password = (): string => randomBytes(18).toString("base64url");
const today = (): string => new Date().toISOString().slice(0, 10);
// The smallest PNG there is (1x1, transparent): identity reads the type from the content.
const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489" +
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082",
  "hex",
);

describe("the typed facades against a mesh", { timeout: 300_000 }, () => {
  let mesh: Mesh;
  let pdm: PdmClient;
  before(async () => {
    mesh = await Mesh.start();
    // Password hashing is slow in a debug build: a generous deadline, as mesh.signUp's.
    pdm = new PdmClient(mesh.config(undefined, { timeoutMs: 30_000 }));
  });
  after(async () => {
    pdm?.close();
    await mesh?.stop();
  });

  /** A new account through the facade (which links it with `demo`), and its password. */
  async function account(): Promise<{ subjectId: string; email: string; password: string }> {
    const email = `ada.${tag()}@example.org`;
    const secret = password();
    const created = await pdm.identity.createAccount({
      firstName: "Ada",
      lastName: "Lovelace",
      email,
      region: "EEA",
      password: secret,
    });
    return { subjectId: created.subjectId, email, password: secret };
  }

  it("identity: accounts, sessions, billing and tickets as typed results", async () => {
    const email = `grace.${tag()}@example.org`;
    const secret = password();
    const created = await pdm.identity.createAccount({
      firstName: "Grace",
      lastName: "Hopper",
      email,
      region: "UK",
      password: secret,
    });
    assert.match(created.subjectId, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      [created.email, created.region, created.phone, created.birthDate, created.restricted],
      [email, "UK", undefined, undefined, false],
    );
    assert.ok(created.createdAt instanceof Date);

    const { subjectId } = created;
    assert.equal((await pdm.identity.getAccount(subjectId)).email, email);
    assert.equal(await pdm.identity.getRegion(subjectId), "UK");
    const updated = await pdm.identity.updateProfile(subjectId, { firstName: "Amazing", region: "EEA" });
    assert.deepEqual([updated.firstName, updated.lastName, updated.region], ["Amazing", "Hopper", "EEA"]);

    const session = await pdm.identity.authenticate(email, secret);
    assert.equal(session.subjectId, subjectId);
    assert.ok(session.token.length > 0 && session.expiresAt instanceof Date);
    assert.equal((await pdm.identity.validateSession(session.token)).subjectId, subjectId);
    assert.equal(await pdm.identity.verifySubject(subjectId, { password: secret }), subjectId);
    assert.equal(await pdm.identity.verifySubject(subjectId, { sessionToken: session.token }), subjectId);
    assert.equal(await pdm.identity.linkSubject(session.token), subjectId);

    const contact = { name: "Grace Hopper", email: "billing@example.org", paymentProcessorRef: "cus_123abc" };
    assert.deepEqual(await pdm.identity.setBillingContact(subjectId, contact), { ...contact, phone: undefined });
    assert.deepEqual(await pdm.identity.getBillingContact(subjectId), { ...contact, phone: undefined });

    const ticket = await pdm.identity.createSupportTicket({
      subjectId,
      contact: email,
      summary: "Export button does nothing",
      description: "Clicking export shows a spinner forever.",
      attachments: [{ fileName: "steps.txt", content: Buffer.from("1. click export\n") }],
    });
    assert.ok(ticket.ticketId.length > 0);
    assert.deepEqual(ticket.specialCategories, []);
    assert.deepEqual(
      ticket.attachments.map((a) => [a.fileName, a.contentType, a.sizeBytes]),
      [["steps.txt", "text/plain", 16]],
    );
    const listed = await pdm.identity.listSupportTickets(subjectId);
    assert.deepEqual(
      listed.map((t) => [t.ticketId, t.summary]),
      [[ticket.ticketId, "Export button does nothing"]],
    );

    const key = `delete-${tag()}`;
    const receipt = await pdm.identity.deleteAccount(subjectId, secret, "NO_LONGER_NEEDED", key);
    assert.equal(receipt.subjectId, subjectId);
    assert.ok(receipt.erased.length > 0 && receipt.completedAt instanceof Date);
    // The key makes the call safe to repeat: the first receipt again.
    assert.deepEqual(await pdm.identity.deleteAccount(subjectId, secret, "NO_LONGER_NEEDED", key), receipt);
    assert.equal((await rejection(pdm.identity.getAccount(subjectId))).code, Code.NOT_FOUND);
  });

  it("identity: bad input as field violations, unmet preconditions, the delay to wait", async () => {
    const bad = await rejection(
      pdm.identity.createAccount({ firstName: "", lastName: "X", email: "nope", region: "UNSPECIFIED", password: "short" }),
    );
    assert.equal(bad.code, Code.INVALID_ARGUMENT);
    for (const field of ["first_name", "email", "region", "password"]) {
      assert.ok(bad.fields.includes(field), `${field} in ${bad.fields.join(", ")}`);
    }

    const young = new Date();
    young.setUTCFullYear(young.getUTCFullYear() - 10);
    const child = await rejection(
      pdm.identity.createAccount({
        firstName: "Kid",
        lastName: "Young",
        email: `kid.${tag()}@example.org`,
        region: "EEA",
        birthDate: young.toISOString().slice(0, 10),
        password: password(),
      }),
    );
    assert.equal(child.code, Code.FAILED_PRECONDITION);
    assert.deepEqual(child.preconditions.map((p) => [p.kind, p.subject]), [["AGE", "birth_date"]]);

    const { subjectId, email, password: secret } = await account();
    const sensitive = await rejection(
      pdm.identity.createSupportTicket({
        subjectId,
        contact: email,
        summary: "About my medication",
        description: "My prescription details are wrong.",
        specialCategories: ["HEALTH"],
      }),
    );
    assert.equal(sensitive.code, Code.FAILED_PRECONDITION);
    assert.deepEqual(sensitive.preconditions.map((p) => [p.kind, p.subject]), [
      ["EXPLICIT_CONSENT", "special_category_health"],
    ]);
    assert.deepEqual(await pdm.identity.listSupportTickets(subjectId), [], "nothing stored");

    // Repeated failed sign-ins: the client waits (RetryInfo), longer than one attempt.
    const once = new IdentityClient(mesh.config(undefined, { timeoutMs: 30_000, retry: new RetryPolicy({ maxAttempts: 1 }) }));
    try {
      let throttled: PdmError | undefined;
      for (let i = 0; i < 8 && throttled === undefined; i++) {
        const failed = await rejection(once.authenticate(email, `${secret}-wrong`));
        if (failed.code === Code.RESOURCE_EXHAUSTED) throttled = failed;
        else assert.equal(failed.code, Code.UNAUTHENTICATED);
      }
      assert.ok(throttled !== undefined, "throttled after repeated failures");
      assert.ok((throttled.retryAfterMs ?? 0) > 0, `a delay to wait: ${throttled.retryAfterMs}`);
    } finally {
      once.close();
    }
  });

  it("identity: the profile photo, the public profile and the organisation as typed results", async () => {
    const { subjectId } = await account();
    assert.deepEqual(await pdm.identity.getPublicProfile(subjectId), { subjectId, displayName: "Ada L.", hasPhoto: false });
    assert.equal((await rejection(pdm.identity.getProfilePhoto(subjectId))).code, Code.NOT_FOUND);

    assert.deepEqual(await pdm.identity.setProfilePhoto(subjectId, PNG), { contentType: "image/png", sizeBytes: PNG.length });
    const photo = await pdm.identity.getProfilePhoto(subjectId);
    assert.equal(photo.contentType, "image/png");
    assert.ok(Buffer.from(photo.photo).equals(PNG), "the bytes stored");
    assert.equal((await pdm.identity.getPublicProfile(subjectId)).hasPhoto, true);
    assert.equal((await pdm.identity.getAccount(subjectId)).hasPhoto, true);

    // example.org is no free-mail domain: the organisation is the address's domain, until
    // the subject objects to the inference (identity asks consent every time).
    assert.equal(await pdm.identity.getOrganisation(subjectId), "example.org");
    const objected = await pdm.consent.recordObjection(subjectId, "organisation_insights", "settings-page");
    assert.ok(objected.sequence > 0 && objected.token.length > 0);
    assert.equal(await pdm.identity.getOrganisation(subjectId), undefined);
    await pdm.consent.recordObjection(subjectId, "organisation_insights", "settings-page", { withdraw: true });
    assert.equal(await pdm.identity.getOrganisation(subjectId), "example.org");
  });

  it("identity: a bad photo or subject as field violations", async () => {
    const { subjectId } = await account();
    const both = await rejection(pdm.identity.setProfilePhoto("not-a-uuid", new Uint8Array()));
    assert.equal(both.code, Code.INVALID_ARGUMENT);
    assert.deepEqual(both.fields, ["subject_id", "photo"]);
    assert.deepEqual((await rejection(pdm.identity.setProfilePhoto(subjectId, Buffer.from("GIF89a not ours")))).fields, ["photo"]);
    // The limit is 2 MiB (the proto's): one byte more is refused, nothing stored.
    const big = Buffer.concat([PNG, Buffer.alloc(2 * 1024 * 1024 + 1 - PNG.length)]);
    const tooBig = await rejection(pdm.identity.setProfilePhoto(subjectId, big));
    assert.deepEqual(tooBig.fields, ["photo"]);
    assert.match(tooBig.fieldViolations[0]?.description ?? "", /2 MiB/);
    assert.equal((await rejection(pdm.identity.getProfilePhoto(subjectId))).code, Code.NOT_FOUND);
    for (const call of [
      (s: string) => pdm.identity.getProfilePhoto(s),
      (s: string) => pdm.identity.getPublicProfile(s),
      (s: string) => pdm.identity.getOrganisation(s),
    ]) {
      const bad = await rejection(call("not-a-uuid"));
      assert.deepEqual([bad.code, bad.fields], [Code.INVALID_ARGUMENT, ["subject_id"]]);
    }
    assert.equal((await rejection(pdm.identity.getPublicProfile("018f0000-0000-7000-8000-000000000000"))).code, Code.NOT_FOUND);
  });

  it("consent: the catalogue, a subject's state and ledger, unsubscribe links as typed results", async () => {
    const purposes = new Map((await pdm.consent.listPurposes()).map((p) => [p.key, p]));
    const analytics = purposes.get("product_analytics");
    assert.ok(analytics !== undefined && analytics.refusable && analytics.legalBases.EEA === "CONSENT");
    assert.equal(purposes.get("organisation_insights")?.objectable, true);
    assert.equal(purposes.get("marketing_email")?.directMarketing, true);
    assert.equal(purposes.get("special_category_health")?.specialCategory, true);

    const { subjectId } = await account();
    const before = await pdm.consent.getConsents(subjectId);
    assert.deepEqual(
      [before.subjectId, before.region, before.restricted, before.doNotSell, before.optedOutChannels],
      [subjectId, "EEA", false, false, []],
    );
    assert.deepEqual(new Set(before.purposes.map((s) => s.purpose)), new Set(purposes.keys()));
    const state = (c: typeof before, purpose: string) => c.purposes.find((s) => s.purpose === purpose);
    assert.deepEqual(state(before, "product_analytics"), {
      purpose: "product_analytics",
      legalBasis: "CONSENT",
      consent: "NOT_GIVEN",
      objected: false,
      decision: { allowed: false, reason: "NO_CONSENT", legalBasis: "CONSENT" },
    });

    const granted = await pdm.consent.grant(grant(subjectId));
    assert.equal(state(await pdm.consent.getConsents(subjectId), "product_analytics")?.consent, "GRANTED");
    const sell = await pdm.consent.setDoNotSell(subjectId, true, "privacy-settings");
    assert.ok(sell.sequence > granted.sequence && sell.token.length > 0);
    const restricted = await pdm.consent.setRestriction(subjectId, true, "privacy-settings");
    assert.deepEqual(
      await pdm.consent.check(subjectId, "product_analytics", { atLeast: restricted.token }),
      { allowed: false, reason: "RESTRICTED", legalBasis: "CONSENT" },
    );
    const now = await pdm.consent.getConsents(subjectId);
    assert.deepEqual([now.restricted, now.doNotSell], [true, true]);
    const lifted = await pdm.consent.setRestriction(subjectId, false, "privacy-settings");
    assert.equal((await pdm.consent.check(subjectId, "product_analytics", { atLeast: lifted.token })).allowed, true);
    const objected = await pdm.consent.recordObjection(subjectId, "product_research", "privacy-settings");
    const decision = await pdm.consent.check(subjectId, "product_research", { atLeast: objected.token });
    assert.deepEqual([decision.allowed, decision.reason], [false, "OBJECTED"]);
    assert.equal(state(await pdm.consent.getConsents(subjectId), "product_research")?.objected, true);
    const cannot = await rejection(pdm.consent.recordObjection(subjectId, "service_provision", "privacy-settings"));
    assert.equal(cannot.code, Code.FAILED_PRECONDITION);

    const link = await pdm.consent.issueUnsubscribeLink(subjectId, "EMAIL");
    assert.ok(link.token.length > 0 && link.token.length <= 128);
    assert.ok(link.expiresAt !== undefined && link.expiresAt.getTime() > Date.now() + 86_400_000);
    const done = await pdm.consent.unsubscribe(link.token);
    assert.deepEqual([done.channel, done.alreadyUsed, typeof done.sequence], ["EMAIL", false, "number"]);
    const promo = await pdm.consent.canContact(subjectId, "EMAIL", "PROMOTIONAL", { atLeast: done.token });
    assert.deepEqual([promo.allowed, promo.reason], [false, "OPTED_OUT"]);
    const again = await pdm.consent.unsubscribe(link.token);
    assert.deepEqual([again.channel, again.alreadyUsed, again.sequence], ["EMAIL", true, undefined]);
    assert.ok(again.token.length > 0, "a token covering the first use");

    const page = await pdm.consent.getConsentHistory(subjectId);
    assert.deepEqual(
      page.entries.map((e) => e.kind),
      ["GRANT", "DO_NOT_SELL", "RESTRICT", "UNRESTRICT", "OBJECT", "OPT_OUT"],
    );
    assert.equal(page.nextAfterSequence, undefined);
    const [first] = page.entries;
    assert.deepEqual(
      [first?.sequence, first?.subjectId, first?.purpose, first?.source, first?.policyVersion, first?.actor],
      [granted.sequence, subjectId, "product_analytics", "API", "2024-06-28", "checkout"],
    );
    assert.ok(first?.recordedAt instanceof Date);
    assert.deepEqual([page.entries[5]?.channel, page.entries[5]?.source], ["EMAIL", "EMAIL_LINK"]);
    // Pages of two: the cursor leads through the same entries.
    const paged = [];
    let cursor: number | undefined = 0;
    while (cursor !== undefined) {
      const part = await pdm.consent.getConsentHistory(subjectId, { afterSequence: cursor, pageSize: 2 });
      paged.push(...part.entries);
      cursor = part.nextAfterSequence;
    }
    assert.deepEqual(paged, page.entries);
  });

  it("consent: bad input as field violations, nothing recorded", async () => {
    const { subjectId } = await account();
    const cases: [() => Promise<unknown>, string[]][] = [
      [() => pdm.consent.getConsentHistory("x", { afterSequence: -1, pageSize: 5000 }), ["subject_id", "after_sequence", "page_size"]],
      [() => pdm.consent.getConsents("not-a-uuid"), ["subject_id"]],
      [() => pdm.consent.setDoNotSell("not-a-uuid", true, ""), ["subject_id", "actor"]],
      [() => pdm.consent.setRestriction(subjectId, true, "agent 4111 1111 1111 1111"), ["actor"]],
      [() => pdm.consent.recordObjection(subjectId, "astrology", "settings"), ["purpose"]],
      [() => pdm.consent.issueUnsubscribeLink(subjectId, "ADS"), ["channel"]],
      [() => pdm.consent.unsubscribe("not-a-link-of-this-mesh"), ["token"]],
    ];
    for (const [call, fields] of cases) {
      const bad = await rejection(call());
      assert.deepEqual([bad.code, bad.fields], [Code.INVALID_ARGUMENT, fields]);
    }
    const unknown = await rejection(pdm.consent.setDoNotSell("018f0000-0000-7000-8000-000000000000", true, "settings"));
    assert.equal(unknown.code, Code.NOT_FOUND);
    assert.deepEqual((await pdm.consent.getConsentHistory(subjectId)).entries, [], "nothing was recorded");
  });

  it("telemetry: events, crashes, tracking choices and aggregates as typed results", async () => {
    const { subjectId } = await account();
    await pdm.consent.grant(grant(subjectId, "product_analytics"));
    // Telemetry learns of the grant from consent: the first batches may still be dropped.
    const used = { subjectId, kind: "FEATURE_USED", feature: "export" } as const;
    const ingested = await eventually("an accepted event", async () => {
      const answer = await pdm.telemetry.ingestEvents([used]);
      return answer.accepted === 1 ? answer : undefined;
    });
    assert.match(ingested.batchId, /^pdmc-[a-z]+$/, "a key made for the call");
    assert.deepEqual(ingested, { batchId: ingested.batchId, accepted: 1, dropped: {}, duplicate: false });
    assert.deepEqual(
      await pdm.telemetry.ingestEvents([used], { batchId: ingested.batchId }),
      { ...ingested, duplicate: true },
      "a repeated batch is the first answer again",
    );
    // A logged-out visitor without a choice: dropped, and why.
    const anonymous = await pdm.telemetry.ingestEvents([
      { kind: "PAGE_VIEW", screen: "pricing", tracking: "ANALYTICS", device: { deviceId: `dev-${tag()}` } },
    ]);
    assert.deepEqual([anonymous.accepted, anonymous.dropped], [0, { NO_TRACKING_CONSENT: 1 }]);

    const crash = await pdm.telemetry.reportCrash({
      subjectId,
      errorType: "TypeError",
      message: "cannot read x of undefined (user ada@example.org)",
      stackTrace: "at render (app.js:1:1)",
      device: { osName: "Linux", connection: "WIFI" },
    });
    assert.ok(crash.crashId !== undefined && crash.scrubbed >= 1 && crash.dropped === undefined, JSON.stringify(crash));

    const device = `dev-${tag()}`;
    assert.equal(await pdm.telemetry.getTrackingChoice(device), undefined);
    const made = await pdm.telemetry.recordTrackingChoice({
      deviceId: device,
      analytics: true,
      advertising: true,
      globalPrivacyControl: true,
      policyVersion: "2024-06-28",
      textHash: "ab".repeat(32),
    });
    assert.deepEqual(
      [made.analytics, made.advertising, made.advertisingEffective, made.expiresAt instanceof Date],
      [true, true, false, true],
      "GPC turns advertising off",
    );
    assert.deepEqual(await pdm.telemetry.getTrackingChoice(device), made);

    const aggregates = await pdm.telemetry.queryAggregates("FEATURE", today(), today());
    assert.ok(aggregates.kThreshold >= 5);
    // One person used "export": below k, withheld.
    assert.ok(aggregates.suppressed >= 1 && !aggregates.buckets.some((b) => b.value === "export"));
  });

  it("telemetry: a bad event refuses the batch, naming its field", async () => {
    const bad = await rejection(
      pdm.telemetry.ingestEvents([
        { kind: "FEATURE_USED", feature: "fine" },
        { kind: "FEATURE_USED", feature: "card 4111 1111 1111 1111" },
      ]),
    );
    assert.equal(bad.code, Code.INVALID_ARGUMENT);
    assert.deepEqual(bad.fields, ["events[1].feature"]);
    const query = await rejection(pdm.telemetry.queryAggregates("UNSPECIFIED", "yesterday", today()));
    assert.equal(query.code, Code.INVALID_ARGUMENT);
    assert.ok(query.fields.includes("dimension") && query.fields.includes("from_day"), query.fields.join(", "));
  });

  it("transfers: the register, a decision, the adequacy lists as typed results", async () => {
    mesh.cli("transfers", "seed");
    const recipients = await pdm.transfers.listRecipients();
    const office = recipients.find((r) => r.key === "office-us");
    assert.ok(office !== undefined, recipients.map((r) => r.key).join(", "));
    assert.deepEqual([office.role, office.country], ["JOINT_CONTROLLER", "US"]);
    assert.deepEqual(
      (await pdm.transfers.listRecipients({ country: "US" })).map((r) => r.country).filter((c) => c !== "US"),
      [],
    );
    const mechanisms = await pdm.transfers.listMechanisms(office.recipientId);
    const scc = mechanisms.find((m) => m.kind === "EU_SCC");
    assert.ok(scc !== undefined && scc.sccModule === 1 && scc.regimes.includes("EU") && scc.tia?.outcome === "ADEQUATE_WITH_MEASURES");

    const decision = await pdm.transfers.authorizeTransfer({
      regime: "EU",
      recipientId: office.recipientId,
      dataCategories: ["account.profile"],
      purpose: "support",
      reference: "ts-client-test",
    });
    assert.deepEqual(
      [decision.allowed, decision.outcome, decision.mechanismKind, decision.mechanismId],
      [true, "ALLOWED_MECHANISM", "EU_SCC", scc.mechanismId],
    );
    assert.ok(decision.logId.length > 0 && decision.decidedAt instanceof Date);

    const expiring = await pdm.transfers.listExpiringMechanisms(3650);
    assert.ok(expiring.length > 0 && expiring.every((e) => e.due === "expires" || e.due === "review"));
    const adequacy = await pdm.transfers.listAdequacy();
    const eu = adequacy.find((l) => l.regime === "EU");
    assert.ok(eu !== undefined && eu.countries.some((c) => c.country === "CH"), JSON.stringify(adequacy.map((l) => l.regime)));
  });

  it("transfers: bad input as field violations, an unknown recipient as NOT_FOUND", async () => {
    const bad = await rejection(
      pdm.transfers.authorizeTransfer({ regime: "UNSPECIFIED", recipientId: "", dataCategories: [], purpose: "" }),
    );
    assert.equal(bad.code, Code.INVALID_ARGUMENT);
    for (const field of ["regime", "data_categories"]) {
      assert.ok(bad.fields.includes(field), `${field} in ${bad.fields.join(", ")}`);
    }
    const unknown = await rejection(
      pdm.transfers.authorizeTransfer({
        regime: "EU",
        recipientId: "018f0000-0000-7000-8000-000000000000",
        dataCategories: ["account.profile"],
        purpose: "support",
      }),
    );
    assert.equal(unknown.code, Code.NOT_FOUND);
  });

  it("rights: a request submitted, watched to its end, its export downloaded", async () => {
    const { subjectId, email, password: secret } = await account();
    const session = await pdm.identity.authenticate(email, secret);
    const reference = `ts-${tag()}`;
    const submitted = await pdm.rights.submitRequest({
      kind: "ACCESS",
      regime: "GDPR",
      subjectId,
      credential: { sessionToken: session.token },
      clientReference: reference,
    });
    assert.deepEqual([submitted.kind, submitted.regime, submitted.subjectId], ["ACCESS", "GDPR", subjectId]);
    assert.ok(submitted.dueAt instanceof Date && submitted.receivedAt instanceof Date);
    const again = await pdm.rights.submitRequest({ kind: "ACCESS", regime: "GDPR", subjectId, clientReference: reference });
    assert.equal(again.requestId, submitted.requestId, "the same key is the same request");

    let done;
    const stream = pdm.rights.watchRequest(submitted.requestId);
    for await (const state of stream) {
      assert.equal(state.requestId, submitted.requestId);
      if (state.status === "COMPLETED") {
        done = state;
        break;
      }
    }
    assert.ok(done !== undefined, "the stream ends with the request completed");
    assert.ok(done.tasks.length > 0 && done.tasks.every((t) => t.status === "done"), JSON.stringify(done.tasks));
    assert.ok(done.downloadToken !== undefined, "the one-time download token, given once");
    assert.equal((await pdm.rights.getRequest(submitted.requestId)).downloadToken, undefined);

    const { contentType, bytes } = await readExport(
      pdm.rights.downloadExport(submitted.requestId, { downloadToken: done.downloadToken }),
    );
    assert.match(contentType, /json/);
    const exported = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
    assert.ok(JSON.stringify(exported).includes(email), "the package holds the subject's data");

    // A request without a credential waits; the password verifies it.
    const waiting = await pdm.rights.submitRequest({ kind: "RESTRICTION", regime: "GDPR", subjectId });
    assert.equal(waiting.status, "VERIFICATION_REQUIRED");
    const verified = await pdm.rights.verifyRequest(waiting.requestId, { password: secret }, subjectId);
    assert.notEqual(verified.status, "VERIFICATION_REQUIRED");
    assert.ok(verified.verifiedAt instanceof Date);

    const concern = await pdm.rights.reportConcern({
      kind: "DATA_COMPROMISED",
      contactEmail: email,
      description: "I received someone else's invoice.",
      subjectId,
    });
    assert.deepEqual([concern.kind, concern.status, concern.overdue], ["DATA_COMPROMISED", "OPEN", false]);
    const hours = ((concern.dueAt?.getTime() ?? 0) - (concern.receivedAt?.getTime() ?? 0)) / 3_600_000;
    assert.equal(Math.round(hours), 72);
    const report = await pdm.rights.reportChild({ email: `kid.${tag()}@example.org`, reporterContact: "parent@example.org" });
    assert.ok(report.reportId.length > 0);
    assert.equal(report.status, "REPORTED");
  });

  it("rights: bad input as field violations, an unknown request as NOT_FOUND", async () => {
    const bad = await rejection(
      pdm.rights.reportConcern({ kind: "COMPLAINT", contactEmail: "not an address", description: "" }),
    );
    assert.equal(bad.code, Code.INVALID_ARGUMENT);
    assert.deepEqual([...bad.fields].sort(), ["contact_email", "description"]);
    const child = await rejection(pdm.rights.reportChild({ reporterContact: "parent@example.org" }));
    assert.equal(child.code, Code.INVALID_ARGUMENT);
    const unknown = await rejection(pdm.rights.getRequest("018f0000-0000-7000-8000-000000000000"));
    assert.equal(unknown.code, Code.NOT_FOUND);
  });

  it("SPIFFE identity: the client's name from PDM_SPIFFE_ID, a certificate for another id refused", async () => {
    const certDir = join(mesh.dataDir, "certs");
    const endpoints = { PDM_ENDPOINT_IDENTITY: mesh.endpoints()["identity"] as string, PDM_TIMEOUT_MS: "30000" };
    const config = Config.fromEnv({ ...endpoints, PDM_CERT_DIR: certDir, PDM_SPIFFE_ID: "spiffe://pdm.local/client/demo" });
    assert.deepEqual(config.tls, TlsFiles.client(certDir, "demo"));
    assert.equal(config.spiffeId, "spiffe://pdm.local/client/demo");
    const identity = new IdentityClient(config);
    try {
      const { subjectId } = await account();
      assert.equal(await identity.getRegion(subjectId), "EEA", "calls as demo, which is linked");
    } finally {
      identity.close();
    }

    const notAClient = configError(() =>
      Config.fromEnv({ ...endpoints, PDM_CERT_DIR: certDir, PDM_SPIFFE_ID: "spiffe://pdm.local/svc/consent" }),
    );
    assert.deepEqual(notAClient.problems.map((p) => p.split(":")[0]), ["PDM_SPIFFE_ID"]);

    const twoNames = configError(() =>
      Config.fromEnv({
        ...endpoints,
        PDM_CERT_DIR: certDir,
        PDM_CLIENT_NAME: "demo",
        PDM_SPIFFE_ID: "spiffe://pdm.local/client/outsider",
      }),
    );
    assert.deepEqual(twoNames.problems, ["PDM_SPIFFE_ID: names client outsider, PDM_CLIENT_NAME is demo"]);

    // demo's certificate files, configured as outsider: not built.
    const mismatch = Config.fromEnv({
      ...endpoints,
      PDM_CA_FILE: mesh.tls("demo").ca,
      PDM_CERT_FILE: mesh.tls("demo").cert,
      PDM_KEY_FILE: mesh.tls("demo").key,
      PDM_SPIFFE_ID: "spiffe://pdm.local/client/outsider",
    });
    const refused = configError(() => new IdentityClient(mismatch));
    assert.deepEqual(refused.problems, [
      "PDM_SPIFFE_ID: the certificate is for spiffe://pdm.local/client/demo, not spiffe://pdm.local/client/outsider",
    ]);
    const inCode = new Config({ endpoints: mesh.endpoints(), tls: mesh.tls("outsider"), spiffeId: "spiffe://pdm.local/client/demo" });
    assert.throws(() => new PdmClient(inCode).identity, /the certificate is for spiffe:\/\/pdm\.local\/client\/outsider, not/);
  });
});
