/** Errors for the answers of the Eqeqo Auth API, one class per case a caller handles. */

export interface AuthErrorOptions {
  /** The HTTP status, or null when no answer came. */
  status?: number | null;
  /** The contract's error code, such as `invalid_token`. */
  code?: string | null;
  /** For input errors: what is wrong with each field. */
  fields?: Record<string, string>;
  cause?: unknown;
}

/** The auth service refused a call, or could not be asked. */
export class AuthError extends Error {
  override name = "AuthError";
  readonly status: number | null;
  readonly code: string | null;
  readonly fields: Record<string, string>;

  constructor(message: string, options: AuthErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.status = options.status ?? null;
    this.code = options.code ?? null;
    this.fields = options.fields ?? {};
  }
}

/** 400 `validation_error` or `invalid_json`: `fields` names what is wrong with each input. */
export class ValidationError extends AuthError {
  override name = "ValidationError";
}

/** 400 `invalid_reset_code`: the reset code is unknown, used or expired. */
export class InvalidResetCode extends ValidationError {
  override name = "InvalidResetCode";
}

/** 401 `invalid_credentials`: wrong login or password, or a disabled account (not told apart). */
export class InvalidCredentials extends AuthError {
  override name = "InvalidCredentials";
}

/** 401 `invalid_token` or `missing_token`: the session is over; log in again. */
export class InvalidToken extends AuthError {
  override name = "InvalidToken";
}

/** 403 `forbidden`: the token is live but gives no access there (`mfa_enrolment_required`: enrol a second factor first). */
export class Forbidden extends AuthError {
  override name = "Forbidden";
}

/** 401 `invalid_mfa_code` (wrong or used code: ask again) or `invalid_mfa_token` (log in again). */
export class InvalidMfa extends AuthError {
  override name = "InvalidMfa";
}

/**
 * Thrown by `login` when the password was right and a second factor is needed: show a code
 * field, then call `loginMfa(error.mfaToken, code)` within `expiresIn` seconds.
 */
export class MfaRequired extends AuthError {
  override name = "MfaRequired";
  readonly mfaToken: string;
  readonly expiresIn: number;

  constructor(mfaToken: string, expiresIn: number) {
    super("a second factor is required", { status: 200, code: "mfa_required" });
    this.mfaToken = mfaToken;
    this.expiresIn = expiresIn;
  }
}

/** 429 `too_many_attempts`: the account or address is locked for `retryAfter` seconds. */
export class TooManyAttempts extends AuthError {
  override name = "TooManyAttempts";
  readonly retryAfter: number | null;

  constructor(message: string, options: AuthErrorOptions & { retryAfter?: number | null } = {}) {
    super(message, options);
    this.retryAfter = options.retryAfter ?? null;
  }
}

/** 503 `service_unavailable`, any 5xx, no answer at all (network, CORS, timeout), or an answer outside the contract. */
export class ServiceUnavailable extends AuthError {
  override name = "ServiceUnavailable";
}

const BY_CODE: Record<string, typeof AuthError> = {
  invalid_json: ValidationError,
  validation_error: ValidationError,
  invalid_reset_code: InvalidResetCode,
  invalid_credentials: InvalidCredentials,
  missing_token: InvalidToken,
  invalid_token: InvalidToken,
  forbidden: Forbidden,
  mfa_enrolment_required: Forbidden,
  invalid_mfa_code: InvalidMfa,
  invalid_mfa_token: InvalidMfa,
};

// Backends in front of other services may answer without one of the codes above.
const BY_STATUS: Record<number, typeof AuthError> = {
  400: ValidationError,
  401: InvalidToken,
  403: Forbidden,
};

/**
 * The error matching an error answer of the auth service, or of a backend that answers in
 * the same shape: `if (!response.ok) throw await errorFromResponse(response)`.
 */
export async function errorFromResponse(response: Response): Promise<AuthError> {
  const body: unknown = await response.json().catch(() => null);
  const answer = isObject(body) ? body : {};
  const status = response.status;
  const code = typeof answer.error === "string" ? answer.error : null;
  const message = typeof answer.message === "string" ? answer.message : (code ?? `HTTP ${status}`);
  const fields = isObject(answer.fields) ? (answer.fields as Record<string, string>) : {};
  if (status >= 500) {
    return new ServiceUnavailable(message, { status, code });
  }
  if (code === "too_many_attempts" || status === 429) {
    const retryAfter = secondsUntil(response.headers.get("Retry-After"));
    return new TooManyAttempts(message, { status, code, retryAfter });
  }
  const ErrorClass = (code && BY_CODE[code]) || BY_STATUS[status] || AuthError;
  return new ErrorClass(message, { status, code, fields });
}

/** Retry-After, which RFC 9110 allows as seconds or as an HTTP date, in seconds. */
function secondsUntil(retryAfter: string | null): number | null {
  if (!retryAfter) {
    return null;
  }
  if (/^\s*\d+\s*$/.test(retryAfter)) {
    return Number(retryAfter);
  }
  const when = Date.parse(retryAfter);
  return Number.isNaN(when) ? null : Math.max(0, Math.round((when - Date.now()) / 1000));
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
