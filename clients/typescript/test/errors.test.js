// Each error class, from the real service's answers where it can give them.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AuthClient,
  AuthError,
  Forbidden,
  InvalidCredentials,
  InvalidResetCode,
  InvalidToken,
  MemoryTokenStorage,
  ServiceUnavailable,
  TooManyAttempts,
  ValidationError,
  errorFromResponse,
} from "../dist/index.js";
import { ALICE, AUTH, STOCK, countingFetch, createUser, listen, newPassword } from "./support.js";

function client(options = {}) {
  return new AuthClient({ baseUrl: AUTH, ...options });
}

/** `error` is an instance of `ErrorClass` with these fields; returns it. */
function check(error, ErrorClass, expected) {
  assert.ok(error instanceof ErrorClass, `${error} is no ${ErrorClass.name}`);
  assert.ok(error instanceof AuthError);
  assert.equal(error.name, ErrorClass.name);
  assert.ok(error.message);
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(error[key], value, key);
  }
  return error;
}

/** `promise` rejects with an instance of `ErrorClass` with these fields; returns the error. */
async function rejectsWith(promise, ErrorClass, expected) {
  const error = await promise.then(
    () => assert.fail(`expected ${ErrorClass.name}`),
    (caught) => caught,
  );
  return check(error, ErrorClass, expected);
}

test("a wrong password is InvalidCredentials", async () => {
  const user = await createUser();
  await rejectsWith(client().login(user.username, "not-the-password-at-all"), InvalidCredentials, {
    status: 401,
    code: "invalid_credentials",
  });
});

test("repeated failures lock the account: TooManyAttempts with retryAfter", async () => {
  const user = await createUser();
  for (let failure = 0; failure < 5; failure++) {
    await assert.rejects(client().login(user.username, "not-the-password-at-all"), InvalidCredentials);
  }
  const error = await rejectsWith(client().login(user.username, user.password), TooManyAttempts, {
    status: 429,
    code: "too_many_attempts",
  });
  assert.ok(error.retryAfter > 0 && error.retryAfter <= 30, `retryAfter ${error.retryAfter}`);
});

test("a dead token is InvalidToken, and the session ends", async () => {
  const storage = new MemoryTokenStorage();
  storage.set("0".repeat(64));
  let ended = 0;
  const auth = client({ storage, onUnauthorized: () => ended++ });

  await rejectsWith(auth.profile(), InvalidToken, { status: 401, code: "invalid_token" });

  assert.equal(storage.get(), null);
  assert.equal(ended, 1);
});

test("no stored token is InvalidToken without a request", async () => {
  const { fetchFn, calls } = countingFetch();
  const auth = client({ fetchFn });
  for (const call of [() => auth.profile(), () => auth.logoutAll(), () => auth.changePassword("a", "b")]) {
    await rejectsWith(call(), InvalidToken, { status: null, code: "missing_token" });
  }
  assert.deepEqual(calls, []);
});

test("a refused new password is ValidationError naming the field", async () => {
  const user = await createUser();
  const auth = client();
  await auth.login(user.username, user.password);
  const error = await rejectsWith(auth.changePassword(user.password, "short"), ValidationError, {
    status: 400,
    code: "validation_error",
  });
  assert.ok(error.fields.new_password, JSON.stringify(error.fields));
});

test("a wrong current password is InvalidCredentials and keeps the session", async () => {
  const user = await createUser();
  const auth = client();
  await auth.login(user.username, user.password);
  await rejectsWith(auth.changePassword("not-the-password-at-all", newPassword()), InvalidCredentials, {
    status: 401,
  });
  assert.ok(await auth.storage.get());
});

test("an unknown reset code is InvalidResetCode, a kind of ValidationError", async () => {
  const error = await rejectsWith(client().resetPassword("no-such-code", newPassword()), InvalidResetCode, {
    status: 400,
    code: "invalid_reset_code",
  });
  assert.ok(error instanceof ValidationError);
});

test("errorFromResponse reads the answers of the service and of backends", async () => {
  const auth = client({ tokenOrigins: [STOCK] });
  await auth.login(ALICE.username, ALICE.password);

  const admin = await auth.authFetch(`${AUTH}/users`);
  check(await errorFromResponse(admin), Forbidden, { status: 403, code: "forbidden" });

  const write = await auth.authFetch(`${STOCK}/stock/items`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sku: "NUT-M6" }),
  });
  check(await errorFromResponse(write), Forbidden, { status: 403, code: "forbidden" });

  const broken = await auth.authFetch(`${AUTH}/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{not json",
  });
  check(await errorFromResponse(broken), ValidationError, { status: 400, code: "invalid_json" });

  const nowhere = await auth.authFetch(`${AUTH}/nowhere`);
  const error = check(await errorFromResponse(nowhere), AuthError, { status: 404, code: "not_found" });
  assert.equal(error.constructor, AuthError);
});

test("no answer at all is ServiceUnavailable", async () => {
  const closed = await listen(() => {});
  await closed.close();
  await rejectsWith(client({ baseUrl: closed.url }).login("alice", "x"), ServiceUnavailable, { status: null });
});

test("an answer slower than timeoutMs is ServiceUnavailable", async () => {
  const silent = await listen(() => {}); // accepts, never answers
  try {
    const auth = client({ baseUrl: silent.url, timeoutMs: 200 });
    await rejectsWith(auth.login("alice", "x"), ServiceUnavailable, { status: null });
  } finally {
    await silent.close();
  }
});

test("503 service_unavailable, and an answer outside the contract, are ServiceUnavailable", async () => {
  // The real service answers 503 only while its database is down, which these tests leave running.
  const outage = await listen((request, response) => {
    response.writeHead(503, { "Content-Type": "application/json", "Retry-After": "2" });
    response.end('{"error": "service_unavailable", "message": "the database is unreachable"}');
  });
  const proxyPage = await listen((request, response) => {
    response.writeHead(200, { "Content-Type": "text/html" });
    response.end("<html>login</html>");
  });
  try {
    await rejectsWith(client({ baseUrl: outage.url }).login("alice", "x"), ServiceUnavailable, {
      status: 503,
      code: "service_unavailable",
    });
    await rejectsWith(client({ baseUrl: proxyPage.url }).login("alice", "x"), ServiceUnavailable, { status: 200 });
  } finally {
    await outage.close();
    await proxyPage.close();
  }
});

test("Retry-After as an HTTP date is read as seconds", async () => {
  const inAMinute = new Date(Date.now() + 60_000).toUTCString();
  const response = new Response('{"error": "too_many_attempts", "message": "wait"}', {
    status: 429,
    headers: { "Retry-After": inAMinute },
  });
  const error = check(await errorFromResponse(response), TooManyAttempts, { status: 429 });
  assert.ok(error.retryAfter >= 58 && error.retryAfter <= 60, `retryAfter ${error.retryAfter}`);
});
