# shellcheck shell=bash
# @module Scenarios (what one request is) and the load generators that send them: wrk for HTTP/1.1, h2load
# for HTTP/2. Each run prints the generator's output plus one line the measurement parses:
# BENCH requests=N bytes=N duration_us=N p50_us=N p99_us=N max_us=N err_connect=N ... non2xx=N

# Scenarios of HTTP/1.1 load: path, request body bytes (0 = GET), expected response bytes; optionally a
# request header (SC_HEADER) and a connection count (SC_CONN) other than CONNECTIONS.
# l4-large: 64 MiB downloads over 8 connections (MB/s); l4-close: one connection per request (connections/s).
# get-1k-key: GET 1 KiB with an API key (suite gateway).
declare -A SC_PATH=([get-1k]=/1k.bin [get-100k]=/100k.bin [post-16k]=/post [l4-large]=/64m.bin [l4-close]=/1k.bin
  [get-1k-key]=/1k.bin)
declare -A SC_BODY=([get-1k]=0 [get-100k]=0 [post-16k]=16384 [l4-large]=0 [l4-close]=0 [get-1k-key]=0)
declare -A SC_SIZE=([get-1k]=1024 [get-100k]=102400 [post-16k]=3 [l4-large]=67108864 [l4-close]=1024
  [get-1k-key]=1024)
declare -A SC_HEADER=([l4-close]="Connection: close" [get-1k-key]="x-api-key: $BENCH_API_KEY")
declare -A SC_CONN=([l4-large]=8)
# h2-1k: GET 1 KiB over HTTPS with HTTP/2, by h2load (suite h2).
SC_PATH[h2-1k]=/1k.bin SC_BODY[h2-1k]=0 SC_SIZE[h2-1k]=1024
declare -A SC_SCHEME=([h2-1k]=https)
declare -A SC_TOOL=([h2-1k]=h2load)

# Fails the run unless one request of SCENARIO to URL answers 200 with the expected number of bytes.
check_scenario() {
  local scenario=$1 url=$2 what=$3 out
  local -a extra=()
  [[ ${SC_TOOL[$scenario]:-wrk} == h2load ]] && extra+=(--http2 -k)
  [[ -n ${SC_HEADER[$scenario]:-} ]] && extra+=(-H "${SC_HEADER[$scenario]}")
  if ((SC_BODY[$scenario] > 0)); then
    head -c "${SC_BODY[$scenario]}" /dev/zero >"$WORK/body.bin"
    extra+=(--data-binary "@$WORK/body.bin" -H 'content-type: application/octet-stream')
  fi
  out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' --max-time 10 "${extra[@]}" "$url" 2>&1) || true
  [[ $out == "200 ${SC_SIZE[$scenario]}" ]] ||
    die "$what: $scenario check failed: got '$out', want '200 ${SC_SIZE[$scenario]}' from $url"
  if ((SC_BODY[$scenario] > 0)); then
    local port=${url#http://127.0.0.1:}
    "$NODE" "$BENCH/lib/check-post.ts" "${port%%/*}" "${SC_PATH[$scenario]}" || die "$what does not read POST bodies"
  fi
}

# run_load SECONDS URL SCENARIO: the scenario's load generator; its output holds one BENCH line.
run_load() {
  case ${SC_TOOL[$3]:-wrk} in
    wrk) run_wrk "$@" ;;
    h2load) run_h2load "$@" ;;
  esac
}

# wrk pinned to LOAD_CPU; prints wrk's output (with the BENCH line from bench.lua).
run_wrk() {
  local seconds=$1 url=$2 scenario=$3
  local -a header=()
  [[ -n ${SC_HEADER[$scenario]:-} ]] && header=(-H "${SC_HEADER[$scenario]}")
  BODY_BYTES=${SC_BODY[$scenario]} taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"${SC_CONN[$scenario]:-$CONNECTIONS}" \
    -d"${seconds}s" --latency --timeout 10s "${header[@]}" -s "$BENCH/wrk/bench.lua" "$url"
}

# h2load pinned to LOAD_CPU: H2_CLIENTS connections × H2_STREAMS concurrent streams. h2load prints no
# percentiles, so p99 comes from its per-request log; its summary becomes the same BENCH line as wrk's.
run_h2load() {
  local seconds=$1 url=$2 reqlog="$WORK/h2load-requests.tsv" out
  out=$(taskset -c "$LOAD_CPU" h2load -t 1 -c "$H2_CLIENTS" -m "$H2_STREAMS" -D "$seconds" --log-file="$reqlog" "$url") ||
    return 1
  echo "$out"
  local p99 ok
  p99=$(awk -F'\t' '$2 == 200 { print $3 }' "$reqlog" | sort -n | awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; print a[i] + 0 }')
  awk -v p99="$p99" '
    /^finished in/ {
      d = $3; sub(/,$/, "", d)
      if (d ~ /ms$/) { sub(/ms$/, "", d); d /= 1e3 } else if (d ~ /us$/) { sub(/us$/, "", d); d /= 1e6 } else sub(/s$/, "", d)
    }
    /^requests:/ { ok = $8; failed = $10; errored = $12; timeout = $14 }
    /^traffic:/ { b = $3; gsub(/[()]/, "", b) }
    /^status codes:/ { s2 = $3; s3 = $5; s4 = $7; s5 = $9 }
    END {
      printf "BENCH requests=%d bytes=%d duration_us=%d p50_us=0 p99_us=%d max_us=0 err_connect=0 err_read=%d err_write=0 err_timeout=%d non2xx=%d\n",
        ok, b, d * 1e6, p99, failed, timeout, s3 + s4 + s5
    }' <<<"$out"
}
