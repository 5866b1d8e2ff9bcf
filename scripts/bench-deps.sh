#!/usr/bin/env bash
# Debian packages bench:service runs: wrk (HTTP load), redis-server + redis-tools (the Redis peer and
# redis-benchmark), postgresql (initdb, pg_ctl, pgbench). Installs only what is missing, with one
# `apt-get update` first; prints nothing when everything is there. Idempotent.
set -euo pipefail
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || ! compgen -G '/usr/lib/postgresql/*/bin/pgbench' >/dev/null; then
  missing+=(postgresql)
fi
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "bench-deps: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "bench-deps: installing ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
