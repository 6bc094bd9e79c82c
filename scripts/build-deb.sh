#!/usr/bin/env bash
# Builds the Debian package, collabvault_<version>_amd64.deb, from the release build:
#
#   bash scripts/build-deb.sh          # builds the release first only when it is missing
#
# The package is assembled with dpkg-deb from the files in pkg/debian/ (no debian/ source
# tree, no cargo-deb: the release build is packaged as it is, never rebuilt, so CI pays
# for one build). Version from Cargo.toml; Depends from dpkg-shlibdeps; man pages and
# shell completions from `cvault man` and `cvault completions`. It lands beside the
# release build, in <target dir>/debian/; the last line printed is its path.
#
#   /usr/lib/x86_64-linux-gnu/pkcs11/libcollabvault_pkcs11.so   the module (multiarch dir)
#   /usr/share/p11-kit/modules/collabvault.module               p11-kit registration
#   /usr/bin/cvault, its man pages and bash/zsh/fish completions
#   /lib/systemd/system/collabvault-rotate@.{service,timer}     disabled by default
#   /usr/share/doc/collabvault/                                 README.Debian, examples/
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PKG=collabvault
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
REL=$(bash scripts/release-dir.sh)

if [ ! -f "$REL/libcollabvault_pkcs11.so" ] || [ ! -x "$REL/cvault" ]; then
    echo "build-deb: no release build in $REL; building it"
    cargo build --release --quiet --lib --bin cvault
fi

cargo_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
# Debian orders a pre-release (1.0.0-rc.1) before its release only with a tilde.
VERSION=${cargo_version//-/\~}
description=$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
MAINTAINER=${DEB_MAINTAINER:-CollabVault maintainers <maintainers@collabvault.example>}
# Reproducible: every timestamp is the last commit's (or SOURCE_DATE_EPOCH).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

OUT=$(dirname "$REL")/debian
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
umask 022
D=$STAGE/$PKG
DOC=$D/usr/share/doc/$PKG

install -D -m 0644 "$REL/libcollabvault_pkcs11.so" "$D/usr/lib/$MULTIARCH/pkcs11/libcollabvault_pkcs11.so"
install -D -m 0755 "$REL/cvault" "$D/usr/bin/cvault"
# Debian policy 10.1: installed binaries are stripped (the debug info would triple them).
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$D/usr/lib/$MULTIARCH/pkcs11/libcollabvault_pkcs11.so" "$D/usr/bin/cvault"
install -D -m 0644 pkg/debian/collabvault.module "$D/usr/share/p11-kit/modules/collabvault.module"
for unit in 'collabvault-rotate@.service' 'collabvault-rotate@.timer'; do
    install -D -m 0644 "pkg/debian/$unit" "$D/lib/systemd/system/$unit"
done
install -D -m 0644 pkg/debian/copyright "$DOC/copyright"
install -D -m 0644 pkg/debian/README.Debian "$DOC/README.Debian"
install -D -m 0644 examples/config/collabvault.toml "$DOC/examples/collabvault.toml"
install -D -m 0644 pkg/debian/rotate.env "$DOC/examples/rotate.env"
{
    printf '%s (%s) unstable; urgency=medium\n\n' "$PKG" "$VERSION"
    printf '  * Built from the CollabVault source tree at %s.\n\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf ' -- %s  %s\n' "$MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$DOC/changelog.gz"

# Man pages and completions come from cvault itself (clap_mangen, clap_complete).
"$REL/cvault" man "$STAGE/man" >/dev/null || { echo "build-deb: \`cvault man\` failed" >&2; exit 1; }
ls "$STAGE/man"/cvault.1 >/dev/null || { echo "build-deb: \`cvault man\` wrote no cvault.1" >&2; exit 1; }
install -d "$D/usr/share/man/man1"
for page in "$STAGE/man"/*.1; do gzip -9n <"$page" >"$D/usr/share/man/man1/$(basename "$page").gz"; done
completion() { # SHELL DEST
    local tmp=$STAGE/completion.$1
    "$REL/cvault" completions "$1" >"$tmp" && [ -s "$tmp" ] ||
        { echo "build-deb: \`cvault completions $1\` failed" >&2; exit 1; }
    install -D -m 0644 "$tmp" "$D/$2"
}
completion bash usr/share/bash-completion/completions/cvault
completion zsh usr/share/zsh/vendor-completions/_cvault
completion fish usr/share/fish/vendor_completions.d/cvault.fish

# Depends: the shared libraries the two binaries need, as dpkg-shlibdeps finds them
# (it wants a debian/control beside it; a minimal one in the stage serves).
mkdir -p "$STAGE/src/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" >"$STAGE/src/debian/control"
depends=$(cd "$STAGE/src" && dpkg-shlibdeps -O -e"$D/usr/lib/$MULTIARCH/pkcs11/libcollabvault_pkcs11.so" \
    -e"$D/usr/bin/cvault" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')

install -d "$D/DEBIAN"
cat >"$D/DEBIAN/control" <<CONTROL
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$D" | cut -f1)
Depends: $depends
Recommends: p11-kit, p11-kit-modules
Suggests: opensc, softhsm2
Section: utils
Priority: optional
Homepage: https://collabvault.example/
Description: PKCS#11 token with an enterprise key hierarchy behind it
$(printf '%s.\n' "$description" | fold -s -w 72 | sed 's/ *$//; s/^/ /')
 .
 Applications that speak PKCS#11 (p11-kit, GnuTLS, NSS and Firefox through
 p11-kit-proxy, OpenSSL's pkcs11 engine, Java SunPKCS11, pkcs11-tool) see an
 ordinary token; behind it a root key in an HSM slot or a software root seals
 workspace master keys in versions, which wrap per-record data keys. Every key
 operation lands in a hash-chained, signed audit log.
 .
 This package installs the module in the multiarch PKCS#11 directory and
 registers it with p11-kit, and ships the cvault admin tool and systemd timer
 units (disabled) for scheduled master key rotation.
CONTROL
(cd "$D" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$D/DEBIAN/md5sums"
chmod 0644 "$D/DEBIAN/control" "$D/DEBIAN/md5sums"
find "$D" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$OUT"
deb=$OUT/${PKG}_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$D" "$deb" >/dev/null
echo "build-deb: built $(basename "$deb") ($(du -h "$deb" | cut -f1)) from $REL"
echo "$deb"
