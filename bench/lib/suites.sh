# shellcheck shell=bash
# @module Benchmark suites. A suite starts what it needs, calls `measure` for each row, and stops its servers.
# bench/run.sh runs the suites named in SUITES (default: http). To add one, write `suite_<name>` here and
# name it in SUITES; rows land in the same report, one table per suite.

# Plain HTTP/1.1 proxying: direct (origin), Portico and each peer, for GET 1 KiB, GET 100 KiB and POST 16 KiB.
# One target runs at a time, so nothing else sits on the proxy's core.
suite_http() {
  local target scenario
  for target in $TARGETS; do
    log "target $target"
    start_target "$target"
    for scenario in $SCENARIOS; do
      measure http "$scenario" "$target" "$PID" "$PORT"
    done
    stop_target "$target"
  done
}

# Hooks for the later issues. Each says what it waits for, so a run that names it fails loudly rather than
# silently measuring nothing.

# Issue 3: L4 throughput (large transfer MB/s, short connections/s) through a `tcp` listener vs direct.
suite_l4() { not_yet l4 "a TCP load generator for MB/s and connections/s (the tcp listener exists)"; }

# Issue 3: L7 least-request over 3 targets vs a single target (target: at most +5% CPU per request).
suite_balance() { not_yet balance "three origins and a least-request upstream config"; }

# Issue 4: HTTPS with h2 (h2load) and cache hits, Portico vs nginx. Needs listener TLS and route cache in
# src/config/schema.ts (absent when this was written).
suite_h2() { not_yet h2 "listener tls settings in the config schema"; }
suite_cache() { not_yet cache "route cache settings in the config schema"; }

# Issue 5: GET 1 KiB through api-key + rate-limit (memory, then redis) + a header transform vs plain proxying.
suite_gateway() { not_yet gateway "the policy chain config for api-key, rate-limit and transform"; }

not_yet() { die "suite '$1' is not implemented yet: it needs $2"; }
