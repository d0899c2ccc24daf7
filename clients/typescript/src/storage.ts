/**
 * Where the client keeps the token between calls. Each method may return a promise, so a
 * store can be a cookie, a device's secure storage or a server-side session as well.
 */
export interface TokenStorage {
  get(): string | null | Promise<string | null>;
  set(token: string): void | Promise<void>;
  clear(): void | Promise<void>;
}

/** Keeps the token in this object: gone when the page reloads or the process ends. */
export class MemoryTokenStorage implements TokenStorage {
  #token: string | null = null;

  get(): string | null {
    return this.#token;
  }

  set(token: string): void {
    this.#token = token;
  }

  clear(): void {
    this.#token = null;
  }
}

/** The part of the Web Storage API a token needs: `localStorage`, `sessionStorage`, or a stand-in. */
export interface WebStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Keeps the token in `localStorage` under `key`, so a reload or another tab of the same
 * origin stays logged in. Pass `sessionStorage` to forget it when the tab closes.
 */
export class LocalStorageTokenStorage implements TokenStorage {
  readonly key: string;
  readonly #storage: WebStorage;

  constructor(key = "eqeqo-auth-token", storage: WebStorage | undefined = globalThis.localStorage) {
    if (!storage) {
      throw new TypeError("no localStorage in this runtime: pass a storage, or use MemoryTokenStorage");
    }
    this.key = key;
    this.#storage = storage;
  }

  get(): string | null {
    return this.#storage.getItem(this.key);
  }

  set(token: string): void {
    this.#storage.setItem(this.key, token);
  }

  clear(): void {
    this.#storage.removeItem(this.key);
  }
}
