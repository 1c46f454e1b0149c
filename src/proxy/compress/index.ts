/** @module Response compression: negotiation, eligibility, header changes and streaming compressors. */
export { createCompressor } from './compressor.ts';
export {
  addVary,
  isCompressibleType,
  prepareHeaders,
  prepareValidators,
  type ResponseHeaders,
  shouldCompress,
  wouldCompressFull,
} from './headers.ts';
export { negotiate, parseQValues } from './negotiate.ts';
export { type CompressOptions, compileCompressOptions } from './options.ts';
export { DEFAULT_TYPES, ENCODINGS, type Encoding, type RouteCompressConfig, routeCompress } from './schema.ts';
