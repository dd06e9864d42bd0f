#!/usr/bin/env bash
# Runs berth's tests on a fresh machine: installs what they need, lints, then pytest.
# Needs root (containers are real). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

BERTH_EXTRAS="[test]" ./scripts/install-deps.sh
.venv/bin/ruff check berth tests bench scripts
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
code=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure of the suite, not a pass.
exit $code
