#!/usr/bin/env bash
# Real processes find each other through the TCP store under each launcher's variables: four
# ranks started as torchrun starts them, four as srun does (MASTER_ADDR/MASTER_PORT exported),
# three under mpirun when MPIEXEC is given; every rank must get rank 0's value and rank 0 must
# read every rank's own view of its environment. A bad environment fails naming the variable.
# Usage: launch_probe_test.sh LAUNCH_PROBE [MPIEXEC]
set -u
probe="$1"
mpiexec="${2:-}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; for f in "$dir"/*; do echo "== $f"; cat "$f"; done; exit 1; }
# Launcher variables of the environment running the test must not win over ours.
clean="env -u RANK -u WORLD_SIZE -u LOCAL_RANK -u OMPI_COMM_WORLD_RANK -u PMI_RANK -u SLURM_PROCID"

# check NAME WORLD LAUNCHER: every rank exchanged rank 0's id; rank 0 saw every rank.
check() {
  local name=$1 world=$2 launcher=$3
  for ((r = 0; r < world; ++r)); do
    grep -qx "rank $r exchanged 'id of a world of $world'" "$dir/$name".* ||
      fail "$name: rank $r did not get rank 0's id"
    grep -q "seen by rank 0: rank $r of $world (local rank [0-9]*, $launcher)" "$dir/$name".* ||
      fail "$name: rank 0 did not see rank $r under $launcher"
  done
  echo "PASS: $name, $world ranks"
}

# start NAME WORLD VARS...: WORLD processes, VARS with {r} replaced by the rank.
start() {
  local name=$1 world=$2
  shift 2
  local pids=()
  for ((r = 0; r < world; ++r)); do
    $clean ${@//\{r\}/$r} timeout 60 "$probe" >"$dir/$name.$r" 2>&1 &
    pids+=($!)
  done
  for ((r = 0; r < world; ++r)); do
    wait "${pids[$r]}" || fail "$name: rank $r exited with $?"
  done
}

port=$("$probe" --free-port) || fail "no free port"
start torchrun 4 RANK={r} WORLD_SIZE=4 LOCAL_RANK={r} MASTER_ADDR=127.0.0.1 MASTER_PORT=$port
check torchrun 4 torchrun

port=$("$probe" --free-port) || fail "no free port"
start srun 4 SLURM_PROCID={r} SLURM_NTASKS=4 SLURM_LOCALID={r} MASTER_ADDR=localhost \
  MASTER_PORT=$port
check srun 4 slurm

if [ -n "$mpiexec" ]; then
  port=$("$probe" --free-port) || fail "no free port"
  $clean MASTER_ADDR=127.0.0.1 MASTER_PORT=$port timeout 60 "$mpiexec" --allow-run-as-root \
    --oversubscribe -x MASTER_ADDR -x MASTER_PORT -np 3 "$probe" >"$dir/mpirun.all" 2>&1 ||
    fail "mpirun: the job exited with $?"
  check mpirun 3 mpirun
fi

# A rank numbered past the world fails at once, naming the variables.
$clean RANK=5 WORLD_SIZE=4 LOCAL_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 "$probe" \
  >"$dir/bad" 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "a bad environment exited with $rc, not 2"
grep -q "RANK=5 is not below WORLD_SIZE=4" "$dir/bad" || fail "the error does not name RANK"
echo "PASS: a bad environment names the variable"
