#!/usr/bin/env bash
# The project's test command (README): style gates, cargo audit and cargo deny, one
# release build, the unit and C-ABI integration tests, the exported-symbol check, the
# same tests under the pure-Rust `rustcrypto` backend, the conformance runner with real
# clients, then the benchmark harness in quick mode (with Kryoptic and the rustcrypto
# build beside SoftHSM2). Fails when any stage fails or when no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The pure-Rust build goes to its own target directory, so building it never
# invalidates the default build that every other stage reuses.
rustcrypto=(--no-default-features --features rustcrypto --target-dir target/rustcrypto)

echo "== style: cargo fmt, clippy (both crypto backends)"
cargo fmt --check
cargo clippy --release --all-targets --quiet -- -D warnings
cargo clippy --release --all-targets --quiet "${rustcrypto[@]}" -- -D warnings

echo "== dependencies: cargo audit and cargo deny (advisories, licences, duplicates, sources)"
bash scripts/audit-deps.sh

echo "== build (release, reused by every stage below)"
cargo build --release --quiet

echo "== unit and integration tests"
cargo test --release --no-fail-fast 2>&1 | tee "$log"
passed=$(grep -Eo 'test result: .* ([0-9]+) passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
if [ "$passed" -eq 0 ]; then
    echo "no tests ran: treating as a failure" >&2
    exit 1
fi
echo "cargo tests: $passed passed, $failed failed"

# The same C-ABI test files against the PostgreSQL backend: tests/common's config writer
# names a fresh database on a server it starts (common/postgres.rs) when CV_TEST_STORE is
# `postgres`. Reuses the release build above. Skipped: the cases that read or edit the
# SQLite file itself (tampering, bytes at rest, a copied store), which have no meaning on
# a server; store_backends.rs runs the store's contract on both in the stage above.
echo "== C-ABI tests against the PostgreSQL store backend (CV_TEST_STORE=postgres)"
pg_tests=(--test hierarchy --test objects --test concurrency --test audit --test audit_batching
    --test audit_usage --test message_iv --test token --test cvault --test multihost --test recover
    --test quorum --test quorum_requests --test recovery_kit)
pg_skip=(verify_without_a_store a_backup_file_is_recovered_onto_a_new_root
    audit_verify_after_a_recovery_still_catches_tampering)
skips=()
for s in "${pg_skip[@]}"; do skips+=(--skip "$s"); done
CV_TEST_STORE=postgres cargo test --release --no-fail-fast "${pg_tests[@]}" -- "${skips[@]}" 2>&1 | tee "$log"
pg_passed=$(grep -Eo 'test result: .* ([0-9]+) passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
if [ "$pg_passed" -eq 0 ]; then
    echo "no tests ran against PostgreSQL: treating as a failure" >&2
    exit 1
fi
echo "cargo tests (PostgreSQL): $pg_passed passed"

echo "== exported symbols: the PKCS#11 entry points only, no crypto library's symbols"
so=$(bash scripts/release-dir.sh)/libcollabvault_pkcs11.so
leaked=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^C_' || true)
if [ -n "$leaked" ]; then
    echo "the module exports symbols besides C_*:" >&2
    echo "$leaked" | head -20 >&2
    exit 1
fi
echo "exported: $(nm -D --defined-only "$so" | grep -c ' C_') C_* functions, nothing else"

echo "== unit and integration tests under the rustcrypto backend (pure Rust, no C crypto)"
if cargo tree -e normal "${rustcrypto[@]:0:3}" -i aws-lc-sys >/dev/null 2>&1; then
    echo "the rustcrypto build depends on aws-lc-sys" >&2
    exit 1
fi
cargo test --release --no-fail-fast "${rustcrypto[@]}" 2>&1 | tee "$log"
rc_passed=$(grep -Eo 'test result: .* ([0-9]+) passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
rc_failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
if [ "$rc_passed" -eq 0 ]; then
    echo "no tests ran under rustcrypto: treating as a failure" >&2
    exit 1
fi
echo "cargo tests (rustcrypto): $rc_passed passed, $rc_failed failed"

echo "== conformance with real clients"
bash conformance/run.sh

# `cargo bench` uses the bench profile, which inherits release: it reuses the
# dependencies and the library built above and compiles only the bench binary. Quick
# mode runs every row briefly on small stores and writes nothing; it fails only when a
# row cannot run, never because of a speed.
# Kryoptic, the second peer, is built from crates.io and cached (instant when built);
# a machine that cannot build it still runs the benchmark, without its column.
# The rustcrypto column is the module's pure-Rust build from the stage above
# (target/rustcrypto/release/libcollabvault_pkcs11.so); the build here is instant then,
# and makes sure the library exists, so the quick run shows both backends.
echo "== benchmark harness (quick mode)"
cargo build --release --quiet "${rustcrypto[@]}"
bash scripts/build-kryoptic.sh >/dev/null ||
    echo "build-kryoptic failed (above): the benchmark runs without its Kryoptic column" >&2
cargo bench --bench compare -- --quick
echo "== quorum benchmark (quick mode): unlock latency, wrap/unwrap under a grant"
cargo bench --bench quorum -- --quick
