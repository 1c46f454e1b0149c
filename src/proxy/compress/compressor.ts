/**
 * @module Streaming compressors from node:zlib for the negotiated encoding. With `flushEachWrite` every
 * upstream chunk is flushed through at once (streams without a known length: events, long polls); otherwise
 * zlib buffers for the best ratio and flushes at the end.
 */
import type { Transform } from 'node:stream';
import { constants, createBrotliCompress, createGzip, createZstdCompress } from 'node:zlib';
import type { CompressOptions } from './options.ts';
import type { Encoding } from './schema.ts';

export function createCompressor(encoding: Encoding, options: CompressOptions, flushEachWrite = false): Transform {
  const level = options.level[encoding];
  switch (encoding) {
    case 'gzip':
      return createGzip({ level, flush: flushEachWrite ? constants.Z_SYNC_FLUSH : constants.Z_NO_FLUSH });
    case 'br':
      return createBrotliCompress({
        flush: flushEachWrite ? constants.BROTLI_OPERATION_FLUSH : constants.BROTLI_OPERATION_PROCESS,
        params: { [constants.BROTLI_PARAM_QUALITY]: level, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT },
      });
    case 'zstd':
      return createZstdCompress({
        flush: flushEachWrite ? constants.ZSTD_e_flush : constants.ZSTD_e_continue,
        params: { [constants.ZSTD_c_compressionLevel]: level },
      });
  }
}
