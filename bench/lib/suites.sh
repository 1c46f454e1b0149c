# shellcheck shell=bash
# @module Benchmark suites. A suite starts what it needs, calls `measure` for each row, and stops its servers.
# bench/run.sh runs the suites named in SUITES (default: http), ROUNDS times over. To add one, write
# `suite_<name>` here and name it in SUITES; rows land in the same report, one table per suite.

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

# Suites for the later issues (3: balance, l4; 4: h2, cache; 5: gateway).

# Issue 3: L4 through a `tcp` listener vs direct: 64 MiB downloads (MB/s) and one connection per request
# (connections/s; every request opens a client and an upstream connection).
suite_l4() {
  [[ -f $WORK/www/64m.bin ]] || head -c 67108864 /dev/zero >"$WORK/www/64m.bin"
  chmod a+r "$WORK/www/64m.bin"
  local target scenario
  for target in direct portico-l4; do
    log "target $target"
    if [[ $target == direct ]]; then
      PID=$ORIGIN_PID PORT=$ORIGIN_PORT
    else
      start_portico "$target" < <(portico_l4_config)
    fi
    for scenario in l4-large l4-close; do measure l4 "$scenario" "$target" "$PID" "$PORT"; done
    stop_target "$target"
  done
}

# Issue 3: L7 least-request over 3 targets vs a single target, GET 1 KiB (target: at most +5% CPU per request).
# Runs alternate (1, 3, 1, 3) so drift in the machine's load shows up as a spread, not as a difference.
suite_balance() {
  local round target
  for round in 1 2; do
    for target in portico-1-target portico-3-least-request; do
      log "target $target (round $round)"
      if [[ $target == portico-1-target ]]; then
        start_portico "$target" < <(portico_plain_config)
      else
        start_portico "$target" < <(portico_three_targets_config)
      fi
      measure balance get-1k "$target" "$PID" "$PORT"
      stop_target "$target"
    done
  done
}

# Issue 4: HTTPS with h2 (h2load, H2_CLIENTS × H2_STREAMS), GET 1 KiB, Portico vs nginx with the same
# certificate (ECDSA P-256). Target: Portico within 3× nginx's CPU per request. node-h2-static (no proxying:
# a bare node:http2 server answering from memory) shows what Node's HTTP/2 and TLS alone cost.
suite_h2() {
  make_cert
  local target
  for target in ${H2_TARGETS:-nginx portico-https node-h2-floor node-h2-static}; do
    log "target $target"
    case $target in
      nginx) start_nginx_proxy tls ;;
      portico-https) start_portico "$target" < <(portico_https_config) ;;
      node-h2-*) start_node_peer "$target" ;;
    esac
    measure h2 h2-1k "$target" "$PID" "$PORT"
    stop_target "$target"
  done
}

# Issue 4: cache hits vs proxied requests, GET 1 KiB and 100 KiB: Portico plain, Portico with the route's cache
# (memory store), and nginx with proxy_cache. A check wants `x-cache: HIT` (Portico) before measuring, so every
# measured request is a hit. Target: a hit costs less CPU than a proxied request.
suite_cache() {
  local target scenario
  for target in portico-proxied portico-cache-hit nginx-cache-hit; do
    log "target $target"
    case $target in
      portico-proxied) start_portico "$target" < <(portico_plain_config) ;;
      portico-cache-hit) start_portico "$target" < <(portico_cache_config) ;;
      nginx-cache-hit) start_nginx_proxy cache ;;
    esac
    for scenario in get-1k get-100k; do
      [[ $target == portico-proxied ]] || expect_cache_hit "$target" "http://127.0.0.1:$PORT${SC_PATH[$scenario]}"
      measure cache "$scenario" "$target" "$PID" "$PORT"
    done
    stop_target "$target"
  done
}

# Fills the cache with one request, then wants the next one to be a hit.
expect_cache_hit() {
  local what=$1 url=$2 headers
  curl -s -o /dev/null --max-time 5 "$url" || true
  headers=$(curl -s -D - -o /dev/null --max-time 5 "$url" || true)
  grep -qi -e '^x-cache: *HIT' -e '^x-nginx-cache: *HIT' <<<"$headers" ||
    die "$what: the second request to $url was not a cache hit; headers: $(tr '\r\n' '  ' <<<"$headers")"
}

# Issue 5: GET 1 KiB through api-key + rate-limit + a header transform, with the memory store and with redis,
# against plain proxying (every row sends the API key). Targets: chain ≤ +15% CPU/req (memory), ≤ +40% (redis).
suite_gateway() {
  local -a targets=(portico-plain portico-chain-memory)
  if start_redis; then targets+=(portico-chain-redis); else log "no redis-server: skipping the redis row"; fi
  local target
  for target in "${targets[@]}"; do
    log "target $target"
    case $target in
      portico-plain) start_portico "$target" < <(portico_plain_config) ;;
      portico-chain-memory) start_portico "$target" < <(portico_chain_config memory) ;;
      portico-chain-redis) start_portico "$target" < <(portico_chain_config "$REDIS_URL") ;;
    esac
    if [[ $target == portico-chain-* ]]; then
      # Without the key the chain must answer 401; otherwise we would be measuring plain proxying.
      local code
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/1k.bin" || true)
      [[ $code == 401 ]] || die "$target: a request without an API key got $code, want 401: is the chain active?"
    fi
    measure gateway get-1k-key "$target" "$PID" "$PORT"
    stop_target "$target"
  done
  [[ -z ${REDIS_PID:-} ]] || stop_pid "$REDIS_PID"
}

