// Every page of the privacy centre in Chromium: axe-core finds no serious or critical
// accessibility violation (WCAG 2.x A and AA), and a screenshot of each is saved under
// target/web/<database>/ (the other tests check the pages of their own paths: the request
// and package pages, the deletion confirmation, the 403 page).

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

test("every page passes axe-core without a serious or critical violation", async () => {
  const person = await mesh.person();
  const { page } = await open(browser);

  await page.goto(`${mesh.url}/`);
  assert.equal(page.url(), `${mesh.url}/sign-in`);
  await checkPage(page, "sign-in");
  await page.getByLabel("Email address").fill(person.email);
  await page.getByLabel("Password").fill("not the password at all");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#sign-in-error").waitFor();
  await checkPage(page, "sign-in-error");

  await signIn(page, mesh.url, person);
  await checkPage(page, "account");

  await page.goto(`${mesh.url}/profile`);
  await checkPage(page, "profile");
  await page.getByLabel(/Phone number/).fill("12");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#phone-error").waitFor();
  assert.equal(await page.getByLabel(/Phone number/).getAttribute("aria-invalid"), "true");
  await checkPage(page, "profile-error");
  await page.getByLabel(/Phone number/).fill("");
  await page.getByLabel("First name").fill("Augusta");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Your details are saved.").waitFor();
  await checkPage(page, "profile-saved");

  await page.goto(`${mesh.url}/privacy/history`);
  await checkPage(page, "privacy-history-empty");

  await page.goto(`${mesh.url}/messages`);
  await checkPage(page, "messages");
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Stop Email" }).click()]);
  await page.getByRole("button", { name: "Turn Email back on" }).waitFor();
  await checkPage(page, "messages-email-off");

  await page.goto(`${mesh.url}/account/delete`);
  await checkPage(page, "delete-reason");
  // Sent without a reason (the browser's own check lifted): the page says what is missing.
  await page.locator("input[name=reason]").evaluateAll((inputs) => inputs.forEach((i) => i.removeAttribute("required")));
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Continue" }).click()]);
  assert.equal(await page.getByRole("alert").textContent(), "Choose a reason to continue.");
  await checkPage(page, "delete-reason-error");
  await page.getByLabel("Another reason").check();
  await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Continue" }).click()]);
  await checkPage(page, "delete-confirm");

  await page.goto(`${mesh.url}/no-such-page`);
  await checkPage(page, "not-found");

  // A browser sending Global Privacy Control: the privacy choices say it was recorded.
  const { page: gpc } = await open(browser, { extraHTTPHeaders: { "Sec-GPC": "1" } });
  const other = await mesh.person();
  await signIn(gpc, mesh.url, other);
  await gpc.goto(`${mesh.url}/privacy`);
  await gpc.locator("#gpc-notice").waitFor();
  await checkPage(gpc, "privacy-gpc");
});
