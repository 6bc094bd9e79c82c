#!/usr/bin/env bash
# Runs every script in conformance/ (the clients against the built module, and package.sh,
# the Debian package installed, used and removed) and prints the scoreboard:
# `client / case / PASS|FAIL|SKIP`, then `N passed, N failed`. Each script also runs alone.
# A client whose tool is missing fails (CI installs every tool; see scripts/install-deps.sh).
set -uo pipefail
cd "$(dirname "$0")"
export CV_RESULTS
CV_RESULTS=$(mktemp)
trap 'rm -f "$CV_RESULTS"' EXIT

for script in ./*.sh; do
    case "$script" in ./lib.sh | ./run.sh) continue ;; esac
    client=$(basename "$script" .sh)
    if ! bash "$script"; then
        echo "$client / script / FAIL" | tee -a "$CV_RESULTS"
    fi
done

passed=$(grep -c '/ PASS$' "$CV_RESULTS")
failed=$(grep -c '/ FAIL' "$CV_RESULTS")
skipped=$(grep -c '/ SKIP$' "$CV_RESULTS")
echo
echo "conformance: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
