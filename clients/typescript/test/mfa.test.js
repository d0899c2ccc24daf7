// Two-step login against the real service: enrolment, MfaRequired from login, the second step
// with a code from the app or a recovery code, wrong codes, and removal.
import assert from "node:assert/strict";
import { test } from "node:test";

import { AuthClient, InvalidMfa, MemoryTokenStorage, MfaRequired } from "../dist/index.js";
import { AUTH, createUser, totp } from "./support.js";

test("a user enrols an authenticator app, then logs in in two steps", async () => {
  const user = await createUser();
  const storage = new MemoryTokenStorage();
  const auth = new AuthClient({ baseUrl: AUTH, storage });
  await auth.login(user.username, user.password);

  const enrolment = await auth.startMfaEnrolment();
  assert.match(enrolment.otpauthUri, /^otpauth:\/\/totp\//);
  const recovery = await auth.confirmMfaEnrolment(await totp(enrolment.secret, 1));
  assert.equal(recovery.length, 10);
  storage.clear();

  const first = await auth.login(user.username, user.password).catch((error) => error);
  assert.ok(first instanceof MfaRequired, String(first));
  assert.equal(first.expiresIn, 300);
  assert.equal(storage.get(), null);
  await assert.rejects(auth.loginMfa(first.mfaToken, "000000"), InvalidMfa);

  const session = await auth.loginMfa(first.mfaToken, await totp(enrolment.secret));
  assert.equal(session.username, user.username);
  assert.equal(session.mfaEnrolmentRequired, false);
  assert.equal(storage.get(), session.token);

  const again = await auth.login(user.username, user.password).catch((error) => error);
  assert.ok(again instanceof MfaRequired);
  await auth.loginMfa(again.mfaToken, recovery[0]);
  await assert.rejects(
    auth.login(user.username, user.password).then((e) => e).catch((e) => auth.loginMfa(e.mfaToken, recovery[0])),
    InvalidMfa,
  );
  await auth.removeMfa(user.password, recovery[1]);
  assert.match((await auth.login(user.username, user.password)).token, /^[0-9a-f]{64}$/);
});
