#!/usr/bin/env bash
# The programs and config snippets in examples/ are built and run here, so none can rot:
# the C example (cc against include/), the Python example (python-pkcs11), the Rust
# example (cargo run --example token_tour), and the p11-kit, OpenSSL, NSS and module config
# snippets, each loaded by the program it is written for.
source "$(dirname "$0")/lib.sh"
CLIENT=examples
EX=$CV_ROOT/examples
need_tool tools cc python3 cargo pkcs11-tool openssl p11-kit modutil certutil setpriv || exit 0
fresh_workspace nobody
TOKEN=examples
check init-token bash -c "pkcs11-tool --module '$MODULE' --init-token --label '$TOKEN' --so-pin '$SO_PIN' && pkcs11-tool --module '$MODULE' --init-pin --so-pin '$SO_PIN' --pin '$USER_PIN'"

# C: the OASIS header and collabvault.h from include/, the module opened with dlopen.
check c-build cc -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -I "$CV_ROOT/include" \
    -o "$WORK/sign" "$EX/c/sign.c" -ldl
expect_output c-sign-verify "^tampered message rejected" "$WORK/sign" "$MODULE" "$USER_PIN"
check c-collabvault-h-standalone bash -c "printf '#include \"pkcs11.h\"\n#include \"collabvault.h\"\nint main(void) { return CKV_COLLABVAULT_PREFIX == 0x43560000UL ? 0 : 1; }\n' | cc -std=c99 -Wall -Werror -I '$CV_ROOT/include' -x c -o '$WORK/h' - && '$WORK/h'"

# Python: python-pkcs11.
expect_output python-aes-gcm "^tampered ciphertext refused" python3 "$EX/python/aes_gcm.py" "$MODULE" "$TOKEN" "$USER_PIN"

# Rust: the cryptoki tour initializes its own token, so it gets a store of its own.
mkdir -p "$WORK/tour"
sed -e "s|^store_dir = .*|store_dir = \"$WORK/tour/store\"|" -e "s|^log_file = .*|log_file = \"$WORK/tour/module.log\"|" \
    "$COLLABVAULT_CONF" >"$WORK/tour/collabvault.toml"
expect_output rust-token-tour "private data objects visible: 0" \
    env COLLABVAULT_CONF="$WORK/tour/collabvault.toml" COLLABVAULT_MODULE="$MODULE" \
    cargo run --quiet --release --manifest-path "$CV_ROOT/Cargo.toml" --example token_tour

# The module config: every key valid (unknown keys are refused), its workspaces are the slots.
mkdir -p "$WORK/sample"
sed -e "s|^store_dir = .*|store_dir = \"$WORK/sample/store\"|" -e "s|^log_file = .*|log_file = \"$WORK/sample/module.log\"|" \
    "$EX/config/collabvault.toml" >"$WORK/sample.toml"
expect_output config-collabvault-toml "Slot 1 .*: CollabVault workspace legal" \
    env COLLABVAULT_CONF="$WORK/sample.toml" pkcs11-tool --module "$MODULE" --list-slots

# OpenSSL: the engine config snippet loads the engine and the module.
ENGINE_SO=$(dpkg -L libengine-pkcs11-openssl 2>/dev/null | grep -m1 '/engines-3/pkcs11\.so$' || true)
sed -e "s|^dynamic_path = .*|dynamic_path = $ENGINE_SO|" -e "s|^MODULE_PATH = .*|MODULE_PATH = $MODULE|" \
    "$EX/config/openssl/openssl-pkcs11.cnf" >"$WORK/openssl.cnf"
expect_output config-openssl-engine '\[ available \]' env OPENSSL_CONF="$WORK/openssl.cnf" openssl engine -t pkcs11

# NSS: the README's commands, run as written.
check keypairgen-for-nss pkcs11-tool --module "$MODULE" --login --pin "$USER_PIN" --keypairgen --key-type EC:prime256v1 --id 0c --label nss-key
printf '%s\n' "$USER_PIN" >"$WORK/pin.txt"
nss_readme() {
    grep '^    ' "$EX/config/nss/README" | sed 's/^    //' >"$WORK/nss.sh"
    NSSDB=$WORK/nssdb MODULE=$MODULE TOKEN=$TOKEN PINFILE=$WORK/pin.txt bash -ex "$WORK/nss.sh"
}
expect_output config-nss-modutil "ec +[0-9a-f]+ +nss-key" nss_readme

# p11-kit: the module file registered for a private HOME. p11-kit ignores user configs
# in a program running as root, so there it runs as `nobody` with the files handed over.
p11kit_module() {
    local home=$WORK/p11home
    mkdir -p "$home/.config/pkcs11/modules"
    printf 'user-config: override\n' >"$home/.config/pkcs11/pkcs11.conf"
    sed "s|^module: .*|module: $MODULE|" "$EX/config/p11-kit/collabvault.module" \
        >"$home/.config/pkcs11/modules/collabvault.module"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R 65534:65534 "$WORK"
        HOME=$home XDG_CONFIG_HOME=$home/.config setpriv --reuid=65534 --regid=65534 --clear-groups p11-kit list-modules
    else
        HOME=$home XDG_CONFIG_HOME=$home/.config p11-kit list-modules
    fi
}
expect_output config-p11-kit-module "token: $TOKEN\$" p11kit_module
rm -rf "$WORK"
