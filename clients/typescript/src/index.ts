export {
  AuthClient,
  DEFAULT_BASE_URL,
  type AuthClientOptions,
  type MfaEnrolment,
  type Profile,
  type ServiceAccess,
  type Session,
} from "./client.js";
export {
  AuthError,
  Forbidden,
  InvalidCredentials,
  InvalidMfa,
  InvalidResetCode,
  InvalidToken,
  MfaRequired,
  ServiceUnavailable,
  TooManyAttempts,
  ValidationError,
  errorFromResponse,
  type AuthErrorOptions,
} from "./errors.js";
export { LocalStorageTokenStorage, MemoryTokenStorage, type TokenStorage, type WebStorage } from "./storage.js";
