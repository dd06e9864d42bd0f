#!/usr/bin/env bash
# Installs what berth needs on a Debian 12 machine: Debian packages and a virtualenv at .venv.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(busybox-static iproute2 runc crun skopeo python3-venv gcc libc6-dev libseccomp2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extras=${BERTH_EXTRAS:-}
# (Re)install also when berth or berth-runtime is still a generated console script (it
# imports re before anything else): they have lean launchers of their own now.
if ! .venv/bin/python -c "import berth, h11" 2>/dev/null || [ -n "$extras" ] \
    || ! grep -q "not pip's generated console script" .venv/bin/berth 2>/dev/null \
    || ! grep -q "not pip's generated console script" .venv/bin/berth-runtime 2>/dev/null; then
  # compat mode puts a plain path in a .pth file: no import hook (and no pathlib) at start-up.
  .venv/bin/pip install -q --disable-pip-version-check -e ".${extras}" \
    --config-settings editable_mode=compat
fi
# Byte-compile now: with PYTHONDONTWRITEBYTECODE set, every start would compile the sources.
.venv/bin/python -m compileall -q berth >/dev/null
