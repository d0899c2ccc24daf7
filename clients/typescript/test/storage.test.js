// The token storages: memory, localStorage, and one of the caller's own, asynchronous.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";

import { AuthClient, LocalStorageTokenStorage, MemoryTokenStorage } from "../dist/index.js";
import { ALICE, AUTH } from "./support.js";

/** localStorage as a browser has it (Node 20 has none): strings under keys. */
class FakeWebStorage {
  items = new Map();
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

/** A store that answers later, as cookies behind a server or a device's secure storage do. */
class SlowStorage {
  token = null;
  async get() {
    await sleep(5);
    return this.token;
  }
  async set(token) {
    await sleep(5);
    this.token = token;
  }
  async clear() {
    await sleep(5);
    this.token = null;
  }
}

/** Log in, read the profile, log out, with `storage`; what the storage held after login. */
async function roundTrip(storage) {
  const auth = new AuthClient({ baseUrl: AUTH, storage });
  const session = await auth.login(ALICE.username, ALICE.password);
  const stored = await storage.get();
  assert.equal(stored, session.token);
  assert.equal((await auth.profile()).username, "alice");
  await auth.logout();
  assert.equal(await storage.get(), null);
  return stored;
}

test("MemoryTokenStorage keeps one token until cleared", async () => {
  const storage = new MemoryTokenStorage();
  assert.equal(storage.get(), null);
  storage.set("a");
  storage.set("b");
  assert.equal(storage.get(), "b");
  storage.clear();
  assert.equal(storage.get(), null);
  await roundTrip(new MemoryTokenStorage());
});

test("LocalStorageTokenStorage keeps the token under its key", async () => {
  const web = new FakeWebStorage();
  const storage = new LocalStorageTokenStorage(undefined, web);
  assert.equal(storage.key, "eqeqo-auth-token");

  const token = await roundTrip(storage);

  assert.match(token, /^[0-9a-f]{64}$/);
  assert.equal(web.getItem("eqeqo-auth-token"), null, "logout removes it");
});

test("LocalStorageTokenStorage shares the token with another client of the same storage, as tabs do", async () => {
  const web = new FakeWebStorage();
  const first = new AuthClient({ baseUrl: AUTH, storage: new LocalStorageTokenStorage("shop", web) });
  const second = new AuthClient({ baseUrl: AUTH, storage: new LocalStorageTokenStorage("shop", web) });
  const session = await first.login(ALICE.username, ALICE.password);
  assert.equal(web.getItem("shop"), session.token);
  assert.equal((await second.profile()).username, "alice");
  await second.logout();
  assert.equal(await first.storage.get(), null);
});

const hasLocalStorage = globalThis.localStorage !== undefined; // Node 22 and later may have one
test("LocalStorageTokenStorage says so where there is no localStorage", { skip: hasLocalStorage }, () => {
  assert.throws(() => new LocalStorageTokenStorage(), /no localStorage/);
});

test("a storage of the caller's own may answer asynchronously", async () => {
  await roundTrip(new SlowStorage());
});
