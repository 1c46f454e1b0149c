/**
 * @module The certificates of one `https` listener, swapped without a restart.
 *
 * Certificate, key and client-CA files named by path are polled (`fs.watchFile`, one stat a second, which
 * also sees files replaced by rename, as cert-manager and certbot do). A change is debounced, then the whole
 * set is read again; only a set that loads completely replaces the current one, so a half-written file never
 * breaks the listener. Live connections keep the context they shook hands with; new handshakes get the new one.
 * A config reload calls `update()` with the listener's new `tls` block.
 */
import { type StatWatcher, unwatchFile, watchFile } from 'node:fs';
import type { SecureContext, Server as TlsServer } from 'node:tls';
import { flushLogger, type Logger } from '../../observe/logger.ts';
import { type ListenerTlsConfig, type LoadedCertificates, loadCertificates } from './certificates.ts';

const POLL_MS = 1000;
const DEBOUNCE_MS = 250;

export interface CertStoreOptions {
  readonly listener: string;
  /** Directory relative certificate paths are read from (default: the working directory). */
  readonly baseDir: string | undefined;
  readonly logger: Logger;
}

export class CertStore {
  readonly #options: CertStoreOptions;
  #config: ListenerTlsConfig;
  #loaded: LoadedCertificates;
  #server: TlsServer | undefined = undefined;
  readonly #watched = new Map<string, StatWatcher | true>();
  #timer: NodeJS.Timeout | undefined = undefined;
  /** Successful reloads from file changes (tests and logs). */
  reloads = 0;

  /** Loads the certificates now; throws when any is missing or broken. */
  constructor(config: ListenerTlsConfig, options: CertStoreOptions) {
    this.#options = options;
    this.#config = config;
    this.#loaded = loadCertificates(config, options.baseDir);
    this.#watch();
  }

  /** Options for `tls.createServer` / `setSecureContext`: the default certificate and the client CA. */
  get defaultOptions(): LoadedCertificates['defaultOptions'] {
    return this.#loaded.defaultOptions;
  }

  get names(): readonly (readonly string[])[] {
    return this.#loaded.names;
  }

  /** `SNICallback` for the TLS server: the context for the server name, or the default one. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.#loaded.contexts.match(servername));
  };

  /** The server whose default context follows this store (no SNI → `setSecureContext`). */
  attach(server: TlsServer): void {
    this.#server = server;
  }

  /**
   * A config reload, phase one: loads the new `tls` block now (throws, changing nothing, when it does not
   * load) and returns phase two, which puts it in use. Two phases let a reload touching several listeners
   * fail whole.
   */
  prepare(config: ListenerTlsConfig): () => void {
    const loaded = loadCertificates(config, this.#options.baseDir);
    return () => {
      this.#config = config;
      this.#swap(loaded);
      this.#watch();
    };
  }

  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const path of this.#watched.keys()) unwatchFile(path, this.#onFileChange);
    this.#watched.clear();
  }

  #swap(loaded: LoadedCertificates): void {
    this.#loaded = loaded;
    this.#server?.setSecureContext(loaded.defaultOptions);
  }

  #watch(): void {
    const wanted = new Set(this.#loaded.files);
    for (const path of this.#watched.keys()) {
      if (!wanted.has(path)) {
        unwatchFile(path, this.#onFileChange);
        this.#watched.delete(path);
      }
    }
    for (const path of wanted) {
      if (this.#watched.has(path)) continue;
      const watcher = watchFile(path, { interval: POLL_MS, persistent: false }, this.#onFileChange);
      this.#watched.set(path, watcher ?? true);
    }
  }

  readonly #onFileChange = (curr: { mtimeMs: number; size: number }, prev: { mtimeMs: number; size: number }): void => {
    if (curr.mtimeMs === prev.mtimeMs && curr.size === prev.size) return;
    // Writers often replace cert and key one after the other: wait for both before reloading.
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#reloadFromFiles(), DEBOUNCE_MS);
    this.#timer.unref();
  };

  #reloadFromFiles(): void {
    this.#timer = undefined;
    const log = this.#options.logger;
    try {
      this.#swap(loadCertificates(this.#config, this.#options.baseDir));
      this.reloads++;
      log.info({ msg: 'certificates reloaded', listener: this.#options.listener, names: this.#loaded.names });
      flushLogger(log);
    } catch (err) {
      // A file caught mid-write, or a key that no longer matches: keep serving the last good set.
      log.warn({
        msg: 'certificate reload failed; keeping the current certificates',
        listener: this.#options.listener,
        error: (err as Error).message,
      });
    }
  }
}
