#!/usr/bin/env bash
# p11-kit: the module registered through a module config file, `p11-kit list-modules`
# shows it and its token, and the same token is used through p11-kit-proxy.so (pkcs11-tool
# on the proxy; a ctypes walk through the proxy's function list, and its 3.x interface
# when it offers one).
#
# Nothing system-wide changes: the config lives in a private HOME
# (~/.config/pkcs11/pkcs11.conf with `user-config: override`, so only our module loads,
# and ~/.config/pkcs11/modules/collabvault.module). p11-kit ignores user configs in a
# program running as root, so as root every p11-kit client runs as `nobody` (setpriv),
# with the workspace handed to that user. The private HOME is also XDG_CONFIG_HOME, where
# p11-kit looks first, so a caller's own XDG_CONFIG_HOME cannot hide the module file.
source "$(dirname "$0")/lib.sh"
CLIENT=p11-kit
need_tool tools p11-kit pkcs11-tool setpriv || exit 0
PROXY=$(dpkg -L p11-kit-modules 2>/dev/null | grep '/p11-kit-proxy\.so$' | head -n1 || true)
check proxy-module-installed test -f "$PROXY"
fresh_workspace nobody
LABEL=p11kit
export HOME=$CV_HOME XDG_CONFIG_HOME=$CV_HOME/.config
mkdir -p "$HOME/.config/pkcs11/modules"
printf 'user-config: override\n' >"$HOME/.config/pkcs11/pkcs11.conf"
printf 'module: %s\ncritical: yes\n' "$MODULE" >"$HOME/.config/pkcs11/modules/collabvault.module"
PY=python3
if [ "$(id -u)" -eq 0 ]; then
    chown -R 65534:65534 "$WORK"
    as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
    PY=/usr/bin/python3 # root's own python3 may live where nobody cannot read
else
    as_user() { "$@"; }
fi
px() { as_user pkcs11-tool --module "$PROXY" "$@"; }
lpx() { as_user pkcs11-tool --module "$PROXY" --token-label "$LABEL" --login --pin "$USER_PIN" "$@"; }

init_token() {
    as_user pkcs11-tool --module "$MODULE" --init-token --label "$LABEL" --so-pin "$SO_PIN" &&
        as_user pkcs11-tool --module "$MODULE" --init-pin --so-pin "$SO_PIN" --pin "$USER_PIN"
}
check init-token init_token
expect_output list-modules-shows-module "^collabvault: $MODULE" as_user p11-kit list-modules
expect_output list-modules-shows-token "token: $LABEL\$" as_user p11-kit list-modules
expect_output list-modules-shows-manufacturer "library-manufacturer: CollabVault" as_user p11-kit list-modules

# The proxy: one slot per token of every configured module, here only ours.
expect_output proxy-list-slots "token label +: $LABEL\$" px --list-slots
expect_output proxy-token-flags "PIN initialized" px --list-slots
check proxy-login lpx --list-objects
expect_output proxy-keypairgen-ec-p256 "EC_PARAMS: +06082a8648ce3d030107" lpx --keypairgen --key-type EC:prime256v1 --id 0a --label proxy-ec
expect_output proxy-list-objects "label: +proxy-ec" lpx --list-objects
printf 'signed through p11-kit\n' >"$WORK/msg.txt"
check proxy-sign-ecdsa-sha256 lpx --sign -m ECDSA-SHA256 --id 0a -i "$WORK/msg.txt" -o "$WORK/msg.sig"
expect_output proxy-verify-ecdsa-sha256 "^Signature is valid" lpx --verify -m ECDSA-SHA256 --id 0a -i "$WORK/msg.txt" --signature-file "$WORK/msg.sig"
printf 'tampered\n' >"$WORK/bad.txt"
expect_output proxy-verify-tampered "^Invalid signature" lpx --verify -m ECDSA-SHA256 --id 0a -i "$WORK/bad.txt" --signature-file "$WORK/msg.sig"

# The C ABI through the proxy (p11kit_interface.py): status 0 walked the 3.x interface,
# 3 walked the only list the proxy has (p11-kit 0.24's proxy is 2.40-only).
walk=$(as_user "$PY" "$(dirname "$0")/p11kit_interface.py" "$PROXY" "$LABEL" "$USER_PIN" 0a 2>&1) && rc=0 || rc=$?
case $rc in
    0 | 3) echo "$CLIENT / proxy-c-abi-login-sign / PASS" | tee -a "$CV_RESULTS" ;;
    *)
        echo "$CLIENT / proxy-c-abi-login-sign / FAIL" | tee -a "$CV_RESULTS"
        printf '%s\n' "$walk" | tail -n 20 | sed 's/^/    | /'
        ;;
esac
case $rc in
    0) echo "$CLIENT / proxy-interface-3x / PASS" | tee -a "$CV_RESULTS" ;;
    3)
        echo "$CLIENT / proxy-interface-3x / SKIP" | tee -a "$CV_RESULTS"
        echo "    | p11-kit $(dpkg-query -W -f='${Version}' p11-kit 2>/dev/null): $(head -n1 <<<"$walk")"
        ;;
    *) echo "$CLIENT / proxy-interface-3x / FAIL" | tee -a "$CV_RESULTS" ;;
esac
# The same walk straight on the module, which offers 3.2, 3.0 and 2.40.
expect_output module-interface-3x "^3\.x interface: OK" as_user "$PY" "$(dirname "$0")/p11kit_interface.py" "$MODULE" "$LABEL" "$USER_PIN" 0a
