#!/usr/bin/env bash
# The long soak (README, "Soak"): tests/soak.rs for SOAK_SECONDS (default 600): two
# processes of eight threads mixing every operation, with rotation, the stored-DEK
# re-wrap and logins/logouts in the background; fails on any error, a stalled thread,
# growing memory or a missing audit entry. CI runs the same test for 15 s as part of
# `cargo test`. Prints the operations per kind, the audit entries, RSS first/last/max and
# the length; runs niced (the machine may be shared).
#
#   bash scripts/soak.sh                     # 10 minutes
#   SOAK_SECONDS=120 bash scripts/soak.sh    # a shorter run
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECONDS=${SOAK_SECONDS:-600}
cargo build --release --quiet
start=$(date +%s)
status=0
nice -n 10 cargo test --release --quiet --test soak -- --nocapture 2>&1 || status=1
echo "soak.sh: $(($(date +%s) - start)) s wall in all; status $status"
exit $status
