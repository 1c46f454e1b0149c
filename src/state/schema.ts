/** @module Config schema of shared state: `memory` (default) or `redis`. */
import { z } from 'zod';

export const stateConfig = z.discriminatedUnion('store', [
  z.strictObject({ store: z.literal('memory') }),
  z.strictObject({ store: z.literal('redis'), url: z.string() }),
]);
