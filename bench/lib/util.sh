# shellcheck shell=bash
# @module Helpers shared by the benchmark scripts: logging, ports, process bookkeeping and /proc readings.
# Sourced by bench/run.sh; expects WORK (a scratch directory) and NODE to be set.

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# Every process we start, so the EXIT trap can stop them all (and nothing else).
STARTED_PIDS=()
track_pid() { STARTED_PIDS+=("$1"); }

# Stops one started process (TERM, then KILL after 3 s) and its children.
stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  local kids
  kids=$(pgrep -P "$pid" || true)
  kill -KILL "$pid" $kids 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
  wait 2>/dev/null || true
}

# A port that was free a moment ago (the kernel picks it; we close it before the server binds).
free_port() {
  "$NODE" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Waits until 127.0.0.1:PORT accepts connections; fails (showing the end of LOGFILE) if PID died or after 15 s.
wait_port() {
  local port=$1 pid=$2 what=$3 logfile=${4:-/dev/null} i
  for ((i = 0; i < 150; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$what (pid $pid) exited before listening on $port; last lines of $logfile:"
      tail -n 15 "$logfile" >&2 || true
      die "$what did not start (KEEP_WORK=1 keeps $WORK)"
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "$what did not listen on 127.0.0.1:$port within 15 s; see $logfile"
}

# PID and its direct children (nginx master + worker; a Node process is alone).
proc_tree() {
  local pid=$1
  echo "$pid"
  pgrep -P "$pid" || true
}

# Sum of utime+stime, in clock ticks, over PID and its children (all threads: /proc/PID/stat is per process).
cpu_ticks() {
  local total=0 p stat rest
  local -a f
  for p in $(proc_tree "$1"); do
    stat=$(<"/proc/$p/stat") || continue
    rest=${stat##*) } # the command name may hold spaces; fields after it are fixed
    read -ra f <<<"$rest"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

# Largest VmHWM (peak resident set, KiB) among PID and its children: the worker for nginx, the process for Node.
peak_rss_kib() {
  local best=0 p v
  for p in $(proc_tree "$1"); do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    ((v > best)) && best=$v
  done
  echo "$best"
}

load1() { cut -d' ' -f1 /proc/loadavg; }
