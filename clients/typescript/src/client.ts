import { InvalidToken, MfaRequired, ServiceUnavailable, errorFromResponse, isObject } from "./errors.js";
import { MemoryTokenStorage, type TokenStorage } from "./storage.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:7878";
// A login screen should say "cannot reach the service" rather than spin for ever.
const DEFAULT_TIMEOUT_MS = 10_000;

export interface AuthClientOptions {
  /** The auth service, e.g. `https://auth.example`. */
  baseUrl?: string;
  /** Where the token lives between calls; a MemoryTokenStorage by default. */
  storage?: TokenStorage;
  /** A fetch of your own (instrumented, or for a runtime without one); the global fetch by default. */
  fetchFn?: typeof fetch;
  /** Origins (`https://stock.example`) that `authFetch` sends the token to, besides the auth service's own. */
  tokenOrigins?: string[];
  /** Called once when a 401 ends the stored session: show the login screen. */
  onUnauthorized?: () => void;
  /** How long each call of the client's own methods may take, in milliseconds. */
  timeoutMs?: number;
}

/** A login's answer. `expiresAt` is in Unix seconds. */
export interface Session {
  token: string;
  expiresAt: number;
  expiresIn: number;
  userId: number;
  username: string;
  name: string | null;
  /** The session is good only for enrolling a second factor (the service requires one of this user). */
  mfaEnrolmentRequired: boolean;
}

/** A second factor being enrolled: the secret for an authenticator app, and its otpauth:// URI for a QR code. */
export interface MfaEnrolment {
  secret: string;
  otpauthUri: string;
}

/** The roles and permissions of the user in one service. */
export interface ServiceAccess {
  serviceId: number;
  service: string;
  roles: string[];
  permissions: string[];
}

/** Who the token belongs to, and what they hold where. */
export interface Profile {
  userId: number;
  username: string;
  name: string | null;
  email: string | null;
  services: ServiceAccess[];
  renewed: boolean;
  expiresAt: number;
  expiresIn: number;
}

type Body = Record<string, unknown>;

interface Call {
  method: string;
  path: string;
  json?: Body;
  token?: string;
}

/**
 * The Eqeqo Auth API for a frontend: login, logout, profile and passwords, a token kept in a
 * TokenStorage, and `authFetch` to send that token to the backends the frontend talks to.
 */
export class AuthClient {
  readonly baseUrl: string;
  readonly storage: TokenStorage;
  readonly #fetch: typeof fetch;
  readonly #tokenOrigins: Set<string>;
  readonly #onUnauthorized: (() => void) | undefined;
  readonly #timeoutMs: number;
  #expiresAt: number | null = null;
  #expiresIn: number | null = null;

  constructor(options: AuthClientOptions = {}) {
    if (!options.fetchFn && typeof fetch !== "function") {
      throw new TypeError("no global fetch in this runtime: pass fetchFn");
    }
    this.baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.storage = options.storage ?? new MemoryTokenStorage();
    // Called through a closure: browsers refuse a fetch detached from its window.
    this.#fetch = options.fetchFn ?? ((input, init) => fetch(input, init));
    const origins = [this.baseUrl, ...(options.tokenOrigins ?? [])];
    this.#tokenOrigins = new Set(origins.map((origin) => new URL(origin).origin));
    this.#onUnauthorized = options.onUnauthorized;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Unix seconds at which the token dies unless used, from the last answer that told; null when unknown. */
  get expiresAt(): number | null {
    return this.#expiresAt;
  }

  /** Seconds the token had left when the last answer that told was sent; null when unknown. */
  get expiresIn(): number | null {
    return this.#expiresIn;
  }

  /**
   * Log in by username or email; the token goes to the storage. For a user with a second
   * factor this throws MfaRequired: finish with `loginMfa(error.mfaToken, code)`.
   */
  async login(username: string, password: string): Promise<Session> {
    const body = await this.#call({ method: "POST", path: "/auth/login", json: { username, password } });
    if (body.mfa_required === true) {
      throw readAnswer(() => new MfaRequired(string(body.mfa_token), number(body.expires_in)));
    }
    return this.#keep(body);
  }

  /** The second step of a login: a code from the authenticator app, or a recovery code. */
  async loginMfa(mfaToken: string, code: string): Promise<Session> {
    const body = await this.#call({ method: "POST", path: "/auth/login/mfa", json: { mfa_token: mfaToken, code } });
    return this.#keep(body);
  }

  /** Start enrolling an authenticator app for the stored session's user. */
  async startMfaEnrolment(): Promise<MfaEnrolment> {
    const body = await this.#call({ method: "POST", path: "/auth/mfa/totp", token: await this.#token() });
    return readAnswer(() => ({ secret: string(body.secret), otpauthUri: string(body.otpauth_uri) }));
  }

  /** Activate it with one code from the app; resolves to the ten recovery codes, to show once. */
  async confirmMfaEnrolment(code: string): Promise<string[]> {
    const token = await this.#token();
    const body = await this.#call({ method: "POST", path: "/auth/mfa/totp/confirm", json: { code }, token });
    return readAnswer(() => strings(body.recovery_codes));
  }

  /** Remove the user's second factor, with the current password and a code. */
  async removeMfa(password: string, code: string): Promise<void> {
    const token = await this.#token();
    await this.#call({ method: "DELETE", path: "/auth/mfa/totp", json: { password, code }, token });
  }

  /** Read a login answer and keep its token. */
  async #keep(body: Body): Promise<Session> {
    const session = readAnswer(() => {
      const payload = object(body.payload);
      return {
        token: string(body.token),
        expiresAt: number(body.expires_at),
        expiresIn: number(body.expires_in),
        userId: number(payload.user_id),
        username: string(payload.username),
        name: nullable(string, payload.name),
        mfaEnrolmentRequired: body.mfa_enrolment_required === true,
      };
    });
    await this.storage.set(session.token);
    this.#expiresAt = session.expiresAt;
    this.#expiresIn = session.expiresIn;
    return session;
  }

  /**
   * Revoke the stored token and forget it. The local session ends even when the service
   * cannot be reached (the error is still thrown); without a stored token nothing is sent.
   */
  async logout(): Promise<void> {
    const token = await this.storage.get();
    try {
      if (token) {
        await this.#call({ method: "POST", path: "/auth/logout", token });
      }
    } finally {
      await this.#forget();
    }
  }

  /** Revoke every token of the user, on every device; returns how many were revoked. */
  async logoutAll(): Promise<number> {
    const body = await this.#call({ method: "POST", path: "/auth/logout-all", token: await this.#token() });
    await this.#forget();
    return readAnswer(() => number(body.revoked));
  }

  /** The token's user and their roles and permissions in every service; renews the token when due. */
  async profile(): Promise<Profile> {
    const body = await this.#call({ method: "GET", path: "/auth/profile", token: await this.#token() });
    const profile = readAnswer(() => {
      const payload = object(body.payload);
      if (!Array.isArray(payload.services)) {
        throw new TypeError("services is not a list");
      }
      return {
        userId: number(payload.user_id),
        username: string(payload.username),
        name: nullable(string, payload.name),
        email: nullable(string, payload.email),
        services: payload.services.map((entry) => {
          const access = object(entry);
          return {
            serviceId: number(access.service_id),
            service: string(access.service),
            roles: strings(access.roles),
            permissions: strings(access.permissions),
          };
        }),
        renewed: body.renewed === true,
        expiresAt: number(body.expires_at),
        expiresIn: number(body.expires_in),
      };
    });
    this.#expiresAt = profile.expiresAt;
    this.#expiresIn = profile.expiresIn;
    return profile;
  }

  /** Ask for a reset code by mail, by username or email; the answer never tells whether the account exists. */
  async forgotPassword(login: string): Promise<void> {
    await this.#call({ method: "POST", path: "/auth/password/forgot", json: { username: login } });
  }

  /** Set a new password with a mailed code; every token of the user is revoked. */
  async resetPassword(code: string, password: string): Promise<void> {
    await this.#call({ method: "POST", path: "/auth/password/reset", json: { code, password } });
  }

  /** Change the user's password; the stored token stays, every other one is revoked (their count is returned). */
  async changePassword(current: string, next: string): Promise<number> {
    const body = await this.#call({
      method: "PUT",
      path: "/auth/password",
      token: await this.#token(),
      json: { current_password: current, new_password: next },
    });
    return readAnswer(() => number(body.revoked));
  }

  /**
   * fetch, with the stored token in the `token` header when the request goes to the auth
   * service or one of `tokenOrigins`, and to no other origin. A 401 to a request that
   * carried the token ends the session: the token is forgotten and `onUnauthorized` called.
   */
  async authFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init);
    const token = this.#tokenOrigins.has(new URL(request.url).origin) ? await this.storage.get() : null;
    if (!token) {
      return this.#fetch(request);
    }
    request.headers.set("token", token);
    const response = await this.#fetch(request);
    if (response.status === 401) {
      await this.#sessionEnded(token);
    }
    return response;
  }

  async #token(): Promise<string> {
    const token = await this.storage.get();
    if (!token) {
      throw new InvalidToken("not logged in: no token stored", { code: "missing_token" });
    }
    return token;
  }

  async #forget(): Promise<void> {
    await this.storage.clear();
    this.#expiresAt = null;
    this.#expiresIn = null;
  }

  /** Forget `token` and tell the caller, unless a newer login replaced it meanwhile. */
  async #sessionEnded(token: string): Promise<void> {
    if ((await this.storage.get()) === token) {
      await this.#forget();
      this.#onUnauthorized?.();
    }
  }

  /** Send one request; its JSON body, or the matching AuthError. */
  async #call({ method, path, json, token }: Call): Promise<Body> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (json) {
      headers["Content-Type"] = "application/json";
    }
    if (token) {
      headers.token = token;
    }
    const url = this.baseUrl + path;
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method,
        headers,
        body: json ? JSON.stringify(json) : undefined,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      // A browser says no more than "Failed to fetch" for a network or CORS failure.
      throw new ServiceUnavailable(`cannot reach the auth service at ${this.baseUrl}: ${String(error)}`, {
        cause: error,
      });
    }
    if (!response.ok) {
      const error = await errorFromResponse(response);
      if (token && error instanceof InvalidToken) {
        await this.#sessionEnded(token);
      }
      throw error;
    }
    const body: unknown = await response.json().catch(() => null);
    if (!isObject(body)) {
      throw new ServiceUnavailable(`${method} ${path} answered ${response.status} without a JSON object`, {
        status: response.status,
      });
    }
    return body;
  }
}

/** Read an answer; one outside the contract is ServiceUnavailable, like no answer at all. */
function readAnswer<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof TypeError)) {
      throw error;
    }
    throw new ServiceUnavailable(`unexpected answer from the auth service: ${error.message}`, { cause: error });
  }
}

function string(value: unknown): string {
  if (typeof value !== "string") {
    throw new TypeError(`expected a string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function number(value: unknown): number {
  if (typeof value !== "number") {
    throw new TypeError(`expected a number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function strings(value: unknown): string[] {
  if (!Array.isArray(value)) {
    throw new TypeError(`expected a list, got ${JSON.stringify(value)}`);
  }
  return value.map(string);
}

function object(value: unknown): Body {
  if (!isObject(value)) {
    throw new TypeError(`expected an object, got ${JSON.stringify(value)}`);
  }
  return value;
}

function nullable<T>(read: (value: unknown) => T, value: unknown): T | null {
  return value === null || value === undefined ? null : read(value);
}
