#!/usr/bin/env bash
# `pipecast report` in a real browser: writes the report of the test scenario's simulation, runs
# and plan, loads it in headless Chromium, and checks that the page logs nothing to the console
# (no error, no warning), that every section and every picture is in the rendered DOM, and takes
# a screenshot (report.png in OUT_DIR, for a person to look at).
#
# Usage: report_browser_test.sh PIPECAST_EXE OUT_DIR   (run from the source directory)
# Exit 77 (ctest: skipped) only when Chromium is missing and cannot be installed (Debian's
# `chromium` package, with apt-get as root).
set -euo pipefail
pipecast="$1"
out="$2"
mkdir -p "$out"

find_chromium() {
  for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

if ! browser="$(find_chromium)"; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "report_browser_test: installing Debian's chromium" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2; } ||
      true
  fi
  if ! browser="$(find_chromium)"; then
    echo "report_browser_test: SKIPPED: no chromium and it cannot be installed here" \
         "(apt-get install chromium as root)" >&2
    exit 77
  fi
fi

"$pipecast" sim tests/cli/data/toy-report.yaml --format json -o "$out/sim.json"
"$pipecast" report "$out/sim.json" tests/cli/data/run-toy-report.json \
  tests/cli/data/plan-toy-report.json -o "$out/report.html"

flags=(--headless --disable-gpu --no-sandbox --no-first-run --disable-extensions
       --user-data-dir="$out/profile" --enable-logging=stderr --v=0)
url="file://$(cd "$out" && pwd)/report.html"
timeout 120 "$browser" "${flags[@]}" --dump-dom "$url" >"$out/dom.html" 2>"$out/console.log"

status=0
if grep -E "CONSOLE|Uncaught|net::ERR_" "$out/console.log"; then
  echo "FAIL: the page logged to the console (above; all of it in $out/console.log)" >&2
  status=1
fi
for id in summary timelines bubbles memory staleness training pareto; do
  if ! grep -q "<section id=\"$id\">" "$out/dom.html"; then
    echo "FAIL: section '$id' is not in the rendered page" >&2
    status=1
  fi
done
in_file=$(grep -o "<svg " "$out/report.html" | wc -l)
in_dom=$(grep -o "<svg " "$out/dom.html" | wc -l)
if [ "$in_file" -lt 10 ] || [ "$in_file" -ne "$in_dom" ]; then
  echo "FAIL: $in_file pictures in the file, $in_dom in the rendered page" >&2
  status=1
fi

timeout 120 "$browser" "${flags[@]}" --hide-scrollbars --window-size=1280,6000 \
  --screenshot="$out/report.png" "$url" >/dev/null 2>>"$out/console.log"
if [ ! -s "$out/report.png" ] || [ "$(head -c 4 "$out/report.png" | od -An -c | tr -d ' ')" != "211PNG" ]; then
  echo "FAIL: no screenshot" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "report_browser_test: ok; screenshot $out/report.png" \
  "($in_dom pictures, $(stat -c %s "$out/report.png") bytes)"
exit "$status"
