/** The control plane's access decision: what the web server, the gateway and the config wiring import. */
export { AccessControl, OPEN_PRINCIPAL } from './AccessControl.js';
export type { AccessControlEvents, AuthFailureReason, AuthRefusal, AuthRequest, AuthResult, LoginFailure, Principal } from './AccessControl.js';
export { basicCredentials, maskTokenParameter, parseAuthorization, parseToken } from './credentials.js';
export type { Credentials } from './credentials.js';
export { rightsChange } from './diff.js';
export type { RightsChange } from './diff.js';
export { originAllowed, parseOriginPolicy, SAME_ORIGIN_ONLY, whepCorsHeaders, whepPreflight } from './origin.js';
export type { CorsDecision, OriginPolicy, OriginRequest, PreflightRequest } from './origin.js';
export { hashPassword, parsePasswordHash, verifyPassword } from './passwordHash.js';
export { DEFAULT_RATE_LIMIT, RateLimiter } from './RateLimiter.js';
export type { RateLimitSettings } from './RateLimiter.js';
export { ACTIONS, grants, parseRights } from './rights.js';
export type { Action, Rights } from './rights.js';
export { mountsLosingAccess, rtspAuthSpec } from './rtspSpec.js';
export { AUTH_KEY, parseAuthSettings } from './settings.js';
export type { AuthSettings, JwtSettings, ResolvedAuth, UserSettings } from './settings.js';
export { TokenRejectedError, TokenVerifier } from './TokenVerifier.js';
