# shellcheck shell=bash
# @module The Portico configs the suites run, as YAML on stdout. "@PORT@" is the listener's port (start_portico
# fills it in); ORIGIN_PORT, ORIGIN_EXTRA_PORTS, BENCH_API_KEY and WORK come from the running benchmark.

# Plain proxying of everything to the origin (one target; the upstream's default balancer, least-request).
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

# The same route over three targets (three ports of the origin) with least-request.
portico_three_targets_config() {
  cat <<EOF
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:@PORT@ }
upstreams:
  - name: origin
    balance: least-request
    targets:
      - { url: http://127.0.0.1:$ORIGIN_PORT }
      - { url: http://127.0.0.1:${ORIGIN_EXTRA_PORTS[0]} }
      - { url: http://127.0.0.1:${ORIGIN_EXTRA_PORTS[1]} }
routes:
  - { name: all, match: { path: /* }, upstream: origin }
EOF
}

# A pure L4 balancer: a tcp listener piping to the origin.
portico_l4_config() {
  cat <<EOF
listeners:
  - { name: tcp, protocol: tcp, address: 127.0.0.1:@PORT@, upstream: origin }
upstreams:
  - { name: origin, targets: [ { address: 127.0.0.1:$ORIGIN_PORT } ] }
EOF
}

# Plain proxying plus a policy chain: api-key, a rate limit that never trips (so every request pays for the
# count), and a request header transform. STORE is `memory` or a redis URL.
portico_chain_config() {
  local store=$1 state='{ store: memory }'
  [[ $store == memory ]] || state="{ store: redis, url: \"$store\" }"
  cat <<EOF
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:@PORT@ }
upstreams:
  - name: origin
    targets: [ { url: http://127.0.0.1:$ORIGIN_PORT } ]
consumers:
  - { name: bench, apiKeys: [ "$BENCH_API_KEY" ] }
policies:
  key: { type: api-key, header: x-api-key }
  limit: { type: rate-limit, limit: 1000000000, per: 1m, key: consumer }
  shape: { type: transform, request: { headers: { set: { x-bench: "1" } } } }
routes:
  - { name: all, match: { path: /* }, policies: [key, limit, shape], upstream: origin }
state: $state
EOF
}

# Plain proxying behind an https listener (h2 and http/1.1 by ALPN).
portico_https_config() {
  cat <<EOF
listeners:
  - name: web
    protocol: https
    address: 127.0.0.1:@PORT@
    tls: { certificates: [ { cert: $WORK/tls/cert.pem, key: $WORK/tls/key.pem } ] }
upstreams:
  - name: origin
    targets: [ { url: http://127.0.0.1:$ORIGIN_PORT } ]
routes:
  - { name: all, match: { path: /* }, upstream: origin }
EOF
}

# Plain proxying with the route's cache (memory store, the default), fresh for a minute.
portico_cache_config() {
  cat <<EOF
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:@PORT@ }
upstreams:
  - name: origin
    targets: [ { url: http://127.0.0.1:$ORIGIN_PORT } ]
routes:
  - { name: all, match: { path: /* }, cache: { ttl: 60s }, upstream: origin }
EOF
}
