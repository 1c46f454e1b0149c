/** @module Deep freezing of a loaded config, so no layer can change what another layer was built from. */

/** Freezes `value` and everything reachable from it; returns it typed as read-only. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}
