#!/usr/bin/env bash
# The long crash run (README, "Crashes"): every scenario of tests/crashes.rs with
# CRASH_KILLS kills each (default 1000): a rotation, the stored-DEK re-wrap job and
# `cvault master rewrap` killed with SIGKILL at a random instant, and the power-loss
# analogue (the store copied at a random instant, its WAL cut). CI runs the same
# scenarios with 6 kills each as part of `cargo test`. Each scenario prints its seed;
# CRASH_SEED=<seed> replays it. Reports kills, wall time and the outcome.
#
#   bash scripts/crash.sh                    # 1000 kills per scenario
#   CRASH_KILLS=100 bash scripts/crash.sh    # a shorter run
set -euo pipefail
cd "$(dirname "$0")/.."
export CRASH_KILLS=${CRASH_KILLS:-1000}
cargo build --release --quiet
start=$(date +%s)
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --test-threads=1: the scenarios share the process-wide module (they take its lock anyway).
cargo test --release --quiet --test crashes -- --nocapture --test-threads=1 2>&1 | tee "$log" || status=1
echo "== summary"
grep -Eo 'crashes::.*' "$log" || true
echo "crash.sh: $(($(date +%s) - start)) s wall in all; status $status"
exit $status
