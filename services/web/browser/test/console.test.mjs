// The privacy team's console (/console) in Chromium: an operator made with
// `pdm web operator add` signs in with their password and a code from the TOTP secret the
// command printed once, then every console page passes axe-core (no serious or critical
// violation) and is saved as a screenshot under target/web/<database>/console-*.png.

import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { after, before, test } from "node:test";

import { checkPage, launch, open, signIn } from "../lib/browser.mjs";
import { Mesh } from "../lib/mesh.mjs";

let mesh;
let browser;

before(async () => {
  mesh = await Mesh.start();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await mesh?.stop();
});

/** RFC 4648 base32, no padding. */
function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of text.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits. */
function totp(secret, at = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac("sha1", secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

test("every console page passes axe-core without a serious or critical violation", async () => {
  // A person's request, for the queue to show.
  const person = await mesh.person();
  const { page: theirs } = await open(browser);
  await signIn(theirs, mesh.url, person);
  await theirs.goto(`${mesh.url}/requests`);
  await Promise.all([
    theirs.waitForURL(/\/requests\/[^/]+$/),
    theirs.getByRole("button", { name: "Request a copy of my data" }).click(),
  ]);
  const requestId = new URL(theirs.url()).pathname.split("/").pop();

  // The operator, as the privacy team adds one.
  const password = randomBytes(18).toString("base64url");
  const added = mesh.cli("web", "operator", "add", "alice", { PDM_OPERATOR_PASSWORD: password });
  const secret = /otpauth:\/\/totp\/\S*[?&]secret=([A-Z2-7]+)/.exec(added)?.[1];
  assert.ok(secret, added);

  const { page } = await open(browser);
  await page.goto(`${mesh.url}/console`);
  assert.match(page.url(), /\/console\/sign-in$/);
  await checkPage(page, "console-sign-in");
  await page.getByLabel("Operator name").fill("alice");
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("Code from your authenticator app").fill(totp(base32(secret)));
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Sign in" }).click()]);
  assert.equal(await page.locator("#operator").textContent(), "alice");
  await checkPage(page, "console-queue");

  await page.goto(`${mesh.url}/console/requests/${requestId}`);
  await checkPage(page, "console-request");
  for (const name of ["report", "transfers", "retention", "consent", "trails", "incidents"]) {
    await page.goto(`${mesh.url}/console/${name}`);
    await checkPage(page, `console-${name}`);
  }
  // A dry run of the purge, started from the retention page: its own page.
  await page.goto(`${mesh.url}/console/retention`);
  await Promise.all([
    page.waitForURL(/\/console\/retention\/runs\/[^/]+$/),
    page.getByRole("button", { name: /dry run/i }).click(),
  ]);
  await checkPage(page, "console-run");
});
