/**
 * @module A pass-through stream that copies a response body into a bounded buffer while it streams to the
 * client. Over the limit it drops what it holds and keeps streaming; the client never waits for the cache.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** Receives the captured body once: a Buffer when complete, undefined when abandoned, errored or too big. */
export interface CaptureSink {
  finishCapture(body: Buffer | undefined): void;
}

export class CaptureStream extends Transform {
  #chunks: Buffer[] | undefined = [];
  #size = 0;
  #sink: CaptureSink | undefined;
  readonly #max: number;

  constructor(maxBytes: number, sink: CaptureSink) {
    super();
    this.#max = maxBytes;
    this.#sink = sink;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const chunks = this.#chunks;
    if (chunks !== undefined) {
      this.#size += chunk.length;
      // Too big to store: say so now, so requests coalesced behind this one go upstream at once.
      if (this.#size > this.#max) this.#settle(undefined);
      else chunks.push(chunk);
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const chunks = this.#chunks;
    this.#settle(chunks === undefined ? undefined : Buffer.concat(chunks, this.#size));
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed before the end (client gone, upstream reset): the body is incomplete.
    this.#settle(undefined);
    callback(err);
  }

  #settle(body: Buffer | undefined): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    this.#sink = undefined;
    this.#chunks = undefined;
    sink.finishCapture(body);
  }
}
