/** @module Config schema of a route's `compress` option: `true` for the defaults, or an object. */
import { z } from 'zod';
import { size } from '../../config/primitives.ts';

export const ENCODINGS = ['zstd', 'br', 'gzip'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** Media types worth compressing; `type/*` and `type/*+suffix` patterns are allowed. */
export const DEFAULT_TYPES: readonly string[] = [
  'text/*',
  'application/json',
  'application/*+json',
  'application/javascript',
  'application/x-javascript',
  'application/ecmascript',
  'application/xml',
  'application/*+xml',
  'application/wasm',
  'application/vnd.ms-fontobject',
  'image/svg+xml',
  'image/x-icon',
  'image/bmp',
  'font/ttf',
  'font/otf',
];

const typePattern = z
  .string()
  .regex(
    /^[a-z0-9!#$&^_.+-]+\/(\*|\*\+[a-z0-9!#$&^_.+-]+|[a-z0-9!#$&^_.+-]+)$/,
    'expected a media type such as text/* or application/json',
  );

const level = z
  .strictObject({
    gzip: z.number().int().min(1).max(9).default(6).meta({ description: 'gzip level 1-9' }),
    br: z.number().int().min(0).max(11).default(4).meta({ description: 'Brotli quality 0-11 (4-5: fast, good)' }),
    zstd: z.number().int().min(1).max(22).default(3).meta({ description: 'zstd level 1-22' }),
  })
  .meta({ description: 'Compression level per encoding: higher is smaller and slower' });

const compressObject = z.strictObject({
  encodings: z
    .array(z.enum(ENCODINGS))
    .min(1)
    .default([...ENCODINGS])
    .meta({ description: 'Encodings offered, in server preference order (used to break q-value ties)' }),
  minSize: size.default(1024).meta({ description: 'Responses with a smaller Content-Length are sent as is' }),
  types: z
    .array(typePattern)
    .min(1)
    .default([...DEFAULT_TYPES])
    .meta({ description: 'Content types compressed' }),
  level: level.default(level.parse({})),
});

export const routeCompress = z
  .union([z.literal(true), compressObject])
  .transform((v) => (v === true ? compressObject.parse({}) : v))
  .meta({ description: 'Compress responses (gzip, br, zstd) negotiated by Accept-Encoding' });

export type RouteCompressConfig = z.output<typeof compressObject>;
