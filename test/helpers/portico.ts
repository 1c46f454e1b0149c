/**
 * @module Runs the real `portico` command as a child process for end-to-end tests.
 *
 * Configs use port 0; the bound ports are read from the `started` log line. Every process is killed in
 * `t.after` by the caller (`await p.stop()`), so a failing test leaves nothing behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = new URL('../../bin/portico.mjs', import.meta.url).pathname;

export interface LogLine {
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export class PorticoProcess {
  readonly child: ChildProcess;
  readonly configPath: string;
  readonly lines: LogLine[] = [];
  stderr = '';
  ports: Record<string, number> = {};
  #waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  #exit: Promise<number>;

  constructor(child: ChildProcess, configPath: string) {
    this.child = child;
    this.configPath = configPath;
    let buffered = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffered += chunk;
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf('\n');
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { msg: 'raw', text };
        }
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.match(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.#exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 0)));
    });
  }

  /** Base URL of an HTTP listener. */
  url(listener = 'web'): string {
    return `http://127.0.0.1:${this.port(listener)}`;
  }

  port(listener = 'web'): number {
    const p = this.ports[listener];
    if (p === undefined) throw new Error(`no listener ${listener} (have ${Object.keys(this.ports).join(', ')})`);
    return p;
  }

  /** Resolves with the first log line (already seen or future) that matches; rejects after `ms`. */
  waitFor(match: (l: LogLine) => boolean, ms = 30_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a log line; stderr: ${this.stderr}`)), ms);
      this.#waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** Access-log lines (msg "request"). */
  accessLog(): LogLine[] {
    return this.lines.filter((l) => l.msg === 'request');
  }

  /** Writes a new config and sends SIGHUP; resolves with the "reloaded" or "reload failed" line. */
  async reload(yaml: string): Promise<LogLine> {
    const before = this.lines.length;
    await writeFile(this.configPath, yaml);
    this.child.kill('SIGHUP');
    const line = await this.waitFor(
      (l) => this.lines.indexOf(l) >= before && (l.msg === 'reloaded' || String(l.msg).startsWith('reload failed')),
    );
    if (line.msg === 'reloaded') this.ports = line.listeners as Record<string, number>;
    return line;
  }

  exited(): Promise<number> {
    return this.#exit;
  }

  /** Graceful stop (SIGTERM), then SIGKILL if it lingers. Returns the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 20_000): Promise<number> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.#exit;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    const code = await this.#exit;
    clearTimeout(timer);
    return code;
  }
}

/** Writes `yaml` to a temporary portico.yaml and starts `portico start` on it; waits until it listens. */
export async function startPortico(
  yaml: string,
  options: { env?: Record<string, string>; args?: string[]; dir?: string } = {},
): Promise<PorticoProcess> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'portico-e2e-')));
  const configPath = join(dir, 'portico.yaml');
  await writeFile(configPath, yaml);
  const child = spawn(process.execPath, [BIN, 'start', '-c', configPath, ...(options.args ?? [])], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = new PorticoProcess(child, configPath);
  const started = await Promise.race([
    p.waitFor((l) => l.msg === 'started'),
    p.exited().then((code) => {
      throw new Error(`portico exited with ${code} before starting: ${p.stderr}`);
    }),
  ]);
  p.ports = started.listeners as Record<string, number>;
  return p;
}

/** Runs `portico <args>` to completion; returns exit code, stdout and stderr. */
export async function runPortico(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...options.env },
    cwd: options.cwd,
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (options.input !== undefined) child.stdin!.end(options.input);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}
