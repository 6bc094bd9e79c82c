#!/usr/bin/env bash
# Checks the dependency tree: `cargo audit` (Cargo.lock against the RustSec advisory
# database) and `cargo deny check` (advisories again, licences, duplicate versions and
# sources, as deny.toml says). Both are installed here from crates.io when missing, each
# at a pinned version with `cargo install --locked` (once per machine; cargo-deny takes
# about 4 CPU-minutes to build). The advisory database is the snapshot in .ci/advisory-db
# (see its SNAPSHOT file): this machine's network reaches crates.io, not the advisory
# repository. Accepted advisories are listed, each with its reason, in .cargo/audit.toml
# and deny.toml (the same one in both).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo audit --version >/dev/null 2>&1; then
    echo "audit-deps: installing cargo-audit 0.22.2 (once; a few minutes)"
    cargo install cargo-audit --locked --version 0.22.2 --no-default-features --quiet
fi
cargo audit --db .ci/advisory-db --no-fetch --deny warnings

deny_version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $deny_version" ]; then
    echo "audit-deps: installing cargo-deny $deny_version (once; a few minutes)"
    cargo install cargo-deny --locked --version "$deny_version" --quiet
fi

# cargo-deny reads advisory databases only as git checkouts under `db-path`, in a
# directory named after the database's URL (this name is the default RustSec URL's, as
# cargo-deny 0.20 derives it), and with --offline it judges the checkout's age by its
# HEAD commit: so the snapshot becomes a one-commit repository dated the day it was
# taken, and `maximum-db-staleness` in deny.toml makes the check fail once the snapshot
# is too old (refresh it then, as its SNAPSHOT file says). Rebuilt when the snapshot changes.
db=target/advisory-dbs/advisory-db-3157b0e258782691
taken=$(grep -Eo '\(20[0-9]{2}-[0-9]{2}-[0-9]{2}\)' .ci/advisory-db/SNAPSHOT | tr -d '()')
if ! cmp -s .ci/advisory-db/SNAPSHOT "$db/SNAPSHOT"; then
    rm -rf "$db"
    mkdir -p "$db"
    cp -R .ci/advisory-db/. "$db/"
    git -C "$db" init --quiet
    git -C "$db" add --all
    GIT_AUTHOR_DATE="${taken}T00:00:00Z" GIT_COMMITTER_DATE="${taken}T00:00:00Z" \
        git -C "$db" -c user.name=audit-deps -c user.email=audit-deps@localhost -c commit.gpgsign=false \
        commit --quiet -m "RustSec advisory-db snapshot of $taken (.ci/advisory-db)"
    touch -d "${taken}T00:00:00Z" "$db/.git/HEAD"
fi
cargo deny --offline --locked check --show-stats
