/**
 * @module Diagnostic preload for a benchmarked Node process
 * (`PORTICO_NODE_FLAGS="--import ./bench/lib/memwatch.ts"`): writes `process.memoryUsage()` in MiB to stderr
 * once a second, to tell heap growth from buffers and code.
 */
const mib = (n: number): number => Math.round(n / 1048576);

setInterval(() => {
  const m = process.memoryUsage();
  process.stderr.write(
    `memwatch rss=${mib(m.rss)} heapTotal=${mib(m.heapTotal)} heapUsed=${mib(m.heapUsed)} external=${mib(m.external)} arrayBuffers=${mib(m.arrayBuffers)}\n`,
  );
}, 1000).unref();
