# shellcheck shell=bash
# @module One measurement (warm-up, then a timed wrk run while reading the server's CPU from /proc) and the
# Markdown report built from all of them. Rows go to $ROWS as tab-separated values:
# suite scenario target rps p99_ms cpu_us_per_req peak_rss_mib errors load1

# Scenarios of HTTP/1.1 load: path, request body bytes (0 = GET), expected response bytes.
declare -A SC_PATH=([get-1k]=/1k.bin [get-100k]=/100k.bin [post-16k]=/post)
declare -A SC_BODY=([get-1k]=0 [get-100k]=0 [post-16k]=16384)
declare -A SC_SIZE=([get-1k]=1024 [get-100k]=102400 [post-16k]=3)
declare -A SC_LABEL=([get-1k]="GET 1 KiB" [get-100k]="GET 100 KiB" [post-16k]="POST 16 KiB")

# Fails the run unless one request of SCENARIO on PORT answers 200 with the expected number of bytes.
check_scenario() {
  local scenario=$1 port=$2 what=$3 out
  local url="http://127.0.0.1:$port${SC_PATH[$scenario]}"
  local -a extra=()
  if ((SC_BODY[$scenario] > 0)); then
    head -c "${SC_BODY[$scenario]}" /dev/zero >"$WORK/body.bin"
    extra=(--data-binary "@$WORK/body.bin" -H 'content-type: application/octet-stream')
  fi
  out=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 5 "${extra[@]}" "$url") || true
  [[ $out == "200 ${SC_SIZE[$scenario]}" ]] ||
    die "$what: $scenario check failed: got '$out', want '200 ${SC_SIZE[$scenario]}' from $url"
  if ((SC_BODY[$scenario] > 0)); then
    "$NODE" "$BENCH/lib/check-post.mjs" "$port" "${SC_PATH[$scenario]}" || die "$what does not read POST bodies"
  fi
}

# wrk pinned to LOAD_CPU; prints wrk's output (with the BENCH line from bench.lua).
run_wrk() {
  local seconds=$1 url=$2 body=$3
  BODY_BYTES=$body taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency \
    --timeout 10s -s "$BENCH/wrk/bench.lua" "$url"
}

# measure SUITE SCENARIO TARGET PID PORT: warm up, then measure; appends one row to $ROWS.
measure() {
  local suite=$1 scenario=$2 target=$3 pid=$4 port=$5
  local url="http://127.0.0.1:$port${SC_PATH[$scenario]}" body=${SC_BODY[$scenario]}
  check_scenario "$scenario" "$port" "$target"
  run_wrk "$WARMUP" "$url" "$body" >/dev/null || die "wrk warm-up failed against $target"
  local t0 t1 out line
  t0=$(cpu_ticks "$pid")
  out=$(run_wrk "$DURATION" "$url" "$body") || die "wrk failed against $target"
  t1=$(cpu_ticks "$pid")
  kill -0 "$pid" 2>/dev/null || die "$target (pid $pid) died during $scenario"
  echo "$out" >"$WORK/wrk-$suite-$scenario-$target.txt"
  line=$(grep '^BENCH ' <<<"$out") || die "no BENCH line from wrk for $target $scenario"
  local rss load
  rss=$(peak_rss_kib "$pid")
  load=$(load1)
  awk -v line="$line" -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" -v rss="$rss" -v ld="$load" \
    -v suite="$suite" -v sc="$scenario" -v tg="$target" 'BEGIN {
      n = split(line, kv, /[ =]/); for (i = 2; i < n; i += 2) v[kv[i]] = kv[i + 1]
      req = v["requests"]; if (req == 0) req = 1
      err = v["err_connect"] + v["err_read"] + v["err_write"] + v["err_timeout"] + v["non2xx"]
      printf "%s\t%s\t%s\t%.0f\t%.2f\t%.1f\t%.1f\t%d\t%s\n", suite, sc, tg,
        v["requests"] / (v["duration_us"] / 1e6), v["p99_us"] / 1000, ticks * 1e6 / hz / req, rss / 1024, err, ld
    }' >>"$ROWS"
  log "$(tail -n 1 "$ROWS" | awk -F'\t' '{printf "%-10s %-14s %8s req/s  p99 %6s ms  %6s CPU us/req  %6s MiB  err %s  load %s", $2, $3, $4, $5, $6, $7, $8, $9}')"
}

# The Markdown report: one table per suite, rows grouped by scenario, CPU also as a ratio to nginx's.
report() {
  local title=$1
  echo "# $title"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); host: $(uname -n), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
  echo "- Portico: $PORTICO_VERSION"
  echo "- kernel $(uname -r); Node $("$NODE" -v); $(nginx -v 2>&1 | sed 's/nginx version: //'); $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); peers: $PEER_VERSIONS"
  echo "- wrk: $CONNECTIONS connections, $THREADS thread(s), keep-alive, ${WARMUP}s warm-up + ${DURATION}s measured; wrk + origin on CPU $LOAD_CPU, proxy on CPU $PROXY_CPU"
  echo "- load average (1 min) before the run: $LOAD_BEFORE; after: $(load1)"
  local suite
  for suite in $(cut -f1 "$ROWS" | awk '!seen[$0]++'); do
    echo
    echo "## $suite"
    echo
    echo "| scenario | target | req/s | p99 ms | CPU µs/req | CPU × nginx | peak RSS MiB | errors | load1 |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    awk -F'\t' -v suite="$suite" '
      $1 == suite { rows[++n] = $0; if ($3 == "nginx") ng[$2] = $6 }
      END {
        for (i = 1; i <= n; i++) {
          split(rows[i], f, "\t")
          ratio = (f[2] in ng && ng[f[2]] > 0 && f[3] != "direct") ? sprintf("%.2f", f[6] / ng[f[2]]) : "–"
          printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f[2], f[3], f[4], f[5], f[6], ratio, f[7], f[8], f[9]
        }
      }' "$ROWS"
  done
  echo
  echo "CPU µs/req: utime+stime of the server process (and its children) over the measured run ÷ requests."
  echo "For *direct* that is the origin's own cost. Peak RSS: VmHWM since the process started (cumulative over scenarios)."
  targets_verdict
}

# Issue targets for plain proxying (Portico, suite http): CPU per request and peak RSS.
targets_verdict() {
  awk -F'\t' '
    $1 == "http" && $3 == "portico" { cpu[$2] = $6; if ($7 > rss) rss = $7; seen = 1 }
    function verdict(ok) { return ok ? "met" : "**missed**" }
    END {
      if (!seen) exit
      print ""
      print "Targets (Portico, plain proxying):"
      if ("get-1k" in cpu) printf "- GET 1 KiB ≤ 45 CPU µs/req: %s µs → %s\n", cpu["get-1k"], verdict(cpu["get-1k"] <= 45)
      if ("get-100k" in cpu) printf "- GET 100 KiB ≤ 150 CPU µs/req: %s µs → %s\n", cpu["get-100k"], verdict(cpu["get-100k"] <= 150)
      printf "- peak RSS < 120 MiB: %s MiB → %s\n", rss, verdict(rss < 120)
    }' "$ROWS"
}
