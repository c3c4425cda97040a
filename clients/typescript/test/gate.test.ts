// The consent gate against a real mesh: a grant opens it and a withdrawal closes it within
// the bound; misses share batches; a stream cut by a restart of the mesh resumes from its
// cursor (the change made meanwhile, on PostgreSQL through a second consent replica,
// applied once); a gate that cannot know fails closed; a token read-your-writes across two
// consent replicas (PostgreSQL only).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Channel, ConsentGate, MessageKind, Reason, type ConsentClient } from "../src/index.js";
import { Mesh, PURPOSE, eventually, grant, postgresWanted } from "./mesh.js";

const BOUND_MS = 5_000;

async function untilVerdict(gate: ConsentGate, subject: string, allowed: boolean): Promise<number> {
  const started = performance.now();
  await eventually(
    `the gate's verdict to be ${allowed}`,
    async () => (await gate.allowed(subject, PURPOSE)).allowed === allowed,
    BOUND_MS,
  );
  return performance.now() - started;
}

/** Counts the batches a client sends (the gate's misses go through checkMany). */
function countBatches(consent: ConsentClient): number[] {
  const sizes: number[] = [];
  const original = consent.checkMany.bind(consent);
  consent.checkMany = (pairs, options) => {
    sizes.push(pairs.length);
    return original(pairs, options);
  };
  return sizes;
}

describe("the consent gate against a mesh", { timeout: 300_000 }, () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await Mesh.start();
  });
  after(async () => {
    await mesh?.stop();
  });

  it("opens on a grant and closes on a withdrawal within the bound", async () => {
    const consent = mesh.consent();
    const gate = new ConsentGate(consent);
    try {
      const subject = await mesh.signUp();
      await eventually("the gate's stream", () => gate.connected);

      const verdict = await gate.allowed(subject, PURPOSE);
      assert.deepEqual(verdict.decision, await consent.check(subject, PURPOSE));
      assert.equal(verdict.allowed, false);
      assert.equal(verdict.failedClosed, false);
      assert.notEqual(gate.cached(subject, PURPOSE), undefined, "a miss is cached");

      await consent.grant(grant(subject));
      await untilVerdict(gate, subject, true);
      const withdrawn = await consent.withdraw(subject, PURPOSE, "settings-page");
      const took = await untilVerdict(gate, subject, false);
      assert.ok(took < BOUND_MS);
      assert.equal((await gate.allowed(subject, PURPOSE)).decision?.reason, Reason.WITHDRAWN);
      await eventually("the withdrawal in the gate", () => gate.position >= withdrawn.sequence);

      const transactional = await gate.canContact(subject, Channel.EMAIL, MessageKind.TRANSACTIONAL);
      assert.ok(transactional.allowed, String(transactional.why));
      const promotional = await gate.canContact(subject, Channel.EMAIL, MessageKind.PROMOTIONAL);
      assert.equal(promotional.allowed, false);
      assert.equal(promotional.failedClosed, false);
    } finally {
      await gate.close();
    }
  });

  it("answers concurrent misses in one batch, in order", async () => {
    const consent = mesh.consent();
    const subjects = await Promise.all(Array.from({ length: 6 }, () => mesh.signUp()));
    for (const subject of subjects.filter((_, i) => i % 2 === 0)) await consent.grant(grant(subject));
    const batches = countBatches(consent);
    const gate = new ConsentGate(consent, { batchWindowMs: 20 });
    try {
      await eventually("the gate's stream", () => gate.connected);
      const verdicts = await Promise.all(subjects.map((s) => gate.allowed(s, PURPOSE)));
      assert.deepEqual(
        verdicts.map((v) => v.allowed),
        [true, false, true, false, true, false],
      );
      assert.deepEqual(batches, [6], "six misses within the window: one BatchCheckProcessing");
      // Cached now: no further call.
      await Promise.all(subjects.map((s) => gate.allowed(s, PURPOSE)));
      assert.deepEqual(batches, [6]);
      // A bad pair fails alone, denied with the service's reason; the good one beside it is answered.
      const [bad, good] = await Promise.all([
        gate.allowed("not-a-uuid", PURPOSE),
        gate.allowed(subjects[0] as string, "marketing_email"),
      ]);
      assert.ok(bad.failedClosed && (bad.why ?? "").includes("refused"), String(bad.why));
      assert.equal(good.failedClosed, false);
    } finally {
      await gate.close();
    }
  });

  it("moves its cursor and forgets nothing on a change of a subject it is not linked with", async () => {
    const consent = mesh.consent();
    const outsider = mesh.consent(undefined, { tls: mesh.tls("outsider") });
    const gate = new ConsentGate(consent);
    try {
      const mine = await mesh.signUp();
      await eventually("the gate's stream", () => gate.connected);
      const granted = await consent.grant(grant(mine));
      await untilVerdict(gate, mine, true);
      await eventually("the grant in the gate", () => gate.position >= granted.sequence);
      await gate.allowed(mine, PURPOSE);
      assert.equal(gate.cached(mine, PURPOSE)?.allowed, true);
      const applied = gate.changesApplied;

      // Another company client's subject: demo's stream shows its entry as a bare position.
      const theirs = await mesh.signUp("REGION_EEA", "outsider");
      const written = await outsider.grant(grant(theirs));
      await eventually("the marker in the gate", () => gate.position >= written.sequence);
      // Counted as the Rust gate counts it: the outsider's grant is the one entry since.
      assert.equal(gate.changesApplied, applied + 1, "the position marker counted");
      assert.equal(gate.cached(mine, PURPOSE)?.allowed, true, "nothing forgotten");

      const stream = consent.watch(written.sequence - 1);
      let first;
      for await (const change of stream) {
        first = change;
        break;
      }
      stream.cancel();
      assert.ok(first !== undefined);
      assert.deepEqual(
        [first.sequence, first.subjectId, first.isPositionMarker],
        [written.sequence, "", true],
      );
    } finally {
      await gate.close();
    }
  });

  it("fails closed when it cannot know", async () => {
    const own = await Mesh.start();
    const consent = own.consent();
    const gate = new ConsentGate(consent, { staleAfterMs: 300 });
    try {
      const subject = await own.signUp();
      await eventually("the gate's stream", () => gate.connected);
      await consent.grant(grant(subject));
      await untilVerdict(gate, subject, true);

      await own.main.kill();
      const verdict = await eventually(
        "the gate to fail closed",
        async () => {
          const v = await gate.allowed(subject, PURPOSE);
          return v.failedClosed ? v : undefined;
        },
        15_000,
      );
      assert.equal(verdict.allowed, false);
      assert.match(verdict.why ?? "", /unreachable/);
      assert.ok(!(verdict.why ?? "").includes(subject), "no subject id in the reason");
    } finally {
      await gate.close();
      await own.stop();
    }
  });

  it("resumes a cut stream from its cursor without losing or repeating a change", async () => {
    const own = await Mesh.start();
    try {
      // On PostgreSQL the writes go through a second consent replica, which keeps running
      // while the gate's is down: the change is made during the cut. On SQLite (one process
      // per database) it is made right after the restart.
      const replica = own.postgres ? await own.startReplica() : undefined;
      const writer = own.consent(replica);
      const consent = own.consent();
      // Trust the cache through the outage, to see the change arrive afterwards.
      const gate = new ConsentGate(consent, { staleAfterMs: 60_000 });
      try {
        const subject = await own.signUp();
        await eventually("the gate's stream", () => gate.connected);
        const granted = await writer.grant(grant(subject));
        await untilVerdict(gate, subject, true);
        await eventually("the grant in the gate", () => gate.position >= granted.sequence);
        const seen = gate.changesApplied;
        // Cached now that the grant's change is in (a decision fetched across one is not).
        assert.equal((await gate.allowed(subject, PURPOSE)).allowed, true);
        assert.equal(gate.cached(subject, PURPOSE)?.allowed, true);

        await own.main.kill();
        await eventually("the cut", () => !gate.connected);
        let withdrawn;
        if (replica !== undefined) {
          withdrawn = await writer.withdraw(subject, PURPOSE, "settings-page");
          // Down, within its trust bound: the gate still answers from its cache.
          assert.equal((await gate.allowed(subject, PURPOSE)).allowed, true);
          await own.main.start();
        } else {
          await own.main.start();
          withdrawn = await writer.withdraw(subject, PURPOSE, "settings-page");
        }
        await untilVerdict(gate, subject, false);
        await eventually("the stream back", () => gate.connected);
        assert.equal(gate.position, withdrawn.sequence);
        // The withdrawal once: nothing lost, nothing replayed twice.
        assert.equal(gate.changesApplied, seen + 1);
      } finally {
        await gate.close();
      }
    } finally {
      await own.stop();
    }
  });

  it(
    "reads a write on another replica with its token",
    {
      skip: postgresWanted()
        ? false
        : "two consent replicas share a PostgreSQL database: NOT run on SQLite (PDM_TEST_DATABASE=postgres runs it)",
    },
    async () => {
      const own = await Mesh.start();
      try {
        const other = await own.startReplica();
        const [first, second] = [own.consent(), own.consent(other)];
        for (let i = 0; i < 5; i++) {
          const subject = await own.signUp();
          const written = await first.grant(grant(subject));
          assert.equal((await second.check(subject, PURPOSE, { atLeast: written.token })).allowed, true);
          const withdrawn = await second.withdraw(subject, PURPOSE, "settings-page");
          const decision = await first.check(subject, PURPOSE, { atLeast: withdrawn.token });
          assert.deepEqual([decision.allowed, decision.reason], [false, Reason.WITHDRAWN]);
          const [many] = await first.checkMany([[subject, PURPOSE]], { atLeast: withdrawn.token });
          assert.equal(many?.allowed, false);
        }
      } finally {
        await own.stop();
      }
    },
  );
});
