#!/usr/bin/env bash
# The Debian package (scripts/build-deb.sh) on this machine, as an operator meets it: built
# from the release build, lintian reports no errors (its warnings are listed), `dpkg -i`
# puts the module in the multiarch PKCS#11 directory and registers it with p11-kit, so
# `p11-kit list-modules` shows it and pkcs11-tool uses the token through p11-kit-proxy.so
# and by the multiarch path; `cvault`, `man cvault`, the completions, the example config
# and the rotation timer (disabled) are in place; `dpkg -r` and `dpkg -P` take every file
# of the package away and leave the user's store alone.
#
# It changes the machine (the package is installed and removed again, also when a case
# fails), so it needs root or password-less sudo, and it refuses to touch a machine where a
# collabvault package is already installed.
source "$(dirname "$0")/lib.sh"
CLIENT=package
need_tool tools dpkg dpkg-deb dpkg-shlibdeps lintian p11-kit pkcs11-tool man strip || exit 0
if [ "$(id -u)" -eq 0 ]; then
    as_root() { "$@"; }
elif sudo -n true 2>/dev/null; then
    as_root() { sudo -n "$@"; }
else
    echo "$CLIENT / install / SKIP" | tee -a "$CV_RESULTS"
    echo "    | installing a package needs root or password-less sudo"
    exit 0
fi
if dpkg-query -W -f='${Status}' collabvault 2>/dev/null | grep -q 'ok installed'; then
    echo "$CLIENT / install / SKIP" | tee -a "$CV_RESULTS"
    echo "    | collabvault $(dpkg-query -W -f='${Version}' collabvault) is installed on this machine; not replacing it"
    exit 0
fi
fresh_workspace
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
MA_MODULE=/usr/lib/$MULTIARCH/pkcs11/libcollabvault_pkcs11.so
PROXY=$(dpkg -L p11-kit-modules 2>/dev/null | grep '/p11-kit-proxy\.so$' | head -n1 || true)
LABEL=package
# The module as a user meets it: no config, so the per-user store under XDG_DATA_HOME
# (the private home's). As root p11-kit reads only the system config, where the package
# registered the module.
unset COLLABVAULT_CONF
export HOME=$CV_HOME
USER_STORE=$XDG_DATA_HOME/collabvault

# dpkg waits for nobody: retry while another apt/dpkg holds the lock.
dpkg_locked() {
    local i out
    for i in $(seq 60); do
        out=$(as_root "$@" 2>&1) && { printf '%s\n' "$out"; return 0; }
        grep -q 'lock' <<<"$out" || { printf '%s\n' "$out"; return 1; }
        sleep 2
    done
    printf '%s\n' "$out"
    return 1
}
# Whatever happens, the machine ends without the package.
cleanup() {
    if dpkg-query -W -f='${Status}' collabvault 2>/dev/null | grep -q 'installed'; then
        dpkg_locked dpkg -P collabvault >/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

build() {
    bash "$CV_ROOT/scripts/build-deb.sh" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; return 1; }
    cat "$WORK/build.log"
    DEB=$(tail -n1 "$WORK/build.log")
}
build_out=$(build) && DEB=$(tail -n1 <<<"$build_out") || DEB=
expect_output build-deb "^build-deb: built collabvault_[0-9][^ ]*_amd64\.deb" printf '%s\n' "$build_out"
[ -f "$DEB" ] || { echo "$CLIENT / package-file / FAIL" | tee -a "$CV_RESULTS"; exit 0; }
check deb-version-is-cargo-version test "$(dpkg-deb -f "$DEB" Version)" = "$(sed -n 's/^version = "\(.*\)"$/\1/p' "$CV_ROOT/Cargo.toml" | head -n1 | tr - '~')"

# lintian: no errors; the warnings are shown under the case either way.
lintian --tag-display-limit 0 "$DEB" >"$WORK/lintian.log" 2>&1 || true
check lintian-no-errors bash -c "! grep -E '^E: ' '$WORK/lintian.log'"
grep -E '^[EW]: ' "$WORK/lintian.log" | sed 's/^/    | lintian: /' || true

# What the package may leave behind: nothing. Its files, and the directories it creates.
dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed -n 's|^\./|/|p' | sed 's|/$||' | grep -v '^$' >"$WORK/paths"
while read -r p; do [ -e "$p" ] || echo "$p"; done <"$WORK/paths" >"$WORK/new-paths"
check dpkg-install dpkg_locked dpkg -i "$DEB"
check module-in-multiarch-dir test -f "$MA_MODULE"
check p11-kit-module-file grep -qx 'module: libcollabvault_pkcs11.so' /usr/share/p11-kit/modules/collabvault.module
check cvault-in-usr-bin test "$(command -v cvault)" = /usr/bin/cvault
check example-config test -f /usr/share/doc/collabvault/examples/collabvault.toml
check rotation-timer-units test -f '/lib/systemd/system/collabvault-rotate@.timer' -a -f '/lib/systemd/system/collabvault-rotate@.service'
check rotation-timer-disabled bash -c "! ls /etc/systemd/system/*.wants/ 2>/dev/null | grep -q collabvault"
# systemd's own check of the units, as an instance (a template cannot be verified); it
# also finds /usr/bin/cvault.
verify_units() {
    local u
    for u in service timer; do cp "/lib/systemd/system/collabvault-rotate@.$u" "$WORK/collabvault-rotate@eng.$u"; done
    (cd "$WORK" && systemd-analyze verify --man=no ./collabvault-rotate@eng.timer ./collabvault-rotate@eng.service)
}
command -v systemd-analyze >/dev/null && check systemd-analyze-verify-units verify_units
expect_output rotation-service-runs-master-rotate-due 'ExecStart=/usr/bin/cvault .*master rotate --due' cat '/lib/systemd/system/collabvault-rotate@.service'
# The unit's command line is one cvault accepts (its --help parses the same arguments).
service_command_parses() {
    local cmd
    cmd=$(sed -n 's/^ExecStart=//p' '/lib/systemd/system/collabvault-rotate@.service' | sed 's/%i/engineering/g')
    # shellcheck disable=SC2086 # the unit's words, split as systemd splits them
    $cmd --help
}
expect_output rotation-service-command-parses "Usage: cvault master rotate" service_command_parses
expect_output man-cvault "cvault" bash -c "man -w cvault && MANPAGER=cat MANWIDTH=80 man cvault 2>/dev/null | head -n 5"
check completion-files test -s /usr/share/bash-completion/completions/cvault -a -s /usr/share/zsh/vendor-completions/_cvault -a -s /usr/share/fish/vendor_completions.d/cvault.fish
expect_output man-subcommand-page "cvault-master-rotate" bash -c "MANPAGER=cat MANWIDTH=80 man cvault-master-rotate 2>/dev/null | head -n 5"
expect_output bash-completion-loads "^complete .* cvault\$" bash -c "source /usr/share/bash-completion/completions/cvault && complete -p cvault"

# The token by the multiarch path, then through p11-kit.
p11() { pkcs11-tool --module "$MA_MODULE" "$@"; }
px() { pkcs11-tool --module "$PROXY" "$@"; }
check init-token-by-multiarch-path bash -c "pkcs11-tool --module '$MA_MODULE' --init-token --label '$LABEL' --so-pin '$SO_PIN' && pkcs11-tool --module '$MA_MODULE' --init-pin --so-pin '$SO_PIN' --pin '$USER_PIN'"
check user-store-in-xdg-data-home test -f "$USER_STORE/collabvault.sqlite3"
expect_output p11-kit-list-modules "^collabvault: " p11-kit list-modules
expect_output p11-kit-list-modules-token "token: $LABEL\$" p11-kit list-modules
expect_output proxy-lists-token "token label +: $LABEL\$" px --list-slots
expect_output proxy-keypairgen-ec-p256 "EC_PARAMS: +06082a8648ce3d030107" px --token-label "$LABEL" --login --pin "$USER_PIN" --keypairgen --key-type EC:prime256v1 --id 5a --label pkg-ec
printf 'signed through p11-kit-proxy\n' >"$WORK/msg.txt"
check proxy-sign-ecdsa px --token-label "$LABEL" --login --pin "$USER_PIN" --sign -m ECDSA-SHA256 --id 5a -i "$WORK/msg.txt" -o "$WORK/msg.sig"
expect_output multiarch-verifies-proxy-signature "^Signature is valid" p11 --login --pin "$USER_PIN" --verify -m ECDSA-SHA256 --id 5a -i "$WORK/msg.txt" --signature-file "$WORK/msg.sig"
# cvault finds the packaged module on its own (no COLLABVAULT_MODULE).
expect_output cvault-status-finds-module "default" env -u COLLABVAULT_MODULE cvault token status

# Removal: every file and directory the package brought goes, the user's store stays.
check dpkg-remove dpkg_locked dpkg -r collabvault
check dpkg-purge dpkg_locked dpkg -P collabvault
check package-state-gone bash -c "! dpkg-query -W collabvault 2>/dev/null"
leftovers() {
    local f left=0
    while read -r f; do
        if [ -e "$f" ] || [ -L "$f" ]; then echo "left behind: $f"; left=1; fi
    done <"$WORK/new-paths"
    [ "$left" = 0 ] && echo "$(wc -l <"$WORK/new-paths") files and directories installed, all removed"
    return $left
}
expect_output removed-everything-it-installed "all removed" leftovers
check p11-kit-forgets-module bash -c "! p11-kit list-modules 2>/dev/null | grep -q '^collabvault: '"
check user-store-kept test -f "$USER_STORE/collabvault.sqlite3"
