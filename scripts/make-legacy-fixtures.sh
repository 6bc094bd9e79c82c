#!/usr/bin/env bash
# Regenerates tests/fixtures/legacy-0f68ed4/: stores made by the previous release (commit
# 0f68ed4, before the PIN and root-of-trust fixes), which tests/pin_hardening.rs and
# tests/root_binding.rs upgrade with the current module. It
#   1. builds that release's module from `git archive 0f68ed4` in a temp dir, with its own
#      CARGO_TARGET_DIR seeded from this checkout's target/release to reuse dependencies
#      (skipped when CV_PREVIOUS_MODULE names an already built .so of that release);
#   2. runs the ignored `write_legacy_fixture` tests, which drive it through its C ABI:
#      soft/ (software root) and hsm/ (a SoftHSM2 token as root: store plus token
#      directory), each with a manifest.toml of PINs, labels and expected plaintexts;
#   3. runs the upgrade tests on what it wrote.
# Output: tests/fixtures/legacy-0f68ed4/, or CV_LEGACY_FIXTURES when set.
# Needs: cargo, softhsm2 (scripts/install-deps.sh).
set -euo pipefail

PREVIOUS=0f68ed4
cd "$(dirname "$0")/.."
top=$PWD

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ -z "${CV_PREVIOUS_MODULE:-}" ]]; then
    echo "building the module of $PREVIOUS in $work" >&2
    mkdir -p "$work/src" "$work/target"
    git archive "$PREVIOUS" | tar -x -C "$work/src"
    if [[ -d target/release ]]; then
        mkdir -p "$work/target/release"
        for d in deps build .fingerprint; do
            [[ -d target/release/$d ]] && cp -a "target/release/$d" "$work/target/release/"
        done
    fi
    (cd "$work/src" && CARGO_TARGET_DIR="$work/target" cargo build --release --locked --lib)
    cp "$work/target/release/libcollabvault_pkcs11.so" "$work/previous.so"
    rm -rf "$work/target" "$work/src"
    export CV_PREVIOUS_MODULE="$work/previous.so"
fi

out=${CV_LEGACY_FIXTURES:-$top/tests/fixtures/legacy-$PREVIOUS}
export CV_LEGACY_FIXTURES=$out
tests=(--test pin_hardening --test root_binding)
cargo test --release "${tests[@]}" write_legacy_fixture -- --ignored --exact
unset CV_PREVIOUS_MODULE
cargo test --release "${tests[@]}" previous_release
du -ab "$out" | sort -k2
