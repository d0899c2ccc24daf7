// The login page in headless Chromium, served from another origin than the auth service, so
// every call is cross-origin: log in, see the services and roles, read the stock backend with
// the token, log out; and a page on an origin the service does not list cannot log in.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const { AUTH_BASE_URL: AUTH, STOCK_URL: STOCK, PAGE_ORIGIN, SCREENSHOT_DIR, CHROMIUM } = process.env;
if (!AUTH || !STOCK || !PAGE_ORIGIN || !SCREENSHOT_DIR) {
  throw new Error("AUTH_BASE_URL, STOCK_URL, PAGE_ORIGIN and SCREENSHOT_DIR are not set: run this with make test-browser");
}
const PACKAGE = fileURLToPath(new URL("..", import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript" };
const QUERY = `?auth=${encodeURIComponent(AUTH)}&stock=${encodeURIComponent(STOCK)}`;

let browser, page, listed, unlisted;

/** A static server of demo/ and dist/ on 127.0.0.1:`port` (0: any); its origin and a close. */
async function servePage(port) {
  const server = createServer(async (request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
    if (!/^\/(demo|dist)\/[\w.-]+$/.test(path)) {
      response.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(join(PACKAGE, path));
      response.writeHead(200, { "Content-Type": TYPES[extname(path)] ?? "application/octet-stream" }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

before(async () => {
  listed = await servePage(Number(new URL(PAGE_ORIGIN).port));
  unlisted = await servePage(0);
  browser = await chromium.launch({
    executablePath: CHROMIUM || "/usr/bin/chromium",
    // Without the networking switches Chromium keeps calling home, which a closed network refuses.
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
  page = await browser.newPage({ viewport: { width: 720, height: 900 } });
});

after(async () => {
  await browser?.close();
  listed?.close();
  unlisted?.close();
});

const text = (selector) => page.locator(selector).innerText();
const storedToken = () => page.evaluate(() => localStorage.getItem("eqeqo-auth-token"));

async function logIn(username, password) {
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", password);
  await page.click("text=Log in");
}

test("a page on a listed origin logs in, reads the stock with the token, and logs out", async (t) => {
  await page.goto(`${listed.origin}/demo/index.html${QUERY}`);
  await logIn("alice", "maple-harbor-17");

  await page.waitForSelector("text=Logged in as alice (Alice).");
  const services = await page.locator("#services li").allInnerTexts();
  assert.ok(services.includes("stock: clerk"), services.join(" | "));
  assert.ok(services.includes("sales: seller"), services.join(" | "));
  await page.waitForSelector("#expiry:has-text('Session valid for')");
  const token = await storedToken();
  assert.match(token, /^[0-9a-f]{64}$/);

  await page.click("text=Load stock items");
  await page.waitForSelector("text=Stock items as seen by alice.");
  assert.deepEqual(await page.locator("#stock li").allInnerTexts(), ["BOLT-M6: M6 bolt, 1200"]);

  const screenshot = join(SCREENSHOT_DIR, "login-page.png");
  await page.screenshot({ path: screenshot, fullPage: true });
  t.diagnostic(`screenshot: ${screenshot}`);

  await page.reload();
  await page.waitForSelector("text=Logged in as alice (Alice).");

  await page.click("text=Log out");
  await page.waitForSelector("#status:has-text('Logged out.')");
  assert.equal(await page.locator("#login").isVisible(), true);
  assert.equal(await storedToken(), null);
  const revoked = await fetch(`${AUTH}/auth/profile`, { headers: { token } });
  assert.equal(revoked.status, 401, "logout revoked the token at the service");
});

test("a wrong password is said so on the page", async () => {
  await page.goto(`${listed.origin}/demo/index.html${QUERY}`);
  await logIn("nobody-at-all", "not-the-password-at-all");
  await page.waitForSelector("#status:has-text('Wrong username or password.')");
});

test("a page on an origin the service does not list cannot log in", async () => {
  const refusals = [];
  page.on("console", (message) => message.type() === "error" && refusals.push(message.text()));
  await page.goto(`${unlisted.origin}/demo/index.html${QUERY}`);
  await logIn("alice", "maple-harbor-17");

  await page.waitForSelector("#status:has-text('Cannot reach the auth service')");
  assert.equal(await page.locator("#session").isVisible(), false);
  assert.equal(await storedToken(), null);
  assert.ok(
    refusals.some((line) => line.includes("CORS policy")),
    `Chromium should name CORS as the cause: ${refusals.join(" | ")}`,
  );
});
