#!/usr/bin/env bash
# Sets up and builds (scripts/setup.sh), then runs `pipecast` with the given arguments;
# with none, `pipecast sim` on the built-in default scenario.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh" >&2
if [ $# -eq 0 ]; then set -- sim; fi
exec "$root/build/cli/pipecast" "$@"
