#!/usr/bin/env bash
# @module `npm run bench`: measures Portico against a direct run and peer proxies on this machine, in one run.
#
# Installs wrk/nginx/h2load with apt-get when missing, starts an nginx origin, then each target in turn pinned to
# one core while wrk loads it from the other. Prints a Markdown table and writes it to bench/out/<timestamp>.md.
# docs/benchmarks.md explains what is measured and how to read it.
#
# Environment (defaults in brackets):
#   DURATION [10]  measured seconds per row      WARMUP [3]  warm-up seconds per row
#   CONNECTIONS [64]  keep-alive connections     THREADS [1]  wrk threads
#   ROUNDS [1]  repeats of all suites (interleaved); the report keeps each target's best run
#   TARGETS ["direct portico node-floor nginx fast-gateway fastify-proxy"]   SCENARIOS ["get-1k get-100k post-16k"]
#   SUITES [http]  suites to run: http balance l4 gateway h2 cache, or all (see bench/lib/suites.sh)
#   PEERS [1]  0 skips the Node peers          PROFILE [0]  1 writes a --cpu-prof of Portico to the out dir
#   PROXY_CPU [1] / LOAD_CPU [0]  cores for the proxy and for wrk + origin
#   PORTICO_REF  a commit to measure (exported read-only with git archive) instead of the working tree
#   H2_TARGETS ["nginx portico-https node-h2-floor node-h2-static"]  rows of suite h2
#   PORTICO_NODE_FLAGS / PORTICO_ARGS  extra Node flags / `portico start` arguments (experiments)
#   KEEP_WORK [0]  1 keeps the scratch directory (configs, logs, raw wrk output) after the run
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
NODE="$REPO/node_modules/.bin/node"
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-1}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
TARGETS=${TARGETS:-"direct portico node-floor nginx fast-gateway fastify-proxy"}
SCENARIOS=${SCENARIOS:-"get-1k get-100k post-16k"}
SUITES=${SUITES:-http}
[[ $SUITES == all ]] && SUITES="http balance l4 gateway h2 cache"
PEERS=${PEERS:-1}
PROFILE=${PROFILE:-0}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
PORTICO_NODE_FLAGS=${PORTICO_NODE_FLAGS:-}
PORTICO_ARGS=${PORTICO_ARGS:-}
CLK_TCK=$(getconf CLK_TCK)
BENCH_API_KEY=bench-key-0123456789abcdef
H2_CLIENTS=${H2_CLIENTS:-16}
H2_STREAMS=${H2_STREAMS:-4}

# shellcheck source=bench/lib/util.sh
source "$BENCH/lib/util.sh"
# shellcheck source=bench/lib/servers.sh
source "$BENCH/lib/servers.sh"
# shellcheck source=bench/lib/portico-configs.sh
source "$BENCH/lib/portico-configs.sh"
# shellcheck source=bench/lib/load.sh
source "$BENCH/lib/load.sh"
# shellcheck source=bench/lib/measure.sh
source "$BENCH/lib/measure.sh"
# shellcheck source=bench/lib/suites.sh
source "$BENCH/lib/suites.sh"

# Bounded inputs keep a run within minutes.
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 && $DURATION -le 120 ]] || die "DURATION must be 1..120 seconds"
[[ $WARMUP =~ ^[0-9]+$ && $WARMUP -ge 1 && $WARMUP -le 30 ]] || die "WARMUP must be 1..30 seconds"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 5 ]] || die "ROUNDS must be 1..5"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 4096 ]] || die "CONNECTIONS must be 1..4096"
[[ -x $NODE ]] || die "missing $NODE (run npm install in the repo)"

install_tools() {
  local -a missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || missing+=(nginx-light)
  command -v h2load >/dev/null || missing+=(nghttp2-client)
  command -v taskset >/dev/null || missing+=(util-linux)
  command -v curl >/dev/null || missing+=(curl)
  ((${#missing[@]} == 0)) && return 0
  log "installing with apt-get: ${missing[*]}"
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  local sudo=''
  ((EUID == 0)) || sudo=sudo
  $sudo apt-get update -qq || die "apt-get update failed"
  # nginx-light is not in every release; fall back to nginx.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" ||
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]/nginx-light/nginx}" ||
    die "apt-get install ${missing[*]} failed"
}

main() {
  install_tools
  (($(nproc) >= 2)) || log "WARNING: fewer than 2 cores; wrk and the proxy will share one"
  WORK=$(mktemp -d /tmp/portico-bench.XXXXXX)
  chmod 755 "$WORK"
  trap 'cleanup; [[ ${KEEP_WORK:-0} == 1 ]] || rm -rf "$WORK"' EXIT
  trap 'exit 130' INT TERM
  ROWS="$WORK/rows.tsv"
  : >"$ROWS"
  mkdir -p "$BENCH/out"
  local stamp
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  OUT="$BENCH/out/$stamp.md"

  PEER_VERSIONS=none
  if [[ $PEERS == 1 && $TARGETS == *fast* ]] && ensure_peers; then
    PEER_VERSIONS=$(cd "$BENCH/peers" && "$NODE" -e '
      const v = (p) => require(p + "/package.json").version;
      console.log(`fast-gateway ${v("fast-gateway")}, fastify ${v("fastify")} + @fastify/http-proxy ${v("@fastify/http-proxy")}`)')
  else
    TARGETS=$(tr ' ' '\n' <<<"$TARGETS" | grep -v -e fast-gateway -e fastify-proxy | tr '\n' ' ')
  fi
  if [[ $PROFILE == 1 ]]; then
    PORTICO_NODE_FLAGS="$PORTICO_NODE_FLAGS --cpu-prof --cpu-prof-dir=$BENCH/out/$stamp.cpuprofile"
  fi

  prepare_portico_src
  LOAD_BEFORE=$(load1)
  log "work dir $WORK; targets: $TARGETS; scenarios: $SCENARIOS; load1 $LOAD_BEFORE"
  make_origin_files
  start_origin

  local suite round
  for suite in $SUITES; do
    declare -F "suite_$suite" >/dev/null || die "unknown suite '$suite' (see bench/lib/suites.sh)"
  done
  # Rounds repeat every suite in turn, so slow drifts in the machine's load spread over all targets alike.
  for ((round = 1; round <= ROUNDS; round++)); do
    for suite in $SUITES; do
      log "suite $suite (round $round of $ROUNDS)"
      "suite_$suite"
    done
  done

  report "Portico benchmark $stamp" | tee "$OUT"
  log "wrote $OUT"
  if [[ $PROFILE == 1 ]]; then
    log "CPU profile in $BENCH/out/$stamp.cpuprofile/; top self time:"
    "$NODE" "$BENCH/profile-top.ts" "$BENCH/out/$stamp.cpuprofile" 25 >&2 || true
  fi
}

main "$@"
