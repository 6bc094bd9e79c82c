#!/usr/bin/env bash
# Checks Cargo.lock against the RustSec advisory database with `cargo audit` (installed
# here from crates.io when missing). The database is the snapshot in .ci/advisory-db
# (see its SNAPSHOT file): this machine's network reaches crates.io, not the advisory
# repository. Accepted advisories are listed, each with its reason, in .cargo/audit.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo audit --version >/dev/null 2>&1; then
    echo "audit-deps: installing cargo-audit 0.22.2 (once; a few minutes)"
    cargo install cargo-audit --locked --version 0.22.2 --no-default-features --quiet
fi
cargo audit --db .ci/advisory-db --no-fetch --deny warnings
