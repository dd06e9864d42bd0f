#!/usr/bin/env bash
# Sets berth up on this machine and runs a first container:
# Debian packages, the virtualenv, berthd in the background (state in /var/lib/berth and
# /run/berth), the busybox base image, then `berth run --rm busybox echo hello from berth`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

./scripts/install-deps.sh
ln -sf "$repo/.venv/bin/berth" /usr/local/bin/berth
ln -sf "$repo/.venv/bin/berthd" /usr/local/bin/berthd
ln -sf "$repo/.venv/bin/berth-runtime" /usr/local/bin/berth-runtime

export BERTH_HOST=unix:///run/berth/berth.sock
if ! berth version >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup "$repo/.venv/bin/berthd" --data-root /var/lib/berth --exec-root /run/berth \
    -H "$BERTH_HOST" >>/var/log/berthd.log 2>&1 &
  for _ in $(seq 100); do
    berth version >/dev/null 2>&1 && break
    sleep 0.1
  done
  berth version >/dev/null || { echo "berthd did not start; see /var/log/berthd.log"; exit 1; }
fi

if ! berth inspect --type image busybox >/dev/null 2>&1; then
  .venv/bin/python scripts/busybox_rootfs.py | berth import -c 'CMD ["sh"]' - busybox:latest
fi

berth run --rm busybox echo hello from berth
