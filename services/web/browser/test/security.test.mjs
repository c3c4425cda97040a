// Policy, "Data Security" (appropriate technical measures against unauthorised access):
// what Chromium itself enforces from the front's answers. Every page's security headers
// (a CSP without inline scripts that the browser applies, HSTS, nosniff, framing refused),
// the cookies' flags as the browser stores them (HttpOnly: invisible to scripts;
// SameSite=Strict: not sent by another site's form; Secure: the front runs behind TLS),
// and a form sent without its CSRF token answered 403 with nothing recorded.

import assert from "node:assert/strict";
import { createServer } from "node:http";
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

async function analyticsAllowed(subjectId) {
  const answer = await mesh.grpc("consent", "pdm.consent.v1.ConsentService/CheckProcessing", {
    subject_id: subjectId,
    purpose: "product_analytics",
  });
  return answer.decision.allowed;
}

function assertSecurityHeaders(headers, where) {
  const csp = headers["content-security-policy"] ?? "";
  const directives = Object.fromEntries(
    csp
      .split(";")
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...values]) => [name, values]),
  );
  assert.deepEqual(directives["default-src"], ["'none'"], `${where}: ${csp}`);
  assert.deepEqual(directives["frame-ancestors"], ["'none'"], `${where}: ${csp}`);
  // No script source at all: default-src 'none' forbids every script, inline ones too.
  assert.equal(directives["script-src"], undefined, `${where}: ${csp}`);
  assert.ok(!csp.includes("unsafe-inline") && !csp.includes("unsafe-eval"), `${where}: ${csp}`);
  const hsts = headers["strict-transport-security"] ?? "";
  assert.ok(Number(/max-age=(\d+)/.exec(hsts)?.[1]) >= 31_536_000, `${where}: HSTS ${hsts}`);
  assert.match(hsts, /includeSubDomains/, where);
  assert.equal(headers["x-content-type-options"], "nosniff", where);
  assert.equal(headers["x-frame-options"], "DENY", where);
  assert.equal(headers["referrer-policy"], "no-referrer", where);
  assert.equal(headers["cache-control"], "no-store", where);
}

test("every page carries the security headers and the browser applies the CSP", async () => {
  const person = await mesh.person();
  const { page } = await open(browser);
  const seen = [];
  page.on("response", async (response) => {
    if (response.request().resourceType() === "document") seen.push([response.url(), await response.allHeaders()]);
  });
  await page.goto(`${mesh.url}/sign-in`);
  await signIn(page, mesh.url, person);
  for (const path of ["/profile", "/privacy", "/privacy/history", "/messages", "/requests", "/account/delete", "/no-such-page"]) {
    await page.goto(`${mesh.url}${path}`);
  }
  assert.ok(seen.length >= 9, seen.map(([u]) => u).join("\n"));
  for (const [url, headers] of seen) assertSecurityHeaders(headers, url);
  const css = await page.request.get(`${mesh.url}/static/style.css`);
  assertSecurityHeaders(css.headers(), "style.css");

  // The pages carry no script, and an inline script put into one does not run: the
  // browser reports the violation of the policy.
  await page.goto(`${mesh.url}/account`);
  assert.equal(await page.locator("script").count(), 0);
  const outcome = await page.evaluate(
    () =>
      new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (e) => resolve({ ran: window.injected === 1, directive: e.effectiveDirective }));
        const script = document.createElement("script");
        script.textContent = "window.injected = 1";
        document.body.append(script);
        setTimeout(() => resolve({ ran: window.injected === 1, directive: "" }), 2_000);
      }),
  );
  assert.deepEqual(outcome, { ran: false, directive: "script-src-elem" });

  // Framed by another page: refused (frame-ancestors 'none').
  const { page: framing } = await open(browser);
  await framing.setContent(`<iframe id="f" src="${mesh.url}/sign-in" width="400" height="300"></iframe>`);
  await framing.waitForTimeout(1_000);
  const frame = framing.frames().find((f) => f !== framing.mainFrame());
  assert.ok(frame, "the frame exists");
  assert.equal(await frame.locator("#email").count(), 0, "the sign-in form must not render inside another page's frame");
  assert.ok(
    framing.consoleMessages.some((m) => m.includes("frame-ancestors 'none'")),
    framing.consoleMessages.join("\n"),
  );
});

test("cookies are HttpOnly, SameSite=Strict and Secure, as Chromium stores them", async () => {
  const person = await mesh.person();
  const { context, page } = await open(browser);
  const form = await page.goto(`${mesh.url}/sign-in`);
  const csrfCookie = (await form.headerValues("set-cookie")).find((c) => c.startsWith("pdm_csrf="));
  assert.ok(csrfCookie, "the sign-in form sets its CSRF cookie");
  for (const flag of ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"]) assert.ok(csrfCookie.includes(flag), `${flag}: ${csrfCookie}`);

  const [signedIn] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${mesh.url}/sign-in` && r.request().method() === "POST"),
    signIn(page, mesh.url, person),
  ]);
  const sessionCookie = (await signedIn.headerValues("set-cookie")).find((c) => c.startsWith("pdm_session="));
  for (const flag of ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"]) assert.ok(sessionCookie.includes(flag), `${flag}: ${sessionCookie}`);
  // Stored as sent (localhost is a secure context, so the Secure cookie is kept over
  // plain HTTP here; in production the front is reached over TLS only, HSTS pinning it).
  const stored = (await context.cookies()).find((c) => c.name === "pdm_session");
  assert.equal(stored.httpOnly, true);
  assert.equal(stored.sameSite, "Strict");
  assert.equal(stored.secure, true);
  assert.equal(stored.expires, -1, "a browser-session cookie");
  // Invisible to scripts.
  assert.equal(await page.evaluate(() => document.cookie), "");
  assert.ok(!(await context.cookies()).some((c) => c.name === "pdm_csrf"), "the sign-in CSRF cookie ends at sign-in");
});

test("a form without its CSRF token is refused with 403, and another site's form too", async () => {
  const person = await mesh.person();
  const { page } = await open(browser);
  await signIn(page, mesh.url, person);
  await page.goto(`${mesh.url}/privacy`);
  const form = page.locator("#purpose-product_analytics form");

  // The consent form with its token removed, sent from the page as a person would.
  await form.locator("input[name=csrf]").evaluate((input) => input.remove());
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${mesh.url}/privacy` && r.request().method() === "POST"),
    form.getByRole("button").click(),
  ]);
  assert.equal(refused.status(), 403);
  await page.waitForLoadState("load");
  assert.equal(await page.locator("h1").textContent(), "Forbidden");
  await checkPage(page, "forbidden");
  assert.equal(await analyticsAllowed(person.subjectId), false, "nothing recorded");

  // A form with a token that is not the session's: 403 too.
  await page.goto(`${mesh.url}/privacy`);
  await form.locator("input[name=csrf]").evaluate((input) => (input.value = "forged".repeat(8)));
  const [forged] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${mesh.url}/privacy` && r.request().method() === "POST"),
    form.getByRole("button").click(),
  ]);
  assert.equal(forged.status(), 403);
  assert.equal(await analyticsAllowed(person.subjectId), false, "nothing recorded");

  // Another site (127.0.0.1 is not the same site as localhost) copies the form with a
  // token it somehow read and sends it from its page: the session cookie stays home
  // (SameSite=Strict), so the front sees no session and no token to match: 403.
  await page.goto(`${mesh.url}/privacy`);
  const token = await form.locator("input[name=csrf]").inputValue();
  const hash = await form.locator("input[name=text_hash]").inputValue();
  const attacker = createServer((_, response) => {
    response.setHeader("content-type", "text/html");
    response.end(`<!doctype html><form id="f" method="post" action="${mesh.url}/privacy">
      <input name="csrf" value="${token}"><input name="purpose" value="product_analytics">
      <input name="action" value="grant"><input name="text_hash" value="${hash}">
      <button>Win a prize</button></form>`);
  });
  await new Promise((ok) => attacker.listen(0, "127.0.0.1", ok));
  try {
    const other = await page.context().newPage();
    await other.goto(`http://127.0.0.1:${attacker.address().port}/`);
    const [crossSite] = await Promise.all([
      other.waitForResponse((r) => r.url() === `${mesh.url}/privacy` && r.request().method() === "POST"),
      other.getByRole("button", { name: "Win a prize" }).click(),
    ]);
    assert.equal((await crossSite.request().allHeaders()).cookie, undefined, "no cookie sent cross-site");
    assert.equal(crossSite.status(), 403);
  } finally {
    attacker.close();
  }
  assert.equal(await analyticsAllowed(person.subjectId), false, "nothing recorded");

  // With its token the same form goes through.
  await page.goto(`${mesh.url}/privacy`);
  await Promise.all([page.waitForNavigation({ url: `${mesh.url}/privacy` }), form.getByRole("button").click()]);
  assert.equal(await analyticsAllowed(person.subjectId), true);
});
