// What the tests share: the servers test/run.py started, fresh users, and the mailed reset codes.
import { createHmac, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

export const AUTH = process.env.AUTH_BASE_URL;
export const STOCK = process.env.STOCK_URL;
if (!AUTH || !STOCK) {
  throw new Error("AUTH_BASE_URL and STOCK_URL are not set: run these tests with make test-js");
}

export const ALICE = { username: "alice", email: "alice@example.com", password: "maple-harbor-17" };
const ADMIN = { username: "admin", password: "orchid-lantern-42" };

export function unique(prefix) {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** A password the service's policy accepts, and nobody else knows. */
export function newPassword() {
  return `${randomBytes(9).toString("base64url")}-meadow`;
}

async function json(path, { method = "POST", body, token } = {}) {
  const headers = { "Content-Type": "application/json", ...(token ? { token } : {}) };
  const response = await fetch(AUTH + path, { method, headers, body: JSON.stringify(body) });
  const answer = await response.json();
  if (!response.ok) {
    throw new Error(`${method} ${path} answered ${response.status}: ${JSON.stringify(answer)}`);
  }
  return answer;
}

/**
 * A user of this test alone, created as admin, for tests that change a password, revoke every
 * token or lock the account: the demo users stay as they are for the other tests.
 */
export async function createUser() {
  const admin = await json("/auth/login", { body: ADMIN });
  const username = unique("js");
  const user = { username, email: `${username}@example.com`, password: newPassword() };
  await json("/users", { token: admin.token, body: { ...user, name: "Test User" } });
  await json("/auth/logout", { token: admin.token });
  return user;
}

/** The code of the newest reset mail to `email`, read from the server's log, where mail goes in development. */
export async function resetCode(email, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  // Mail leaves in the background, so it may reach the log a little after the answer.
  while (Date.now() < deadline) {
    const log = await readFile(process.env.AUTH_SERVER_LOG, "utf8");
    const codes = log
      .split("\n")
      .map(parseLine)
      .filter((entry) => entry?.name === "auth.mail" && entry.message.includes(`\nTo: ${email}\n`))
      .map((entry) => /#code=([A-Za-z0-9_-]+)/.exec(entry.message)?.[1])
      .filter(Boolean);
    if (codes.length) {
      return codes.at(-1);
    }
    await sleep(100);
  }
  throw new Error(`no reset mail to ${email} in the server's log within ${timeoutMs} ms`);
}

function parseLine(line) {
  try {
    return JSON.parse(line);
  } catch {
    return null; // a line that is no log record, or one still being written
  }
}

/** A server on 127.0.0.1 that answers `handler`; close it with `await server.close()`. */
export async function listen(handler) {
  const server = createServer(handler);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

/** The global fetch, counting calls: `calls` holds each request's URL and method. */
export function countingFetch() {
  const calls = [];
  const fetchFn = (input, init) => {
    const request = new Request(input, init);
    calls.push({ url: request.url, method: request.method, token: request.headers.get("token") });
    return fetch(request);
  };
  return { fetchFn, calls };
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) of `secret` (base32) for the step `stepsBack` before
 * now, as an authenticator app shows it; never a moment before a step ends. */
export async function totp(secret, stepsBack = 0) {
  if (30 - ((Date.now() / 1000) % 30) < 1.5) {
    await sleep(1600);
  }
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of secret.replace(/=+$/, "")) {
    bits += alphabet.indexOf(char).toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) - stepsBack));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}
