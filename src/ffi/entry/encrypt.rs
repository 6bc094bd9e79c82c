//! Encryption and decryption (PKCS#11 3.2 §5.8, §5.9).

use cryptoki_sys::*;

use super::shims::{in_out, in_out_direct, init_with_key, out_only};
use crate::session::crypto;

init_with_key!(C_EncryptInit, crypto::encrypt_init);
in_out_direct!(C_Encrypt, crypto::encrypt_into);
in_out!(C_EncryptUpdate, crypto::encrypt_update);
out_only!(C_EncryptFinal, crypto::encrypt_final);
init_with_key!(C_DecryptInit, crypto::decrypt_init);
in_out_direct!(C_Decrypt, crypto::decrypt_into);
in_out!(C_DecryptUpdate, crypto::decrypt_update);
out_only!(C_DecryptFinal, crypto::decrypt_final);
