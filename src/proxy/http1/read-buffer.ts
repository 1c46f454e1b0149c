/**
 * @module One connection's reusable read buffer (`net.connect`'s `onread`), for plain-TCP upstream connections.
 *
 * Node gives every socket read a fresh 64 KiB allocation, which lives until a garbage collection finds it.
 * At proxy rates that is the largest allocation of a request: over a gigabyte a second of external memory for
 * 100 KiB responses, which drives V8 into frequent full collections and the malloc heap into fragments. A
 * connection that reads into one buffer of its own allocates nothing per read. The price is a rule: a view
 * of this buffer is valid only until the connection's next read, so whoever keeps one past its callback
 * calls `keep()`, and the connection's later reads go to a new buffer (connection.ts `onDataView`).
 */

/** Large enough for a 64 KiB read, as Node's own reads (fewer system calls for large bodies). */
const READ_BUFFER_SIZE = 65536;

export class ReadBuffer {
  #current: Buffer | undefined = undefined;

  /** Node's `onread.buffer`: asked before the first read and after each one (called without `this`). */
  readonly next = (): Buffer => {
    this.#current ??= Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
    return this.#current;
  };

  /** Leaves the current buffer to whoever holds views of it; the next read goes to a new one. */
  readonly keep = (): void => {
    this.#current = undefined;
  };
}
