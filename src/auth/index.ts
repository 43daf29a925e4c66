/** Public API of the authentication building blocks (SPEC §2); the server wires them together. */
export { registerAuthAdminRoutes, type AuthAdminRoutesOptions } from './admin-routes.js';
export {
  BruteForceGuard,
  DEFAULT_BRUTE_FORCE_POLICY,
  type BruteForceGuardOptions,
  type BruteForcePolicy,
  type CheckResult,
  type TrackedClient,
} from './brute-force.js';
export { BypassMatcher, DEFAULT_BYPASS_PATHS, isCanonicalPath, isCorsPreflight } from './bypass.js';
export { CidrMatcher, clientKeyFor, compileTrustProxy, normalizeClientKey } from './client-address.js';
export { extractCredential, type CredentialSource, type PresentedCredential } from './credentials.js';
export {
  BLOCKED_MESSAGE,
  TRUSTED_IP_KEY_NAME,
  createAuthGate,
  registerAuthDecorations,
  type AuthEvents,
  type AuthFailureReason,
  type AuthGateOptions,
  type AuthLogger,
} from './gate.js';
export { KeySet, generateProxyKey, hashKey, parseKeysFile, type KeyEntry } from './keys.js';
export { MemoryBruteForceStore } from './stores/memory.js';
export type { BruteForceStore, FailureOutcome, FailureRecord } from './stores/types.js';
