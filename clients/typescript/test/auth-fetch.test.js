// authFetch: the token goes to the listed origins and nowhere else; a 401 ends the session.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { AuthClient, MemoryTokenStorage } from "../dist/index.js";
import { ALICE, AUTH, STOCK, listen } from "./support.js";

let elsewhere; // a server of someone else, recording what it is sent
const seen = [];

before(async () => {
  elsewhere = await listen((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const { token = null, "x-request-id": requestId = null } = request.headers;
      seen.push({ method: request.method, token, requestId, body });
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end("{}");
    });
  });
});

after(() => elsewhere.close());

async function aliceClient(options = {}) {
  const auth = new AuthClient({ baseUrl: AUTH, tokenOrigins: [STOCK], ...options });
  await auth.login(ALICE.username, ALICE.password);
  return auth;
}

test("the token goes to a listed backend, which lets alice read", async () => {
  const auth = await aliceClient();
  const response = await auth.authFetch(`${STOCK}/stock/items`);
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.seen_by, "alice");
  assert.ok(body.items.some((item) => item.sku === "BOLT-M6"));
});

test("the token goes to the auth service itself", async () => {
  const auth = await aliceClient();
  const response = await auth.authFetch(new URL("/auth/profile", AUTH));
  assert.equal(response.status, 200);
  assert.equal((await response.json()).payload.username, "alice");
});

test("the token goes to no other origin, not even another port of the same host", async () => {
  const auth = await aliceClient();
  seen.length = 0;
  await auth.authFetch(`${elsewhere.url}/collect`);
  await auth.authFetch(new Request(`${elsewhere.url}/collect`, { method: "POST", body: "x" }));
  assert.deepEqual(
    seen.map((request) => request.token),
    [null, null],
  );
});

test("a listed origin is matched exactly, whatever path or slash it was given with", async () => {
  const auth = await aliceClient({ tokenOrigins: [`${STOCK}/stock/`] });
  assert.equal((await auth.authFetch(`${STOCK}/stock/items`)).status, 200);
});

test("the caller's method, headers and body are kept", async () => {
  const auth = await aliceClient({ tokenOrigins: [elsewhere.url] });
  seen.length = 0;
  await auth.authFetch(`${elsewhere.url}/orders`, {
    method: "PUT",
    headers: { "Content-Type": "application/json", "X-Request-ID": "kept-1" },
    body: '{"sku": "NUT-M6"}',
  });
  await auth.authFetch(new Request(`${elsewhere.url}/orders`, { method: "DELETE", headers: { "X-Request-ID": "kept-2" } }));
  const token = await auth.storage.get();
  assert.deepEqual(seen, [
    { method: "PUT", token, requestId: "kept-1", body: '{"sku": "NUT-M6"}' },
    { method: "DELETE", token, requestId: "kept-2", body: "" },
  ]);
});

test("a 401 forgets the token and calls onUnauthorized once", async () => {
  let ended = 0;
  const storage = new MemoryTokenStorage();
  const auth = await aliceClient({ storage, onUnauthorized: () => ended++ });
  // Revoked elsewhere (another tab, an administrator) before the backend first sees it.
  await fetch(`${AUTH}/auth/logout`, { method: "POST", headers: { token: storage.get() } });

  const answers = await Promise.all([
    auth.authFetch(`${STOCK}/stock/items`),
    auth.authFetch(`${STOCK}/stock/items`),
  ]);

  assert.deepEqual(
    answers.map((answer) => answer.status),
    [401, 401],
  );
  assert.equal(storage.get(), null);
  assert.equal(auth.expiresAt, null);
  assert.equal(ended, 1);
});

test("a 401 from an origin the token did not go to leaves the session alone", async () => {
  const refusing = await listen((request, response) => {
    response.writeHead(401, { "Content-Type": "application/json" });
    response.end('{"error": "invalid_token", "message": "not yours"}');
  });
  try {
    let ended = 0;
    const auth = await aliceClient({ onUnauthorized: () => ended++ });
    assert.equal((await auth.authFetch(refusing.url)).status, 401);
    assert.ok(await auth.storage.get());
    assert.equal(ended, 0);
  } finally {
    await refusing.close();
  }
});

test("without a stored token the request goes out as it is", async () => {
  const auth = new AuthClient({ baseUrl: AUTH, tokenOrigins: [STOCK] });
  const response = await auth.authFetch(`${STOCK}/stock/items`);
  assert.equal(response.status, 401);
});
