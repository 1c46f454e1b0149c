# shellcheck shell=bash
# @module One measurement (warm-up, then a timed load run while reading the server's CPU from /proc) and the
# Markdown report built from all of them. Scenarios and load generators are in load.sh. Rows go to $ROWS as tab-separated values:
# suite scenario target rps p99_ms cpu_us_per_req peak_rss_mib errors load1 mb_per_s

# measure SUITE SCENARIO TARGET PID PORT: warm up, then measure; appends one row to $ROWS.
measure() {
  local suite=$1 scenario=$2 target=$3 pid=$4 port=$5
  [[ -n ${SC_PATH[$scenario]:-} ]] || die "unknown scenario '$scenario'"
  local url="${SC_SCHEME[$scenario]:-http}://127.0.0.1:$port${SC_PATH[$scenario]}"
  check_scenario "$scenario" "$url" "$target"
  run_load "$WARMUP" "$url" "$scenario" >/dev/null || die "warm-up load failed against $target"
  local t0 t1 out line
  t0=$(cpu_ticks "$pid")
  out=$(run_load "$DURATION" "$url" "$scenario") || die "load generator failed against $target"
  t1=$(cpu_ticks "$pid")
  kill -0 "$pid" 2>/dev/null || die "$target (pid $pid) died during $scenario"
  echo "$out" >"$WORK/load-$suite-$scenario-$target.txt"
  line=$(grep '^BENCH ' <<<"$out") || die "no BENCH line from the load generator for $target $scenario"
  local rss load
  rss=$(peak_rss_kib "$pid")
  load=$(load1)
  awk -v line="$line" -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" -v rss="$rss" -v ld="$load" \
    -v suite="$suite" -v sc="$scenario" -v tg="$target" 'BEGIN {
      n = split(line, kv, /[ =]/); for (i = 2; i < n; i += 2) v[kv[i]] = kv[i + 1]
      req = v["requests"]; if (req == 0) req = 1
      err = v["err_connect"] + v["err_read"] + v["err_write"] + v["err_timeout"] + v["non2xx"]
      rps = v["requests"] / (v["duration_us"] / 1e6)
      printf "%s\t%s\t%s\t%.0f\t%.2f\t%.1f\t%.1f\t%d\t%s\t%.0f\n", suite, sc, tg,
        rps, v["p99_us"] / 1000, ticks * 1e6 / hz / req, rss / 1024, err, ld, v["bytes"] / v["duration_us"]
    }' >>"$ROWS"
  log "$(tail -n 1 "$ROWS" | awk -F'\t' '{printf "%-10s %-14s %8s req/s  p99 %6s ms  %6s CPU us/req  %6s MiB  err %s  load %s", $2, $3, $4, $5, $6, $7, $8, $9}')"
}

# Each suite's baseline for the "CPU ×" column (CPU per request relative to that target in the same scenario).
declare -A SUITE_BASE=([http]=nginx [balance]=portico-1-target [gateway]=portico-plain [h2]=nginx [cache]=portico-proxied [l4]=direct)

# The Markdown report: one table per suite, CPU also as a ratio to the suite's baseline in the same run.
report() {
  local title=$1
  echo "# $title"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); host: $(uname -n), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
  echo "- Portico: $PORTICO_VERSION; node flags:$(portico_shebang_flags) $PORTICO_NODE_FLAGS (and the launcher's own); start args: ${PORTICO_ARGS:-none}"
  echo "- kernel $(uname -r); Node $("$NODE" -v); $(nginx -v 2>&1 | sed 's/nginx version: //'); $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); peers: $PEER_VERSIONS"
  echo "- wrk: $CONNECTIONS connections, $THREADS thread(s), keep-alive, ${WARMUP}s warm-up + ${DURATION}s measured; wrk + origin on CPU $LOAD_CPU, proxy on CPU $PROXY_CPU"
  echo "- load average (1 min) before the run: $LOAD_BEFORE; after: $(load1)"
  local suite base
  for suite in $(cut -f1 "$ROWS" | awk '!seen[$0]++'); do
    base=${SUITE_BASE[$suite]:-}
    echo
    echo "## $suite"
    echo
    echo "| scenario | target | req/s | MB/s | p99 ms | CPU µs/req | CPU × ${base:-base} | peak RSS MiB | errors | load1 | runs |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    best_rows "$suite" | awk -F'\t' -v base="$base" '
      { rows[++n] = $0; if ($3 == base) b[$2] = $6 }
      END {
        for (i = 1; i <= n; i++) {
          split(rows[i], f, "\t")
          ratio = (f[2] in b && b[f[2]] > 0 && f[3] != "direct") ? sprintf("%.2f", f[6] / b[f[2]]) : "–"
          printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f[2], f[3], f[4], f[10], f[5], f[6], ratio, f[7], f[8], f[9], f[11]
        }
      }'
  done
  echo
  echo "CPU µs/req: utime+stime of the server process (and its children) over the measured run ÷ requests;"
  echo "for *direct*, the origin's own cost. Peak RSS: VmHWM since the process started (cumulative over its scenarios)."
  echo "A target measured in several runs (ROUNDS; suite balance always) shows its best run: lowest CPU and p99, highest"
  echo "req/s, highest RSS (other work on the machine can only add CPU time, so the lowest is the least disturbed)."
  targets_verdict
  if awk -F'\t' '{ k = $1 FS $2 FS $3; if (++c[k] > 1) found = 1 } END { exit !found }' "$ROWS"; then
    echo
    echo "<details><summary>every run</summary>"
    echo
    echo "| suite | scenario | target | req/s | p99 ms | CPU µs/req | peak RSS MiB | errors | load1 |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$ROWS"
    echo
    echo "</details>"
  fi
}

# The rows of SUITE with repeated runs of one scenario × target merged (best of runs, see report); the 11th
# field is the number of runs. First-seen order is kept.
best_rows() {
  awk -F'\t' -v suite="$1" '
    $1 != suite { next }
    {
      k = $2 FS $3
      if (!(k in n)) { order[++m] = k; rps[k] = $4; p99[k] = $5; cpu[k] = $6; rss[k] = $7; err[k] = 0; ld[k] = $9; mb[k] = $10 }
      n[k]++
      if ($4 > rps[k]) rps[k] = $4; if ($5 < p99[k]) p99[k] = $5; if ($6 < cpu[k]) cpu[k] = $6
      if ($7 > rss[k]) rss[k] = $7; err[k] += $8; if ($9 > ld[k]) ld[k] = $9; if ($10 > mb[k]) mb[k] = $10
    }
    END {
      for (i = 1; i <= m; i++) {
        k = order[i]
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", suite, k, rps[k], p99[k], cpu[k], rss[k], err[k], ld[k], mb[k], n[k]
      }
    }' "$ROWS"
}

# The issues' targets, judged on the best rows of this run.
targets_verdict() {
  {
    best_rows http
    best_rows balance
    best_rows gateway
    best_rows h2
    best_rows cache
  } | awk -F'\t' '
    { cpu[$1, $2, $3] = $6; if ($1 == "http" && $3 == "portico") { if ($7 > rss) rss = $7; seen = 1 } }
    function verdict(ok) { return ok ? "met" : "**missed**" }
    function ratio_line(label, a, b, limit) {
      if (!(a in cpu) || !(b in cpu) || cpu[b] == 0) return
      printf "- %s: %+.0f%% → %s\n", label, 100 * (cpu[a] / cpu[b] - 1), verdict(cpu[a] <= cpu[b] * (1 + limit / 100))
    }
    END {
      print ""
      print "Targets:"
      if (seen) {
        k = "http" SUBSEP "get-1k" SUBSEP "portico"
        if (k in cpu) printf "- GET 1 KiB ≤ 45 CPU µs/req: %s µs → %s\n", cpu[k], verdict(cpu[k] <= 45)
        k = "http" SUBSEP "get-100k" SUBSEP "portico"
        if (k in cpu) printf "- GET 100 KiB ≤ 150 CPU µs/req: %s µs → %s\n", cpu[k], verdict(cpu[k] <= 150)
        printf "- peak RSS < 120 MiB: %s MiB → %s\n", rss, verdict(rss < 120)
      }
      ratio_line("least-request over 3 targets ≤ +5% CPU/req vs 1 target", "balance" SUBSEP "get-1k" SUBSEP "portico-3-least-request", "balance" SUBSEP "get-1k" SUBSEP "portico-1-target", 5)
      ratio_line("policy chain (memory) ≤ +15% CPU/req vs plain", "gateway" SUBSEP "get-1k-key" SUBSEP "portico-chain-memory", "gateway" SUBSEP "get-1k-key" SUBSEP "portico-plain", 15)
      ratio_line("policy chain (redis) ≤ +40% CPU/req vs plain", "gateway" SUBSEP "get-1k-key" SUBSEP "portico-chain-redis", "gateway" SUBSEP "get-1k-key" SUBSEP "portico-plain", 40)
      ratio_line("cache hit < proxied request, GET 1 KiB (CPU/req)", "cache" SUBSEP "get-1k" SUBSEP "portico-cache-hit", "cache" SUBSEP "get-1k" SUBSEP "portico-proxied", -0.001)
      ratio_line("cache hit < proxied request, GET 100 KiB (CPU/req)", "cache" SUBSEP "get-100k" SUBSEP "portico-cache-hit", "cache" SUBSEP "get-100k" SUBSEP "portico-proxied", -0.001)
      ratio_line("HTTPS h2 GET 1 KiB ≤ 3× nginx CPU/req (+200%)", "h2" SUBSEP "h2-1k" SUBSEP "portico-https", "h2" SUBSEP "h2-1k" SUBSEP "nginx", 200)
    }'
}
