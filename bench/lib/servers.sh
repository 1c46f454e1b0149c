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
  local dir="$WORK/origin" port
  port=$(free_port)
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
start_nginx_proxy() {
  local dir="$WORK/nginx-proxy" port
  port=$(free_port)
  mkdir -p "$dir"
  {
    nginx_common "$dir"
    echo "http {"
    nginx_http_common "$dir"
    cat <<EOF
  access_log $dir/access.log combined;
  upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$port reuseport backlog=4096;
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

# Portico with the YAML config on stdin ("@PORT@" becomes the listener's port; feed it with `< <(...)`, not a
# pipe, so PID and PORT are set in this shell). Logs (JSON lines, one
# per request) go to a file as a deployment's would. PORTICO_NODE_FLAGS adds flags such as --cpu-prof.
start_portico() {
  local name=${1:-portico} dir port
  dir="$WORK/$name"
  port=$(free_port)
  mkdir -p "$dir"
  sed "s/@PORT@/$port/g" >"$dir/portico.yaml"
  # shellcheck disable=SC2086 # PORTICO_NODE_FLAGS is a list of flags
  taskset -c "$PROXY_CPU" "$NODE" $PORTICO_NODE_FLAGS "$PORTICO_SRC/bin/portico.ts" start -c "$dir/portico.yaml" \
    >"$dir/stdout.log" 2>"$dir/stderr.log" &
  PID=$!
  PORT=$port
  track_pid "$PID"
  wait_port "$PORT" "$PID" portico "$dir/stderr.log"
  grep -q '"msg":"started"' "$dir/stdout.log" || die "portico listens but logged no 'started' line; see $dir"
}

# Plain proxying of everything to the origin.
portico_plain_config() {
  cat <<EOF
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:@PORT@ }
upstreams:
  - name: origin
    targets: [ { url: http://127.0.0.1:$ORIGIN_PORT } ]
routes:
  - { name: all, match: { path: /* }, upstream: origin }
EOF
}

# A Node peer from bench/peers/<name>.mjs, run by the same Node as Portico.
start_node_peer() {
  local name=$1 dir port
  dir="$WORK/$name"
  port=$(free_port)
  mkdir -p "$dir"
  PORT=$port TARGET="http://127.0.0.1:$ORIGIN_PORT" taskset -c "$PROXY_CPU" "$NODE" "$BENCH/peers/$name.mjs" \
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

# Starts target NAME (direct | portico | nginx | fast-gateway | fastify-proxy) for plain proxying; sets PID/PORT.
start_target() {
  case $1 in
    direct) PID=$ORIGIN_PID PORT=$ORIGIN_PORT ;;
    portico) start_portico portico < <(portico_plain_config) ;;
    nginx) start_nginx_proxy ;;
    fast-gateway | fastify-proxy) start_node_peer "$1" ;;
    *) die "unknown target $1" ;;
  esac
}

stop_target() {
  [[ $1 == direct ]] || stop_pid "$PID"
}
