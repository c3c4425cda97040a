// Policy, "Your Rights and Choices" (consent may be withdrawn at any time; processing that
// rests on it stops): a toggle on the privacy choices page, clicked in Chromium, is seen by
// consent's CheckProcessing at once, as a company service asks it (the demo client over
// mutual TLS, with grpcurl), with no consistency token and no wait.

import assert from "node:assert/strict";
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

const PURPOSE = "product_analytics";

async function allowed(subjectId) {
  const answer = await mesh.grpc("consent", "pdm.consent.v1.ConsentService/CheckProcessing", {
    subject_id: subjectId,
    purpose: PURPOSE,
  });
  return answer.decision.allowed;
}

test("a consent toggle on the privacy choices page is seen by CheckProcessing at once", async () => {
  const person = await mesh.person();
  const { page } = await open(browser);
  await signIn(page, mesh.url, person);
  await page.goto(`${mesh.url}/privacy`);
  await checkPage(page, "privacy-choices");
  assert.equal(await allowed(person.subjectId), false, "no consent yet");

  const section = page.locator(`#purpose-${PURPOSE}`);
  const give = section.getByRole("button", { name: "Give consent to Product analytics" });
  await Promise.all([page.waitForNavigation({ url: `${mesh.url}/privacy` }), give.click()]);
  // The very next check, no token, no retry: allowed.
  assert.equal(await allowed(person.subjectId), true, "granted on the page, seen at once");
  const withdraw = section.getByRole("button", { name: "Withdraw consent to Product analytics" });
  assert.ok(await withdraw.isVisible());
  await checkPage(page, "privacy-choices-granted");

  // Withdrawn with the keyboard: focus the button, Enter.
  await withdraw.focus();
  await Promise.all([page.waitForNavigation({ url: `${mesh.url}/privacy` }), page.keyboard.press("Enter")]);
  assert.equal(await allowed(person.subjectId), false, "withdrawn on the page, seen at once");
  assert.ok(await give.isVisible());

  // The history page shows both, oldest first, as the ledger keeps them.
  await page.getByRole("link", { name: "See the history of your choices" }).click();
  await page.waitForURL(`${mesh.url}/privacy/history`);
  const rows = await page.locator("tr.entry").allTextContents();
  assert.equal(rows.length, 2, rows.join("\n"));
  assert.match(rows[0], /consent given.*Product analytics.*a form on our sites/);
  assert.match(rows[1], /consent withdrawn.*Product analytics/);
  await checkPage(page, "privacy-history");
  // The privacy team's command line reads the same ledger.
  const history = mesh.cli("consent", "history", person.subjectId);
  assert.match(history, /product_analytics/, history);
});
