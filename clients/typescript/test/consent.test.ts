// The facade against a real mesh (`pdm serve all` from the built binary, mutual TLS as
// company client `demo`): typed decisions, writes with their tokens, read-your-writes,
// typed errors with their field violations.

import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  Channel,
  Code,
  Config,
  ConsentClient,
  LedgerEntryKind,
  LegalBasis,
  MessageKind,
  PdmError,
  Reason,
} from "../src/index.js";
import { Mesh, PURPOSE, freePorts, grant } from "./mesh.js";

async function rejection(promise: Promise<unknown>): Promise<PdmError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PdmError, `a PdmError, not ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

describe("the consent client against a mesh", { timeout: 180_000 }, () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await Mesh.start();
  });
  after(async () => {
    await mesh?.stop();
  });

  it("returns a token from a write that a check reads its write with", async () => {
    const subject = await mesh.signUp();
    const consent = mesh.consent();
    const before = await consent.check(subject, PURPOSE);
    assert.deepEqual(before, { allowed: false, reason: Reason.NO_CONSENT, legalBasis: LegalBasis.CONSENT });

    const granted = await consent.grant(grant(subject));
    assert.ok(granted.sequence > 0 && granted.token.length > 0);
    assert.equal((await consent.check(subject, PURPOSE, { atLeast: granted.token })).allowed, true);

    const withdrawn = await consent.withdraw(subject, PURPOSE, "settings-page");
    assert.ok(withdrawn.sequence > granted.sequence);
    assert.notEqual(withdrawn.token, granted.token);
    const decision = await consent.check(subject, PURPOSE, { atLeast: withdrawn.token });
    assert.deepEqual([decision.allowed, decision.reason], [false, Reason.WITHDRAWN]);
    const [many] = await consent.checkMany([[subject, PURPOSE]], { atLeast: withdrawn.token });
    assert.deepEqual(many, decision);

    const position = await consent.ledgerPosition();
    assert.ok(position.sequence >= withdrawn.sequence && position.token.length > 0);
  });

  it("answers contact preferences and streams the change", async () => {
    const subject = await mesh.signUp();
    const consent = mesh.consent();
    const start = (await consent.ledgerPosition()).sequence;
    const opted = await consent.setContactPreference(subject, Channel.EMAIL, true, "preferences");
    const promo = await consent.canContact(subject, Channel.EMAIL, MessageKind.PROMOTIONAL, { atLeast: opted.token });
    assert.deepEqual([promo.allowed, promo.reason], [false, Reason.OPTED_OUT]);
    const security = await consent.canContact(subject, Channel.EMAIL, MessageKind.SECURITY, { atLeast: opted.token });
    assert.deepEqual([security.allowed, security.reason], [true, Reason.NECESSARY_MESSAGE]);

    const stream = consent.watch(start);
    await stream.opened();
    let found;
    for await (const change of stream) {
      if (change.subjectId === subject) {
        found = change;
        break;
      }
    }
    stream.cancel();
    assert.ok(found !== undefined);
    assert.equal(found.sequence, opted.sequence);
    assert.deepEqual([found.kind, found.channel], [LedgerEntryKind.OPT_OUT, Channel.EMAIL]);
    assert.equal(found.isPositionMarker, false);
  });

  it("surfaces bad input as INVALID_ARGUMENT naming each field", async () => {
    const consent = mesh.consent();
    const bad = await rejection(consent.check("not-a-uuid", PURPOSE, { atLeast: "not-a-token" }));
    assert.equal(bad.code, Code.INVALID_ARGUMENT);
    assert.equal(bad.codeName, "INVALID_ARGUMENT");
    assert.deepEqual(bad.fields, ["subject_id", "at_least"], bad.message);
    assert.ok(bad.fieldViolations.every((v) => v.description.length > 0));
    assert.match(bad.message, /^invalid argument: subject_id: /);

    const subject = await mesh.signUp();
    const grantBad = await rejection(
      consent.grant({ ...grant(subject), policyVersion: "", textHash: "abc" }),
    );
    assert.ok(grantBad.fields.includes("policy_version") && grantBad.fields.includes("text_hash"), grantBad.message);

    const batch = await rejection(consent.checkMany([[subject, ""]]));
    assert.deepEqual(batch.fields, ["items[0].purpose"]);

    const unknown = await rejection(consent.withdraw("0190b2a4-0000-7000-8000-000000000000", PURPOSE, "settings-page"));
    assert.equal(unknown.code, Code.NOT_FOUND);
  });

  it("uses rotated certificate files from the next call on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pdm-ts-certs-"));
    const tls = { ca: join(dir, "ca.pem"), cert: join(dir, "client.pem"), key: join(dir, "client.key") };
    let step = 0;
    const install = (name: string): void => {
      const issued = mesh.tls(name);
      const at = new Date(Date.now() + 60_000 * ++step);
      for (const [from, to] of [[issued.ca, tls.ca], [issued.cert, tls.cert], [issued.key, tls.key]] as const) {
        copyFileSync(from, to);
        utimesSync(to, at, at);
      }
    };
    install("demo");
    const consent = mesh.consent(undefined, { tls, reloadCheckMs: 0 });
    try {
      const subject = await mesh.signUp();
      // demo created the account, so it is linked with the subject.
      assert.equal((await consent.check(subject, PURPOSE)).reason, Reason.NO_CONSENT);
      // The files now hold another client's identity: the mesh sees `outsider`, which is
      // linked with nobody, from the next call on, without a new client.
      install("outsider");
      assert.equal((await consent.check(subject, PURPOSE)).reason, Reason.UNKNOWN_SUBJECT);
      assert.equal(consent.certificateReloads, 1);
      // Unchanged files are not reloaded.
      await consent.check(subject, PURPOSE);
      assert.equal(consent.certificateReloads, 1);

      // Caught mid-rotation (a certificate that is not one): the current channel stays.
      writeFileSync(tls.cert, "not a certificate");
      const later = new Date(Date.now() + 3_600_000);
      utimesSync(tls.cert, later, later);
      assert.equal((await consent.check(subject, PURPOSE)).reason, Reason.UNKNOWN_SUBJECT);
      assert.equal(consent.certificateReloads, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a client without a certificate of the mesh", async () => {
    const plain = new ConsentClient(new Config({ endpoints: mesh.endpoints(), timeoutMs: 2_000 }));
    try {
      const error = await rejection(plain.check("0190b2a4-0000-7000-8000-000000000000", PURPOSE));
      assert.equal(error.code, Code.UNAVAILABLE, error.message);
    } finally {
      plain.close();
    }
  });
});

describe("an unreachable service", () => {
  it("is UNAVAILABLE (or past its deadline) within the deadline", async () => {
    const [port] = await freePorts(1);
    const consent = new ConsentClient(new Config({ endpoints: { consent: `http://127.0.0.1:${port}` }, timeoutMs: 1_000 }));
    const started = performance.now();
    try {
      const error = await rejection(consent.check("0190b2a4-0000-7000-8000-000000000000", PURPOSE));
      assert.ok([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED].includes(error.code), error.message);
    } finally {
      consent.close();
    }
    assert.ok(performance.now() - started < 3_000);
  });
});
