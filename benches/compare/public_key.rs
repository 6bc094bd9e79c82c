//! Public-key benchmark rows: RSA-2048 sign and verify (`CKM_SHA256_RSA_PKCS`), ECDSA P-384 sign (`CKM_ECDSA` over a SHA-384 digest), Ed25519 sign
//! (`CKM_EDDSA`), each against SoftHSM2, Kryoptic (when in the run) and the raw crate
//! (for RSA, the backend the module was built with: `backend_raw.rs`); and a timing side-channel row
//! for RSA PKCS#1 v1.5 decryption: the rate of rejecting a bad-padding ciphertext beside
//! the rate of accepting a good one, per module, with their ratio (1.00 means the module's
//! answer time says nothing about the padding).

use std::hint::black_box;

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use p384::ecdsa::signature::hazmat::PrehashSigner as _;
use rsa::traits::PublicKeyParts;

use super::{by_column, err, measure, measure_row, print_row, timed, Batch, Res, Row, Token};

const P384_OID: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
const MESSAGE: &[u8] = b"benchmark message for the public-key rows";

/// One token's keys for these rows; `None` where the module lacks the mechanism.
/// An RSA key pair on the token and what the raw rows need: (public, private, modulus, exponent, ...).
type RsaKeys = (ObjectHandle, ObjectHandle, Vec<u8>, Vec<u8>, Vec<u8>);

struct Keys<'a> {
    name: &'static str,
    s: &'a Session,
    rsa: Option<RsaKeys>,
    p384: Option<ObjectHandle>,
    ed25519: Option<ObjectHandle>,
}

fn eddsa() -> Mechanism<'static> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
}

/// A ciphertext under the token's public key whose PKCS#1 v1.5 padding is wrong
/// (block type 01 instead of 02): raw RSA over `00 01 ff...`.
fn bad_padding_ciphertext(s: &Session, public: ObjectHandle) -> Res<Vec<u8>> {
    let attrs = s.get_attributes(public, &[AttributeType::Modulus, AttributeType::PublicExponent])?;
    let (n, e) = match attrs.as_slice() {
        [Attribute::Modulus(n), Attribute::PublicExponent(e)] => (n.clone(), e.clone()),
        other => return Err(err(format!("RSA public key attributes: {other:?}"))),
    };
    let bits = u32::try_from(n.len() * 8).map_err(|e| err(e.to_string()))?;
    let key = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice(&n, bits).map_err(|e| err(format!("{e:?}")))?,
        rsa::BoxedUint::from_be_slice(&e, u32::try_from(e.len() * 8).map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(format!("{e:?}")))?,
    )
    .map_err(|e| err(e.to_string()))?;
    let mut em = vec![0xffu8; key.size()];
    em[0] = 0;
    em[1] = 1;
    let m = rsa::BoxedUint::from_be_slice(&em, bits).map_err(|e| err(format!("{e:?}")))?;
    let c = rsa::hazmat::rsa_encrypt(&key, &m).map_err(|e| err(e.to_string()))?;
    let bytes = c.to_be_bytes();
    Ok(bytes[bytes.len() - key.size()..].to_vec())
}

impl<'a> Keys<'a> {
    fn setup(token: &'a Token) -> Res<Keys<'a>> {
        let s = &token.session;
        let has = |m| token.has(m).unwrap_or(false);
        let rsa = if has(MechanismType::RSA_PKCS_KEY_PAIR_GEN) && has(MechanismType::SHA256_RSA_PKCS) {
            let (public, private) = s.generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[
                    Attribute::Token(false),
                    Attribute::ModulusBits(Ulong::from(2048u64)),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                    Attribute::Verify(true),
                    Attribute::Encrypt(true),
                ],
                &[Attribute::Token(false), Attribute::Sign(true), Attribute::Decrypt(true)],
            )?;
            let signature = s.sign(&Mechanism::Sha256RsaPkcs, private, MESSAGE)?;
            let good = s.encrypt(&Mechanism::RsaPkcs, public, &[0x42; 32])?;
            let bad = bad_padding_ciphertext(s, public)?;
            if s.decrypt(&Mechanism::RsaPkcs, private, &bad).is_ok() {
                return Err(err(format!("{}: a bad-padding ciphertext decrypted", token.name)));
            }
            Some((public, private, signature, good, bad))
        } else {
            None
        };
        // CKM_ECDSA over a SHA-384 digest: SoftHSM2 2.6 has no CKM_ECDSA_SHA384.
        let p384 = if has(MechanismType::ECDSA) {
            let (_, private) = s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::Token(false), Attribute::EcParams(P384_OID.to_vec())],
                &[Attribute::Token(false), Attribute::Sign(true)],
            )?;
            Some(private)
        } else {
            None
        };
        let ed25519 = if has(MechanismType::EDDSA) && has(MechanismType::ECC_EDWARDS_KEY_PAIR_GEN) {
            s.generate_key_pair(
                &Mechanism::EccEdwardsKeyPairGen,
                &[Attribute::Token(false), Attribute::EcParams(ED25519_OID.to_vec())],
                &[Attribute::Token(false), Attribute::Sign(true)],
            )
            .ok()
            .map(|(_, private)| private)
        } else {
            None
        };
        Ok(Keys { name: token.name, s, rsa, p384, ed25519 })
    }
}

/// Runs the public-key rows; `wanted` filters by row name.
/// `tokens`: the PKCS#11 modules in peer order (collabvault, SoftHSM2, Kryoptic if any).
pub(super) fn run(tokens: &[&Token], wanted: &dyn Fn(&str) -> bool) -> Res<()> {
    let keys = tokens.iter().map(|t| Keys::setup(t)).collect::<Res<Vec<_>>>()?;
    let row = |name: &str, contenders: Vec<Option<Batch<'_>>>| -> Res<()> {
        if wanted(name) {
            measure_row(name, contenders)?;
        }
        Ok(())
    };

    // Raw counterparts: RSA from the backend the module was built with (aws-lc-rs by default).
    let raw_rsa = super::backend_raw::Rsa::new()?;
    let raw_p384 = p384::ecdsa::SigningKey::from_slice(&[0x17; 48]).map_err(|e| err(e.to_string()))?;
    let raw_ed = ed25519_dalek::SigningKey::from_bytes(&[0x29; 32]);

    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for k in &keys {
        c.push(k.rsa.as_ref().map(|(_, private, ..)| -> Batch<'_> {
            Box::new(move |n| {
                timed(n, || {
                    black_box(k.s.sign(&Mechanism::Sha256RsaPkcs, *private, MESSAGE)?);
                    Ok(())
                })
            })
        }));
    }
    c.push(Some(Box::new(|n| {
        timed(n, || {
            black_box(raw_rsa.sign()?);
            Ok(())
        })
    })));
    row("RSA-2048 sign (SHA256-RSA-PKCS)", c)?;

    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for k in &keys {
        c.push(k.rsa.as_ref().map(|(public, _, sig, ..)| -> Batch<'_> {
            Box::new(move |n| timed(n, || Ok(k.s.verify(&Mechanism::Sha256RsaPkcs, *public, MESSAGE, sig)?)))
        }));
    }
    c.push(Some(Box::new(|n| timed(n, || raw_rsa.verify()))));
    row("RSA-2048 verify (SHA256-RSA-PKCS)", c)?;

    let digest384 = <sha2::Sha384 as sha2::Digest>::digest(MESSAGE).to_vec();
    let digest384 = &digest384;
    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for k in &keys {
        c.push(k.p384.map(|private| -> Batch<'_> {
            Box::new(move |n| {
                timed(n, || {
                    black_box(k.s.sign(&Mechanism::Ecdsa, private, digest384)?);
                    Ok(())
                })
            })
        }));
    }
    c.push(Some(Box::new(|n| {
        timed(n, || {
            let sig: p384::ecdsa::Signature = raw_p384.sign_prehash(digest384).map_err(|e| err(e.to_string()))?;
            black_box(sig);
            Ok(())
        })
    })));
    row("ECDSA P-384 sign (over SHA-384)", c)?;

    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for k in &keys {
        c.push(k.ed25519.map(|private| -> Batch<'_> {
            Box::new(move |n| {
                timed(n, || {
                    black_box(k.s.sign(&eddsa(), private, MESSAGE)?);
                    Ok(())
                })
            })
        }));
    }
    c.push(Some(Box::new(|n| {
        timed(n, || {
            black_box(ed25519_dalek::Signer::sign(&raw_ed, MESSAGE));
            Ok(())
        })
    })));
    row("Ed25519 sign", c)?;

    // Timing side channel: good vs bad PKCS#1 v1.5 padding, interleaved in one measure().
    let name = "RSA-2048 PKCS#1 decrypt timing";
    if !wanted(name) {
        return Ok(());
    }
    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for k in &keys {
        for bad in [false, true] {
            c.push(k.rsa.as_ref().map(|(_, private, _, good_ct, bad_ct)| -> Batch<'_> {
                let ct = if bad { bad_ct } else { good_ct };
                Box::new(move |n| {
                    timed(n, || {
                        let r = k.s.decrypt(&Mechanism::RsaPkcs, *private, ct);
                        if r.is_ok() == bad {
                            return Err(err("decryption verdict changed"));
                        }
                        black_box(r.ok());
                        Ok(())
                    })
                })
            }));
        }
    }
    // Batches per module in peer order: good pad, bad pad.
    let rates = measure(&mut c).map_err(|e| err(format!("{name}: {e}")))?;
    let at = |i: usize| rates.get(i).copied().flatten();
    for (bad, what) in [(0, "good pad"), (1, "bad pad")] {
        let peers: Vec<_> = (0..keys.len()).map(|i| at(2 * i + bad)).collect();
        print_row(&Row::rates(format!("RSA-2048 PKCS#1 decrypt, {what}"), &by_column(&peers, None)));
    }
    let ratio = |good: Option<super::Stats>, bad: Option<super::Stats>| match (good, bad) {
        (Some(g), Some(b)) => format!("{:.3}", b.median / g.median),
        _ => "n/a".into(),
    };
    let verdicts: Vec<String> =
        keys.iter().enumerate().map(|(i, k)| format!("{} {}", k.name, ratio(at(2 * i), at(2 * i + 1)))).collect();
    println!(
        "  timing side channel (bad-pad rate / good-pad rate; 1.000 = indistinguishable): {}",
        verdicts.join(", ")
    );
    Ok(())
}
