// Policy, "Account Deletion": "1. Click on your name at the top right. 2. Choose Account
// Settings. 3. Click on Delete Account. 4. You may be asked to enter your password again or
// provide a reason for deleting your account. 5. Confirm, and you will receive a
// confirmation email." Walked with the keyboard only in headless Chromium, then checked
// over gRPC: the account is gone from every service of the mesh.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { checkPage, launch, open, tabTo } from "../lib/browser.mjs";
import { GrpcError, Mesh, eventually } from "../lib/mesh.mjs";

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

/** Presses Enter on the focused element and waits for the new page at `path` (a form
 * sent to the page it is on loads that page again). */
async function enterTo(page, path) {
  await Promise.all([page.waitForNavigation({ url: `${mesh.url}${path}` }), page.keyboard.press("Enter")]);
}

test("the deletion path with the keyboard ends with the account gone from every service", async () => {
  const person = await mesh.person();
  const { context, page } = await open(browser);

  // Sign in with the keyboard: Tab to each field, type, Enter submits.
  await page.goto(`${mesh.url}/sign-in`);
  await tabTo(page, "#email");
  await page.keyboard.type(person.email);
  await page.keyboard.press("Tab");
  await page.keyboard.type(person.password);
  await enterTo(page, "/account");

  // 1. The name at the top right (from another page, so the link really leads somewhere).
  await page.goto(`${mesh.url}/privacy`);
  const name = page.locator("#account-menu");
  assert.equal(await name.textContent(), `${person.firstName} ${person.lastName}`);
  const box = await name.boundingBox();
  const width = page.viewportSize().width;
  assert.ok(box.x > width / 2 && box.y < 80, `the name is at the top right: ${JSON.stringify(box)}`);
  await tabTo(page, "#account-menu");
  // 2. Account settings.
  await enterTo(page, "/account");
  assert.equal(await page.locator("h1").textContent(), "Account settings");
  // 3. Delete account.
  await tabTo(page, "#delete-account");
  await enterTo(page, "/account/delete");

  // 4. A reason: Tab into the radio group, the arrow key chooses the second reason.
  await tabTo(page, "input[name=reason]");
  await page.keyboard.press("ArrowDown");
  assert.equal(await page.locator("input[name=reason]:checked").getAttribute("value"), "DELETION_REASON_PRIVACY_CONCERNS");
  await tabTo(page, "form[action='/account/delete'] button[type=submit]");
  await enterTo(page, "/account/delete");
  assert.equal(await page.locator("h1").textContent(), "Confirm deletion");
  assert.match(await page.locator("main").textContent(), /Reason: I have privacy concerns/);

  // The password again, a wrong one first: refused, the account still there.
  await tabTo(page, "#password");
  await page.keyboard.type("not the password at all");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Space");
  assert.ok(await page.locator("#confirm").isChecked());
  await page.keyboard.press("Tab");
  await enterTo(page, "/account/delete/confirm");
  assert.equal(await page.locator("#delete-error").textContent(), "That password is not right.");
  await checkPage(page, "delete-confirm-wrong-password");
  await mesh.grpc("identity", "pdm.identity.v1.IdentityService/GetAccount", { subject_id: person.subjectId });

  // Without the final confirmation the browser does not send the form.
  await tabTo(page, "#password");
  await page.keyboard.type(person.password);
  await page.keyboard.press("Enter");
  assert.equal(await page.locator("#confirm").isChecked(), false);
  assert.ok(await page.locator("#confirm").evaluate((e) => !e.validity.valid));
  assert.match(page.url(), /\/account\/delete\/confirm$/);

  // 5. The final confirmation, then the confirmation page; the session cookie is gone.
  await tabTo(page, "#confirm");
  await page.keyboard.press("Space");
  await page.keyboard.press("Tab");
  await enterTo(page, "/account/deleted").catch(async (e) => {
    throw new Error(`${e.message}\n${await page.locator("main").textContent()}\n${mesh.logTail()}`);
  });
  assert.equal(await page.locator("h1").textContent(), "Your account is deleted");
  await checkPage(page, "account-deleted");
  const cookies = await context.cookies();
  assert.ok(!cookies.some((c) => c.name === "pdm_session"), JSON.stringify(cookies));
  await page.goto(`${mesh.url}/account`);
  assert.equal(page.url(), `${mesh.url}/sign-in`);

  // Gone from every service. Rights ran the erasure DeleteAccount asked for across the
  // mesh: completed, every service's step done.
  const erasure = await eventually(
    "the erasure request completed",
    async () => {
      const queue = await mesh.grpc(
        "rights",
        "pdm.rights.v1.RightsService/ListRequests",
        { kind: "REQUEST_KIND_ERASURE", page_size: 500 },
        "admin",
      );
      return (queue.requests ?? []).find((r) => r.subjectId === person.subjectId && r.status === "STATUS_COMPLETED");
    },
    60_000,
  );
  const shown = await mesh.grpc(
    "rights",
    "pdm.rights.v1.RightsService/GetRequest",
    { request_id: erasure.requestId },
    "admin",
  );
  const tasks = shown.request.tasks ?? [];
  const services = Object.keys(mesh.ports).filter((s) => s !== "rights");
  for (const service of ["identity", "consent", "telemetry", "transfers"]) {
    assert.ok(services.includes(service), `${service} runs in the mesh`);
  }
  for (const task of tasks) assert.equal(task.status, "done", JSON.stringify(task));
  for (const service of ["identity", "consent", "telemetry", "transfers"]) {
    assert.ok(
      tasks.some((t) => t.service === service),
      `${service} erased the subject: ${JSON.stringify(tasks)}`,
    );
  }
  // The privacy team's command line says the same.
  const cli = mesh.cli("rights", "show", erasure.requestId);
  assert.match(cli, /completed|COMPLETED/, cli);

  // Identity: no account, and the password signs nobody in.
  await assert.rejects(
    mesh.grpc("identity", "pdm.identity.v1.IdentityService/GetAccount", { subject_id: person.subjectId }),
    (e) => e instanceof GrpcError && e.code === "NotFound",
  );
  await assert.rejects(
    mesh.grpc("identity", "pdm.identity.v1.IdentityService/Authenticate", {
      email: person.email,
      password: person.password,
    }),
    (e) => e instanceof GrpcError && ["Unauthenticated", "NotFound"].includes(e.code),
  );
  // Consent: the subject is no longer known (its ledger erased).
  await assert.rejects(
    mesh.grpc("consent", "pdm.consent.v1.ConsentService/GetConsents", { subject_id: person.subjectId }),
    (e) => e instanceof GrpcError,
  );
  // Nor can the person sign in on the pages.
  const { page: again } = await open(browser);
  await again.goto(`${mesh.url}/sign-in`);
  await again.getByLabel("Email address").fill(person.email);
  await again.getByLabel("Password").fill(person.password);
  await again.getByRole("button", { name: "Sign in" }).click();
  assert.equal(await again.locator("#sign-in-error").textContent(), "The email address or the password is not right.");
  // No personal data in the logs of the mesh.
  const log = mesh.log();
  for (const secret of [person.email, person.password, person.lastName]) assert.ok(!log.includes(secret), "personal data in the log");
});
