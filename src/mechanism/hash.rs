//! The SHA family as digests (`CKM_SHA_1`, `CKM_SHA224`, `CKM_SHA256`, `CKM_SHA384`,
//! `CKM_SHA512`, `CKM_SHA3_256/384/512`; FIPS 180-4 and FIPS 202) and the cheap
//! `CKM_SHA*_KEY_DERIVATION` derives (PKCS#11 3.2 §6.20.7: the new key is the digest of
//! the base key's value, truncated to `CKA_VALUE_LEN`).
//!
//! [`HashAlg`] is the one name for a hash function in the token: HMAC (`hmac.rs`), RSA
//! (`rsa*.rs`) and the ECDSA variants pick their hash through it, so the list of hashes
//! lives here only. SHA-1 stays for interoperability (legacy HMAC, OAEP); nothing in the
//! token signs with it.

use cryptoki_sys::*;
use sha3::{Digest, Sha3_256, Sha3_384, Sha3_512};
use zeroize::Zeroizing;

use super::backend::{self, Sha};
use super::registry::{build_plain, KeyNeed, KeyView, MechEntry, MechInfo, Ops, ParamShape};
use super::{Digester, Mechanism};
use crate::error::{Error, Result};

/// A hash function the token implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-1 (FIPS 180-4); legacy, for HMAC and OAEP only.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA3-256 (FIPS 202).
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
}

/// Every hash, in registry order.
pub const ALL: &[HashAlg] = &[
    HashAlg::Sha1,
    HashAlg::Sha224,
    HashAlg::Sha256,
    HashAlg::Sha384,
    HashAlg::Sha512,
    HashAlg::Sha3_256,
    HashAlg::Sha3_384,
    HashAlg::Sha3_512,
];

const fn digest_row(ty: CK_MECHANISM_TYPE) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 0, max_key: 0, flags: CKF_DIGEST },
        key: KeyNeed::None,
        param: ParamShape::None,
        build: build_plain,
        ops: Ops { digest: Some(digest_op), ..Ops::NONE },
    }
}

/// Key derivation sizes are in bytes: any base key, a new key of at most the digest.
const fn derive_row(ty: CK_MECHANISM_TYPE) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 1, max_key: super::secret_key::MAX_GENERIC_LEN as CK_ULONG, flags: CKF_DERIVE },
        key: KeyNeed::Secret(DERIVE_KEY_TYPES),
        param: ParamShape::None,
        build: build_plain,
        ops: Ops { derive: Some(derive_op), ..Ops::NONE },
    }
}

/// Registry rows.
pub const ENTRIES: &[MechEntry] = &[
    digest_row(CKM_SHA_1),
    digest_row(CKM_SHA224),
    digest_row(CKM_SHA256),
    digest_row(CKM_SHA384),
    digest_row(CKM_SHA512),
    digest_row(CKM_SHA3_256),
    digest_row(CKM_SHA3_384),
    digest_row(CKM_SHA3_512),
    derive_row(CKM_SHA1_KEY_DERIVATION),
    derive_row(CKM_SHA224_KEY_DERIVATION),
    derive_row(CKM_SHA256_KEY_DERIVATION),
    derive_row(CKM_SHA384_KEY_DERIVATION),
    derive_row(CKM_SHA512_KEY_DERIVATION),
    derive_row(CKM_SHA3_256_KEY_DERIVATION),
    derive_row(CKM_SHA3_384_KEY_DERIVATION),
    derive_row(CKM_SHA3_512_KEY_DERIVATION),
];

fn digest_op(m: &Mechanism) -> Result<Box<dyn Digester>> {
    match m {
        Mechanism::Digest(h) => Ok(digester(*h)),
        _ => Err(Error::MechanismInvalid),
    }
}

fn derive_op(m: &Mechanism, base: &dyn KeyView, len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    match m {
        Mechanism::HashKeyDerivation(h) => derive_key(*h, &base.secret()?, len),
        _ => Err(Error::MechanismInvalid),
    }
}

impl HashAlg {
    /// The digest mechanism (`CKM_SHA256`, ...).
    pub fn digest_mech(self) -> CK_MECHANISM_TYPE {
        match self {
            HashAlg::Sha1 => CKM_SHA_1,
            HashAlg::Sha224 => CKM_SHA224,
            HashAlg::Sha256 => CKM_SHA256,
            HashAlg::Sha384 => CKM_SHA384,
            HashAlg::Sha512 => CKM_SHA512,
            HashAlg::Sha3_256 => CKM_SHA3_256,
            HashAlg::Sha3_384 => CKM_SHA3_384,
            HashAlg::Sha3_512 => CKM_SHA3_512,
        }
    }

    /// The hash a digest mechanism names (also the `hashAlg` of RSA parameters).
    pub fn from_digest_mech(ty: CK_MECHANISM_TYPE) -> Option<HashAlg> {
        ALL.iter().copied().find(|a| a.digest_mech() == ty)
    }

    /// The `CKM_*_HMAC` mechanism.
    pub const fn hmac_mech(self) -> CK_MECHANISM_TYPE {
        match self {
            HashAlg::Sha1 => CKM_SHA_1_HMAC,
            HashAlg::Sha224 => CKM_SHA224_HMAC,
            HashAlg::Sha256 => CKM_SHA256_HMAC,
            HashAlg::Sha384 => CKM_SHA384_HMAC,
            HashAlg::Sha512 => CKM_SHA512_HMAC,
            HashAlg::Sha3_256 => CKM_SHA3_256_HMAC,
            HashAlg::Sha3_384 => CKM_SHA3_384_HMAC,
            HashAlg::Sha3_512 => CKM_SHA3_512_HMAC,
        }
    }

    /// The `CKM_*_HMAC_GENERAL` mechanism.
    pub const fn hmac_general_mech(self) -> CK_MECHANISM_TYPE {
        match self {
            HashAlg::Sha1 => CKM_SHA_1_HMAC_GENERAL,
            HashAlg::Sha224 => CKM_SHA224_HMAC_GENERAL,
            HashAlg::Sha256 => CKM_SHA256_HMAC_GENERAL,
            HashAlg::Sha384 => CKM_SHA384_HMAC_GENERAL,
            HashAlg::Sha512 => CKM_SHA512_HMAC_GENERAL,
            HashAlg::Sha3_256 => CKM_SHA3_256_HMAC_GENERAL,
            HashAlg::Sha3_384 => CKM_SHA3_384_HMAC_GENERAL,
            HashAlg::Sha3_512 => CKM_SHA3_512_HMAC_GENERAL,
        }
    }

    /// The `CKM_*_KEY_DERIVATION` mechanism.
    pub fn key_derivation_mech(self) -> CK_MECHANISM_TYPE {
        match self {
            HashAlg::Sha1 => CKM_SHA1_KEY_DERIVATION,
            HashAlg::Sha224 => CKM_SHA224_KEY_DERIVATION,
            HashAlg::Sha256 => CKM_SHA256_KEY_DERIVATION,
            HashAlg::Sha384 => CKM_SHA384_KEY_DERIVATION,
            HashAlg::Sha512 => CKM_SHA512_KEY_DERIVATION,
            HashAlg::Sha3_256 => CKM_SHA3_256_KEY_DERIVATION,
            HashAlg::Sha3_384 => CKM_SHA3_384_KEY_DERIVATION,
            HashAlg::Sha3_512 => CKM_SHA3_512_KEY_DERIVATION,
        }
    }

    /// The key types an HMAC with this hash accepts: generic secrets and the hash's own
    /// `CKK_*_HMAC` type (an AES key is for AES only).
    pub const fn hmac_key_types(self) -> &'static [CK_KEY_TYPE] {
        match self {
            HashAlg::Sha1 => &[CKK_GENERIC_SECRET, CKK_SHA_1_HMAC],
            HashAlg::Sha224 => &[CKK_GENERIC_SECRET, CKK_SHA224_HMAC],
            HashAlg::Sha256 => &[CKK_GENERIC_SECRET, CKK_SHA256_HMAC],
            HashAlg::Sha384 => &[CKK_GENERIC_SECRET, CKK_SHA384_HMAC],
            HashAlg::Sha512 => &[CKK_GENERIC_SECRET, CKK_SHA512_HMAC],
            HashAlg::Sha3_256 => &[CKK_GENERIC_SECRET, CKK_SHA3_256_HMAC],
            HashAlg::Sha3_384 => &[CKK_GENERIC_SECRET, CKK_SHA3_384_HMAC],
            HashAlg::Sha3_512 => &[CKK_GENERIC_SECRET, CKK_SHA3_512_HMAC],
        }
    }

    /// The `CKG_MGF1_*` constant of MGF1 over this hash (RSA-PSS and OAEP parameters).
    pub fn mgf1(self) -> CK_RSA_PKCS_MGF_TYPE {
        match self {
            HashAlg::Sha1 => CKG_MGF1_SHA1,
            HashAlg::Sha224 => CKG_MGF1_SHA224,
            HashAlg::Sha256 => CKG_MGF1_SHA256,
            HashAlg::Sha384 => CKG_MGF1_SHA384,
            HashAlg::Sha512 => CKG_MGF1_SHA512,
            HashAlg::Sha3_256 => CKG_MGF1_SHA3_256,
            HashAlg::Sha3_384 => CKG_MGF1_SHA3_384,
            HashAlg::Sha3_512 => CKG_MGF1_SHA3_512,
        }
    }

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 | HashAlg::Sha3_256 => 32,
            HashAlg::Sha384 | HashAlg::Sha3_384 => 48,
            HashAlg::Sha512 | HashAlg::Sha3_512 => 64,
        }
    }
}

/// The secret-key types HMAC keys may carry (`CKK_*_HMAC`), accepted on import.
pub const HMAC_KEY_TYPES: &[CK_KEY_TYPE] = &[
    CKK_SHA_1_HMAC,
    CKK_SHA224_HMAC,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA512_HMAC,
    CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC,
];

/// Base keys a `CKM_SHA*_KEY_DERIVATION` accepts: any secret key with a value.
pub const DERIVE_KEY_TYPES: &[CK_KEY_TYPE] = &[
    CKK_GENERIC_SECRET,
    CKK_AES,
    CKK_SHA_1_HMAC,
    CKK_SHA224_HMAC,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA512_HMAC,
    CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC,
];

struct Hasher<D>(D);

impl<D: Digest + Default + Send> Digester for Hasher<D> {
    fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }

    fn output_len(&self) -> usize {
        <D as Digest>::output_size()
    }

    fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0).finalize().to_vec()
    }
}

/// A RustCrypto digest as a [`Digester`] (SHA-3 here in every build; SHA-1/SHA-2 in the
/// `rustcrypto` backend).
pub(crate) fn boxed<D: Digest + Default + Send + 'static>() -> Box<dyn Digester> {
    Box::new(Hasher(D::new()))
}

/// A streaming digest with `alg`: SHA-1 and SHA-2 from the crypto backend, SHA-3 from
/// the `sha3` crate in every build (aws-lc-rs has no SHA-3 digest API).
pub fn digester(alg: HashAlg) -> Box<dyn Digester> {
    match alg {
        HashAlg::Sha1 => backend::digester(Sha::Sha1),
        HashAlg::Sha224 => backend::digester(Sha::Sha224),
        HashAlg::Sha256 => backend::digester(Sha::Sha256),
        HashAlg::Sha384 => backend::digester(Sha::Sha384),
        HashAlg::Sha512 => backend::digester(Sha::Sha512),
        HashAlg::Sha3_256 => boxed::<Sha3_256>(),
        HashAlg::Sha3_384 => boxed::<Sha3_384>(),
        HashAlg::Sha3_512 => boxed::<Sha3_512>(),
    }
}

impl HashAlg {
    /// The crypto backend's name for this hash (SHA-1/SHA-2); `None` for SHA-3, which
    /// no backend serves.
    pub fn backend(self) -> Option<Sha> {
        match self {
            HashAlg::Sha1 => Some(Sha::Sha1),
            HashAlg::Sha224 => Some(Sha::Sha224),
            HashAlg::Sha256 => Some(Sha::Sha256),
            HashAlg::Sha384 => Some(Sha::Sha384),
            HashAlg::Sha512 => Some(Sha::Sha512),
            HashAlg::Sha3_256 | HashAlg::Sha3_384 | HashAlg::Sha3_512 => None,
        }
    }
}

/// `alg(data)` in one call.
pub fn digest(alg: HashAlg, data: &[u8]) -> Vec<u8> {
    let mut d = digester(alg);
    d.update(data);
    d.finish()
}

/// `CKM_SHA*_KEY_DERIVATION`: the leftmost `key_len` bytes of `alg(base)` (all of it when
/// the template gives no length). A length of zero or beyond the digest ->
/// [`Error::KeySizeRange`] (the mechanism cannot make that key).
pub fn derive_key(alg: HashAlg, base: &[u8], key_len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    let mut full = Zeroizing::new(digest(alg, base));
    let len = key_len.unwrap_or(full.len());
    if len == 0 || len > full.len() {
        return Err(Error::KeySizeRange);
    }
    full.truncate(len);
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hx(alg: HashAlg, parts: &[&[u8]]) -> String {
        let mut d = digester(alg);
        for p in parts {
            d.update(p);
        }
        assert_eq!(d.output_len(), alg.output_len());
        hex::encode(d.finish())
    }

    // FIPS 180-4 examples (NIST CSRC "Examples with Intermediate Values": SHA1.pdf,
    // SHA224.pdf, SHA256.pdf, SHA384.pdf, SHA512.pdf) and FIPS 202 (SHA3-256/384/512_Msg0 and "abc"
    // from NIST's SHA-3 example files).
    const ABC: &[(HashAlg, &str)] = &[
        (HashAlg::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (HashAlg::Sha224, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
        (HashAlg::Sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            HashAlg::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            HashAlg::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
        (HashAlg::Sha3_256, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
        (
            HashAlg::Sha3_384,
            "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25",
        ),
        (
            HashAlg::Sha3_512,
            "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e\
             10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
        ),
    ];

    #[test]
    fn fips_examples_of_abc_match_in_one_or_many_parts() {
        for (alg, want) in ABC {
            assert_eq!(hx(*alg, &[b"abc"]), *want, "{alg:?}");
            assert_eq!(hx(*alg, &[b"a", b"", b"bc"]), *want, "{alg:?} in parts");
            assert_eq!(HashAlg::from_digest_mech(alg.digest_mech()), Some(*alg));
        }
    }

    #[test]
    fn fips_two_block_examples_match() {
        let m448 = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hx(HashAlg::Sha1, &[m448]), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
        assert_eq!(hx(HashAlg::Sha224, &[m448]), "75388b16512776cc5dba5da1fd890150b0c6455cb4f58b1952522525");
        assert_eq!(hx(HashAlg::Sha256, &[m448]), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        let m896 = b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
        assert_eq!(
            hx(HashAlg::Sha384, &[m896]),
            "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039"
        );
        assert_eq!(
            hx(HashAlg::Sha512, &[m896]),
            "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018\
             501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"
        );
        assert_eq!(hx(HashAlg::Sha3_256, &[b""]), "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
    }

    #[test]
    fn key_derivation_is_the_truncated_digest() {
        let base = [7u8; 32];
        let full = derive_key(HashAlg::Sha256, &base, None).unwrap();
        assert_eq!(full.as_slice(), digest(HashAlg::Sha256, &base).as_slice());
        assert_eq!(
            derive_key(HashAlg::Sha512, &base, Some(16)).unwrap().as_slice(),
            &digest(HashAlg::Sha512, &base)[..16]
        );
        assert_eq!(derive_key(HashAlg::Sha1, &base, Some(21)), Err(Error::KeySizeRange));
        assert_eq!(derive_key(HashAlg::Sha1, &base, Some(0)), Err(Error::KeySizeRange));
    }
}
