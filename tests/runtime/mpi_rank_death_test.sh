#!/usr/bin/env bash
# A rank that dies makes every other rank exit non-zero within the deadline, with a report that
# names it. Usage: mpi_rank_death_test.sh MPIEXEC MPI_EXECUTOR_TEST
set -u
mpiexec="$1"
binary="$2"
out=$(mktemp)
start=$(date +%s)
timeout 100 "$mpiexec" --allow-run-as-root --oversubscribe -np 4 "$binary" --die-rank 2 >"$out" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
cat "$out"
if [ "$rc" -eq 0 ]; then echo "FAIL: the job exited 0 although rank 2 died"; exit 1; fi
if [ "$rc" -eq 124 ]; then echo "FAIL: the job hung until the test's timeout"; exit 1; fi
if [ "$elapsed" -gt 60 ]; then echo "FAIL: the job took ${elapsed}s to stop"; exit 1; fi
# Our own report ("rank 2"), or Open MPI's ("Process name: [[job,1],2]").
if ! grep -Eq "rank 2|\],2\]" "$out"; then echo "FAIL: no report names rank 2"; exit 1; fi
echo "PASS: exit code $rc after ${elapsed}s, rank 2 named"
