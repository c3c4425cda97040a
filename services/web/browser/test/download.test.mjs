// Policy, "Your Rights and Choices" (the right of access: a copy of the data we hold):
// Download my data end to end in Chromium: the request from My requests, its progress page
// until rights has gathered the data from every service, then the package page and the
// JSON file, downloaded as a browser downloads it.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

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

test("download my data: the request, its progress page, the package page and the JSON file", async () => {
  const person = await mesh.person();
  const { page } = await open(browser);
  await signIn(page, mesh.url, person);

  // Account settings → My requests: nothing yet.
  await page.getByRole("link", { name: "My requests" }).click();
  await page.waitForURL(`${mesh.url}/requests`);
  assert.match(await page.locator("main").textContent(), /not made any request/);
  await checkPage(page, "requests-empty");

  // Request a copy: the request's own page, with no personal data in its address.
  await Promise.all([
    page.waitForURL(/\/requests\/[^/]+$/),
    page.getByRole("button", { name: "Request a copy of my data" }).click(),
  ]);
  const path = new URL(page.url()).pathname;
  assert.ok(!path.includes(person.subjectId) && !path.includes(person.email), path);
  // The progress page: no script and no timed reload (WCAG 2.2.1), a link to check again
  // while rights gathers the data from every service.
  assert.equal(await page.locator('meta[http-equiv="refresh"]').count(), 0);
  let inProgress = false;
  const until = performance.now() + 90_000;
  while ((await page.locator("#status").textContent()) !== "done") {
    assert.ok(performance.now() < until, "the access request did not complete");
    if (!inProgress) await checkPage(page, "request-in-progress");
    inProgress = true;
    await sleep(200);
    await Promise.all([page.waitForNavigation(), page.getByRole("link", { name: "Check again" }).click()]);
  }
  assert.equal(await page.locator("#check-again").count(), 0, "done: nothing more to wait for");
  const progress = await page.locator("#progress").textContent();
  const [, done, all] = /(\d+) of (\d+) steps/.exec(progress);
  assert.equal(done, all, progress);
  assert.ok(Number(all) >= 4, `every service's part: ${progress}`);
  await checkPage(page, "request-done");

  // The package page: the person's own data, in a table people read.
  await page.getByRole("link", { name: "read it here" }).click();
  await page.waitForURL(`${mesh.url}${path}/package`);
  const table = await page.locator("table").textContent();
  assert.ok(table.includes(person.email), "the email identity holds");
  assert.ok(table.includes(person.lastName), "the name identity holds");
  await checkPage(page, "package");

  // The JSON file, as the browser downloads it.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download it as a JSON file" }).click(),
  ]);
  assert.equal(download.suggestedFilename(), "my-data.json");
  const json = JSON.parse(readFileSync(await download.path(), "utf8"));
  assert.equal(json.schema, "pdm.export.v1");
  assert.ok(JSON.stringify(json).includes(person.email));

  // The list shows the request, done, with the date we answer by.
  await page.goto(`${mesh.url}/requests`);
  const row = page.locator("tr.request");
  assert.equal(await row.count(), 1);
  assert.match(await row.locator(".status").textContent(), /done/);
  assert.match(await row.locator(".due").textContent(), /^\d{4}-\d{2}-\d{2}/);
  await checkPage(page, "requests");
});
