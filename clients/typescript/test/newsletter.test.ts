// The TypeScript newsletter example (examples/typescript, built by `make
// clients-typescript`) against a real mesh: of two subjects who consented to marketing
// email, the one who then opted out of email is skipped, the other is sent the message;
// its output names neither.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { Channel, MessageKind } from "../src/index.js";
import { Mesh, REPO, grant } from "./mesh.js";

const EXAMPLE = join(REPO, "examples", "typescript", "dist", "newsletter.js");

describe("the newsletter example", { timeout: 120_000 }, () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await Mesh.start();
  });
  after(async () => {
    await mesh?.stop();
  });

  it("skips the subject opted out of email and sends to the other", async () => {
    assert.ok(existsSync(EXAMPLE), `${EXAMPLE} is not built: run \`make clients-typescript\``);
    const consent = mesh.consent();
    const [reachable, optedOut] = [await mesh.signUp(), await mesh.signUp()];
    for (const subject of [reachable, optedOut]) await consent.grant(grant(subject, "marketing_email"));
    const written = await consent.setContactPreference(optedOut, Channel.EMAIL, true, "preferences");
    // What the example will be told, read back first so that a failure points at the mesh.
    const promo = await consent.canContact(reachable, Channel.EMAIL, MessageKind.PROMOTIONAL, { atLeast: written.token });
    assert.equal(promo.allowed, true, `the consenting subject may be sent a newsletter: ${promo.reason}`);

    const env: Record<string, string> = { PATH: process.env["PATH"] ?? "" };
    env["PDM_ENDPOINT_CONSENT"] = mesh.endpoints()["consent"] as string;
    env["PDM_CERT_DIR"] = join(mesh.dataDir, "certs");
    env["PDM_CLIENT_NAME"] = "demo";
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [EXAMPLE, reachable, optedOut], {
      env,
      timeout: 60_000,
    });
    assert.deepEqual(stdout.trim().split("\n"), [
      "message 1: sent",
      "message 2: skipped (opted_out)",
      "sent 1, skipped 1 (opted_out: 1)",
    ]);
    for (const subject of [reachable, optedOut]) {
      assert.ok(!stdout.includes(subject) && !stderr.includes(subject), "no subject id in the output");
    }
  });

  it("refuses to start without its configuration, naming the keys", async () => {
    assert.ok(existsSync(EXAMPLE), `${EXAMPLE} is not built: run \`make clients-typescript\``);
    const run = promisify(execFile)(process.execPath, [EXAMPLE, "0190b2a4-0000-7000-8000-000000000000"], {
      env: { PATH: process.env["PATH"] ?? "", PDM_CERT_DIR: "/certs" },
    });
    await assert.rejects(run, (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 64);
      assert.match(error.stderr ?? "", /PDM_ENDPOINT_<SERVICE>: no endpoint given/);
      assert.match(error.stderr ?? "", /PDM_CLIENT_NAME: required with PDM_CERT_DIR/);
      return true;
    });
  });
});
