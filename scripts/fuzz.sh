#!/usr/bin/env bash
# The long fuzz run (README, "Fuzzing"): every fuzz target of tests/fuzz_abi.rs and
# tests/fuzz_decoders.rs for FUZZ_SECONDS each (default 3600: an hour per target), one
# after the other. CI runs the same targets with their short defaults (20 s for the C ABI,
# 5 s per decoder) as part of `cargo test`. A failure prints FUZZ_SEED=<seed>; replay it
# with that variable set (one case, no budget). Reports the CPU time spent.
# FUZZ_CPU_SECONDS=N budgets N seconds of CPU time per target instead of wall time (the
# test process's and its children's), so that a run on a busy machine still buys what it
# reports; each target prints its cases, wall and CPU seconds.
#
#   bash scripts/fuzz.sh                         # an hour per target
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh        # ten minutes per target
#   FUZZ_CPU_SECONDS=900 bash scripts/fuzz.sh    # fifteen CPU-minutes per target
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_SECONDS=${FUZZ_SECONDS:-3600}
cargo build --release --quiet
start=$(date +%s)
status=0
for target in fuzz_abi fuzz_decoders; do
    echo "== $target: ${FUZZ_SECONDS}s per test"
    # --test-threads=1: the C ABI target holds the process-wide module; the decoders
    # then share the two cores with nothing else.
    /usr/bin/time -f "$target: %U s user, %S s system, %e s wall" \
        cargo test --release --quiet --test "$target" -- --nocapture --test-threads=1 || status=1
done
echo "fuzz.sh: $(($(date +%s) - start)) s wall in all; status $status"
exit $status
