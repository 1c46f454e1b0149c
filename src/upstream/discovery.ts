/**
 * @module DNS discovery: a target whose host is a name (not an IP) is resolved every `resolveEvery` and each
 * A/AAAA address becomes a target. Until the first answer the name itself is used (the OS resolves it at
 * connect), so a pool is never empty at start. A failed or empty lookup keeps the last good answer.
 */
import { promises as dns } from 'node:dns';
import net from 'node:net';
import { discoveredAddress, type TargetAddress } from './target.ts';

export type LookupAll = (host: string) => Promise<readonly { readonly address: string }[]>;

export const systemLookup: LookupAll = (host) => dns.lookup(host, { all: true });

/** One configured target and what it currently stands for. */
export interface Source {
  readonly address: TargetAddress;
  readonly weight: number;
  /** Set when the host is a name to resolve. */
  readonly hostname: string | undefined;
  resolved: readonly TargetAddress[] | undefined;
}

export function needsLookup(address: TargetAddress): boolean {
  return net.isIP(address.host) === 0;
}

export class Discovery {
  readonly #sources: readonly Source[];
  readonly #lookup: LookupAll;
  readonly #every: number;
  readonly #onChange: () => void;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #running: Promise<void> | undefined;
  /** Lookups that failed or came back empty (a counter for metrics). */
  failures = 0;

  constructor(sources: readonly Source[], every: number, lookup: LookupAll, onChange: () => void) {
    this.#sources = sources.filter((s) => s.hostname !== undefined);
    this.#every = every;
    this.#lookup = lookup;
    this.#onChange = onChange;
  }

  start(): void {
    if (this.#sources.length === 0) return;
    void this.resolveNow();
    this.#timer = setInterval(() => void this.resolveNow(), this.#every);
    this.#timer.unref();
  }

  /** Resolves every name once; calls onChange when any answer differs from the last. Calls while one runs share it. */
  resolveNow(): Promise<void> {
    this.#running ??= this.#resolveAll().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #resolveAll(): Promise<void> {
    const answers = await Promise.all(this.#sources.map((s) => this.#resolve(s)));
    if (this.#closed) return;
    let changed = false;
    this.#sources.forEach((s, i) => {
      const next = answers[i];
      if (next === undefined || sameKeys(s.resolved, next)) return;
      s.resolved = next;
      changed = true;
    });
    if (changed) this.#onChange();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }

  async #resolve(source: Source): Promise<TargetAddress[] | undefined> {
    try {
      const records = await this.#lookup(source.hostname!);
      if (records.length === 0) {
        this.failures++;
        return undefined;
      }
      const seen = new Set<string>();
      const out: TargetAddress[] = [];
      for (const r of records) {
        const a = discoveredAddress(source.address, r.address);
        if (seen.has(a.key)) continue;
        seen.add(a.key);
        out.push(a);
      }
      return out.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
    } catch {
      this.failures++;
      return undefined;
    }
  }
}

function sameKeys(a: readonly TargetAddress[] | undefined, b: readonly TargetAddress[]): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.key !== b[i]!.key) return false;
  return true;
}
