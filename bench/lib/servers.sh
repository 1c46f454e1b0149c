# shellcheck shell=bash
# @module Starts the servers a benchmark needs: the nginx origin, Portico, and the peers (nginx, Node proxies).
# Every start_* function sets PID (the process to measure) and PORT, tracks the PID for the EXIT trap, waits
# for the port, and fails the run if the server did not come up. Proxies are pinned to PROXY_CPU.

# Files the origin serves; sizes are checked before every measurement.
make_origin_files() {
  mkdir -p "$WORK/www"
  head -c 1024 /dev/urandom >"$WORK/www/1k.bin"
  head -c 102400 /dev/urandom >"$WORK/www/100k.bin"
  chmod -R a+rX "$WORK"
}

# The nginx directives every instance shares: its own prefix, pid and temp paths inside WORK.
nginx_common() {
  local dir=$1
  cat <<EOF
worker_processes 1;
daemon off;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; multi_accept on; }
EOF
}

nginx_http_common() {
  local dir=$1
  cat <<EOF
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
EOF
}

# Origin: static 1 KiB / 100 KiB files and POST /post, which reads and discards the body (`return` makes nginx
# read it; check_post_keepalive proves it by pipelining two POSTs on one connection). No access log.
# Pinned to LOAD_CPU, next to wrk, so the proxy's core is the proxy's alone.
start_origin() {
  local dir="$WORK/origin" port p
  port=$(free_port)
  # Two more ports on the same server stand in for more replicas (suite balance).
  ORIGIN_EXTRA_PORTS=("$(free_port)" "$(free_port)")
  mkdir -p "$dir"
  {
    nginx_common "$dir"
    echo "http {"
    nginx_http_common "$dir"
    cat <<EOF
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$port reuseport backlog=4096;
$(for p in "${ORIGIN_EXTRA_PORTS[@]}"; do echo "    listen 127.0.0.1:$p backlog=4096;"; done)
    root $WORK/www;
    location = /post { client_max_body_size 1m; return 200 "ok\n"; }
    location / { }
  }
}
EOF
  } >"$dir/nginx.conf"
  taskset -c "$LOAD_CPU" nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  PID=$!
  PORT=$port
  track_pid "$PID"
  wait_port "$PORT" "$PID" "origin nginx" "$dir/error.log"
  ORIGIN_PORT=$PORT
  ORIGIN_PID=$PID
}

# nginx as a reverse proxy: one worker, keep-alive pool of 64 to the origin, access log to a file (as deployed).
# Buffers are sized so 16 KiB bodies and 100 KiB responses stay in memory (no temp files).
# `start_nginx_proxy tls` listens with TLS and HTTP/2 instead (suite h2); `start_nginx_proxy cache` caches
# 200s for a minute (proxy_cache, suite cache) and says HIT or MISS in x-nginx-cache.
start_nginx_proxy() {
  local dir="$WORK/nginx-proxy" port listen_extra='' cache_http='' cache_location=''
  [[ ${1:-} == tls ]] && listen_extra="ssl http2;
    ssl_certificate $WORK/tls/cert.pem;
    ssl_certificate_key $WORK/tls/key.pem"
  if [[ ${1:-} == cache ]]; then
    cache_http="proxy_cache_path $dir/cache keys_zone=bench:10m max_size=256m;"
    cache_location="proxy_cache bench; proxy_cache_valid 200 60s; add_header x-nginx-cache \$upstream_cache_status;"
  fi
  port=$(free_port)
  mkdir -p "$dir"
  {
    nginx_common "$dir"
    echo "http {"
    nginx_http_common "$dir"
    cat <<EOF
  access_log $dir/access.log combined;
  $cache_http
  upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$port reuseport backlog=4096 $listen_extra;
    client_max_body_size 1m;
    client_body_buffer_size 64k;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_buffer_size 16k;
      proxy_buffers 8 32k;
      $cache_location
    }
  }
}
EOF
  } >"$dir/nginx.conf"
  taskset -c "$PROXY_CPU" nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  PID=$!
  PORT=$port
  track_pid "$PID"
  wait_port "$PORT" "$PID" "nginx proxy" "$dir/error.log"
}

# Node flags from bin/portico.mjs's shebang (`#!/usr/bin/env -S node FLAGS`, as older commits had it), so Portico
# runs as `./bin/portico.mjs` would, although we start it as `node bin/portico.mjs` to pin that exact Node. Newer
# launchers add their V8 flags themselves (bin/portico.mjs SERVER_V8_FLAGS).
portico_shebang_flags() {
  local first
  first=$(head -n 1 "$PORTICO_SRC/bin/portico.mjs")
  if [[ $first == '#!'*' node'* ]]; then echo "${first#*node}"; fi
}

# Portico with the YAML config on stdin ("@PORT@" becomes the listener's port; feed it with `< <(...)`, not a
# pipe, so PID and PORT are set in this shell). Logs (JSON lines, one
# per request) go to a file as a deployment's would. PORTICO_NODE_FLAGS adds Node flags (--cpu-prof, ...),
# PORTICO_ARGS adds arguments to `portico start`.
start_portico() {
  local name=${1:-portico} dir port
  dir="$WORK/$name"
  port=$(free_port)
  mkdir -p "$dir"
  sed "s/@PORT@/$port/g" >"$dir/portico.yaml"
  # shellcheck disable=SC2086 # flag lists
  taskset -c "$PROXY_CPU" "$NODE" $(portico_shebang_flags) $PORTICO_NODE_FLAGS "$PORTICO_SRC/bin/portico.mjs" \
    start -c "$dir/portico.yaml" $PORTICO_ARGS \
    >"$dir/stdout.log" 2>"$dir/stderr.log" &
  PID=$!
  PORT=$port
  track_pid "$PID"
  wait_port "$PORT" "$PID" portico "$dir/stderr.log"
  grep -q '"msg":"started"' "$dir/stdout.log" || log "note: portico listens but logged no 'started' line (log level?)"
}

# redis-server on its own port, no persistence, next to wrk on LOAD_CPU. Sets REDIS_URL.
start_redis() {
  local dir="$WORK/redis" port
  command -v redis-server >/dev/null || return 1
  port=$(free_port)
  mkdir -p "$dir"
  taskset -c "$LOAD_CPU" redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" \
    >"$dir/redis.log" 2>&1 &
  REDIS_PID=$!
  track_pid "$REDIS_PID"
  wait_port "$port" "$REDIS_PID" redis-server "$dir/redis.log"
  REDIS_URL="redis://127.0.0.1:$port"
}

# A self-signed certificate for 127.0.0.1 (suite h2), in WORK/tls/{cert,key}.pem.
make_cert() {
  [[ -f $WORK/tls/cert.pem ]] && return 0
  mkdir -p "$WORK/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" >/dev/null 2>&1 ||
    die "openssl could not make a test certificate"
  chmod a+r "$WORK/tls/key.pem"
}

# A Node peer from bench/peers/<name>.mjs, run by the same Node as Portico.
start_node_peer() {
  local name=$1 dir port
  dir="$WORK/$name"
  port=$(free_port)
  mkdir -p "$dir"
  PORT=$port TARGET="http://127.0.0.1:$ORIGIN_PORT" CERT="$WORK/tls/cert.pem" KEY="$WORK/tls/key.pem" \
    BODY_FILE="$WORK/www/1k.bin" taskset -c "$PROXY_CPU" "$NODE" "$BENCH/peers/$name.mjs" \
    >"$dir/stdout.log" 2>"$dir/stderr.log" &
  PID=$!
  PORT=$port
  track_pid "$PID"
  wait_port "$PORT" "$PID" "$name" "$dir/stderr.log"
}

# Installs the Node peers into bench/peers/node_modules when missing; returns 1 (peers skipped) on failure.
ensure_peers() {
  [[ -d $BENCH/peers/node_modules/fast-gateway && -d $BENCH/peers/node_modules/@fastify/http-proxy ]] && return 0
  log "installing Node peers into bench/peers (npm install --prefix bench/peers)"
  npm install --prefix "$BENCH/peers" --no-audit --no-fund >"$WORK/npm-peers.log" 2>&1 && return 0
  log "WARNING: npm install of the peers failed (see $WORK/npm-peers.log); Node peers are skipped"
  return 1
}

# PORTICO_REF=<commit> measures that commit (exported with `git archive`, read-only) instead of the working
# tree, so a run is not disturbed by edits in progress. Sets PORTICO_SRC and PORTICO_VERSION.
prepare_portico_src() {
  if [[ -z ${PORTICO_REF:-} ]]; then
    PORTICO_SRC=$REPO
    PORTICO_VERSION="working tree at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
    if [[ -n $(git -C "$REPO" status --porcelain -- src bin 2>/dev/null) ]]; then
      PORTICO_VERSION+=" (with uncommitted changes in src/ or bin/)"
    fi
    return 0
  fi
  PORTICO_SRC="$WORK/portico-src"
  mkdir -p "$PORTICO_SRC"
  git -C "$REPO" archive "$PORTICO_REF" bin src package.json | tar -x -C "$PORTICO_SRC" ||
    die "cannot export PORTICO_REF=$PORTICO_REF"
  ln -s "$REPO/node_modules" "$PORTICO_SRC/node_modules"
  PORTICO_VERSION="commit $(git -C "$REPO" rev-parse --short "$PORTICO_REF")"
}

# Starts target NAME (direct | portico | nginx | fast-gateway | fastify-proxy | node-floor) for plain proxying;
# sets PID/PORT.
start_target() {
  case $1 in
    direct) PID=$ORIGIN_PID PORT=$ORIGIN_PORT ;;
    portico) start_portico portico < <(portico_plain_config) ;;
    nginx) start_nginx_proxy ;;
    fast-gateway | fastify-proxy | node-floor) start_node_peer "$1" ;;
    *) die "unknown target $1" ;;
  esac
}

stop_target() {
  [[ $1 == direct ]] || stop_pid "$PID"
}
