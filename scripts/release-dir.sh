#!/usr/bin/env bash
# Prints the directory where `cargo build --release` puts this crate's artifacts, the way
# cargo itself decides it: `cargo metadata` resolves CARGO_TARGET_DIR, `build.target-dir`
# in any .cargo/config.toml and the default `target/`; CARGO_BUILD_TARGET (a target triple)
# adds its own level. The scripts find the module and `cvault` through this, never by
# assuming `target/release`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
meta=$(cargo metadata --format-version 1 --no-deps --offline --manifest-path "$root/Cargo.toml")
dir=$(grep -o '"target_directory":"[^"]*"' <<<"$meta" | head -n1 | cut -d'"' -f4)
[ -n "$dir" ] || { echo "release-dir: cargo metadata named no target directory" >&2; exit 1; }
triple=${CARGO_BUILD_TARGET:-}
echo "$dir${triple:+/$triple}/release"
