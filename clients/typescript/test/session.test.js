// Every method of the client against the real service: login, profile, logout, passwords.
import assert from "node:assert/strict";
import { test } from "node:test";

import { AuthClient, InvalidCredentials, InvalidToken, MemoryTokenStorage } from "../dist/index.js";
import { ALICE, AUTH, countingFetch, createUser, newPassword, resetCode, unique } from "./support.js";

function client(options = {}) {
  return new AuthClient({ baseUrl: AUTH, ...options });
}

async function loggedIn(username, password) {
  const auth = client();
  await auth.login(username, password);
  return auth;
}

test("login answers the session and keeps the token and its expiry", async () => {
  const storage = new MemoryTokenStorage();
  const auth = client({ storage });
  assert.equal(auth.expiresAt, null);

  const session = await auth.login(ALICE.username, ALICE.password);

  assert.match(session.token, /^[0-9a-f]{64}$/);
  assert.equal(session.username, "alice");
  assert.equal(session.name, "Alice");
  assert.equal(typeof session.userId, "number");
  assert.ok(session.expiresIn > 0);
  assert.ok(Math.abs(session.expiresAt - (Date.now() / 1000 + session.expiresIn)) < 5);
  assert.equal(storage.get(), session.token);
  assert.equal(auth.expiresAt, session.expiresAt);
  assert.equal(auth.expiresIn, session.expiresIn);
});

test("login takes an email as well as a username", async () => {
  const session = await client().login(ALICE.email, ALICE.password);
  assert.equal(session.username, "alice");
});

test("profile lists the services with their roles and permissions, and the expiry", async () => {
  const auth = await loggedIn(ALICE.username, ALICE.password);
  const profile = await auth.profile();

  assert.equal(profile.username, "alice");
  assert.equal(profile.email, ALICE.email);
  const byService = Object.fromEntries(profile.services.map((access) => [access.service, access]));
  assert.deepEqual(byService.stock.roles, ["clerk"]);
  assert.ok(byService.stock.permissions.includes("stock.read"));
  assert.deepEqual(byService.sales.roles, ["seller"]);
  assert.equal(typeof byService.stock.serviceId, "number");
  assert.equal(typeof profile.renewed, "boolean");
  assert.ok(profile.expiresIn > 0);
  assert.equal(auth.expiresAt, profile.expiresAt);
});

test("logout revokes the token and forgets it", async () => {
  const auth = await loggedIn(ALICE.username, ALICE.password);
  const token = await auth.storage.get();

  await auth.logout();

  assert.equal(await auth.storage.get(), null);
  assert.equal(auth.expiresAt, null);
  const other = client({ storage: new MemoryTokenStorage() });
  await other.storage.set(token);
  await assert.rejects(other.profile(), InvalidToken);
});

test("logout without a token sends nothing", async () => {
  const { fetchFn, calls } = countingFetch();
  await client({ fetchFn }).logout();
  assert.deepEqual(calls, []);
});

test("logoutAll revokes every session of the user", async () => {
  const user = await createUser();
  const phone = await loggedIn(user.username, user.password);
  const laptop = await loggedIn(user.username, user.password);

  assert.equal(await laptop.logoutAll(), 2);

  assert.equal(await laptop.storage.get(), null);
  await assert.rejects(phone.profile(), InvalidToken);
});

test("changePassword keeps this session, ends the others, and the new password works", async () => {
  const user = await createUser();
  const here = await loggedIn(user.username, user.password);
  const elsewhere = await loggedIn(user.username, user.password);
  const next = newPassword();

  assert.equal(await here.changePassword(user.password, next), 1);

  assert.equal((await here.profile()).username, user.username);
  await assert.rejects(elsewhere.profile(), InvalidToken);
  await assert.rejects(client().login(user.username, user.password), InvalidCredentials);
  await client().login(user.username, next);
});

test("forgotPassword mails a code that resetPassword spends", async () => {
  const user = await createUser();
  const before = await loggedIn(user.username, user.password);
  const next = newPassword();

  await client().forgotPassword(user.email);
  const code = await resetCode(user.email);
  await client().resetPassword(code, next);

  await client().login(user.username, next);
  await assert.rejects(before.profile(), InvalidToken, "a reset ends every session");
});

test("forgotPassword answers the same for an unknown account", async () => {
  await client().forgotPassword(`${unique("nobody")}@example.com`);
});

test("every call goes through the fetchFn given", async () => {
  const { fetchFn, calls } = countingFetch();
  const auth = client({ fetchFn });
  await auth.login(ALICE.username, ALICE.password);
  await auth.profile();
  await auth.logout();
  assert.deepEqual(
    calls.map((call) => `${call.method} ${call.url}`),
    [`POST ${AUTH}/auth/login`, `GET ${AUTH}/auth/profile`, `POST ${AUTH}/auth/logout`],
  );
});
