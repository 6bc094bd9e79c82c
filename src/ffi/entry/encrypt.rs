//! Encryption and decryption (PKCS#11 3.2 §5.8, §5.9).

use cryptoki_sys::*;

use super::shims::{in_out, init_with_key, out_only};
use crate::session::crypto;

init_with_key!(C_EncryptInit, crypto::encrypt_init);
in_out!(C_Encrypt, crypto::encrypt);
in_out!(C_EncryptUpdate, crypto::encrypt_update);
out_only!(C_EncryptFinal, crypto::encrypt_final);
init_with_key!(C_DecryptInit, crypto::decrypt_init);
in_out!(C_Decrypt, crypto::decrypt);
in_out!(C_DecryptUpdate, crypto::decrypt_update);
out_only!(C_DecryptFinal, crypto::decrypt_final);
