#!/usr/bin/env bash
# Sets up and builds (scripts/setup.sh), installs Debian's chromium when it is missing (the
# report's browser test, ctest label `browser`, loads the page in it), then runs the whole test
# suite with ctest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
if ! command -v chromium >/dev/null 2>&1; then
  echo "test: installing chromium" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
fi
cd "$root"
ctest --preset default -j "$(nproc 2>/dev/null || echo 2)" "$@"
