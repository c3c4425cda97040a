// Headless Chromium (Debian's, /usr/bin/chromium, which `make web-test` installs with apt)
// driven by playwright-core, which downloads no browser; axe-core checks each page; every
// page visited is saved as a PNG under target/web/.

import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

import { chromium } from "playwright-core";

import { REPO, postgresWanted } from "./mesh.mjs";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** Where the screenshots go: target/web/<database>/<name>.png. */
export const SHOTS = join(REPO, "target", "web", postgresWanted() ? "postgres" : "sqlite");

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** A headless Chromium with a fresh profile (playwright makes a temporary user data
 * directory per launch), nothing fetched from the network but our pages. */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A new browser context (its own cookie jar) and a page in it; every message the page's
 * console shows (a CSP violation among them) is collected in `page.consoleMessages`. */
export async function open(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1024, height: 720 }, ...options });
  const page = await context.newPage();
  page.consoleMessages = [];
  page.on("console", (message) => page.consoleMessages.push(`${message.type()}: ${message.text()}`));
  return { context, page };
}

/**
 * Runs axe-core on the page as it is (WCAG 2.0-2.2 A and AA rules and best practices)
 * and fails on any serious or critical violation; saves a full-page screenshot as
 * target/web/<db>/<name>.png. axe's source is evaluated through the DevTools protocol,
 * which the page's CSP (no script at all) does not apply to; the page itself runs none.
 */
export async function checkPage(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"] }),
  );
  // Every finding, the minor and moderate ones too, for a person to read.
  const lines = results.violations.map((v) => `${name}\t${v.impact}\t${v.id}\t${v.nodes.length} node(s)\t${v.help}\n`);
  appendFileSync(join(SHOTS, "axe.txt"), lines.length ? lines.join("") : `${name}\tnone\n`);
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const described = bad.map(
    (v) => `${v.impact} ${v.id}: ${v.help}\n  ${v.nodes.map((n) => n.target.join(" ")).join("\n  ")}`,
  );
  assert.deepEqual(described, [], `axe on ${name} (${page.url()}):\n${described.join("\n")}`);
  return results.violations;
}

/** Presses Tab until the focused element matches `selector` (at most `limit` times). */
export async function tabTo(page, selector, limit = 40) {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
  }
  assert.fail(`${selector} not reached with Tab on ${page.url()}`);
}

/** Signs in through the form, typing as a person does; the page lands on /account. */
export async function signIn(page, url, person) {
  await page.goto(`${url}/sign-in`);
  await page.getByLabel("Email address").fill(person.email);
  await page.getByLabel("Password").fill(person.password);
  await Promise.all([page.waitForURL(`${url}/account`), page.getByRole("button", { name: "Sign in" }).click()]);
}
