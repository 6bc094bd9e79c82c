//! Encryption and decryption (PKCS#11 3.2 §5.8, §5.9).

use cryptoki_sys::*;

use super::shims::{in_out, in_out_direct, init_with_key, out_only};
use crate::session::cipher;
use crate::session::OpKind;

init_with_key!(C_EncryptInit, OpKind::Encrypt, cipher::encrypt_init);
in_out_direct!(C_Encrypt, cipher::encrypt_into);
in_out!(C_EncryptUpdate, cipher::encrypt_update);
out_only!(C_EncryptFinal, cipher::encrypt_final);
init_with_key!(C_DecryptInit, OpKind::Decrypt, cipher::decrypt_init);
in_out_direct!(C_Decrypt, cipher::decrypt_into);
in_out!(C_DecryptUpdate, cipher::decrypt_update);
out_only!(C_DecryptFinal, cipher::decrypt_final);
