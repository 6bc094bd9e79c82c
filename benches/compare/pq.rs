//! Post-quantum rows: ML-DSA-65 key pairs, signatures and checks (FIPS 204, pure, hedged,
//! 64-byte messages), and X-Wing, MLKEM768-P256 and MLKEM1024-P384 encapsulation and
//! decapsulation (the vendor hybrid KEMs), each beside the raw crates (`ml-dsa`, `x-wing`;
//! for the CFRG hybrids, which no published crate implements, the same work composed from
//! `ml-kem`, `p256`/`p384` and `sha3`: ML-KEM, the ephemeral Diffie-Hellman and the
//! SHA3-256 combiner, the decapsulation key kept expanded as the token keeps it). SoftHSM2
//! 2.6 offers none, and Kryoptic as built here (without `pqc`) none: their columns say so.

use std::hint::black_box;

use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, MlDsaParameterSetType, ObjectHandle};
use cryptoki::session::Session;
use ml_dsa::{MlDsa65, SigningKey};
use p256::elliptic_curve::sec1::ToSec1Point;
use sha3::Digest;
use x_wing::{Decapsulate, Encapsulate, KeyExport};

use super::client::shared_secret_template;
use super::{err, measure_row, random, timed, Batch, Client, Res, Token};

/// `CKM_CV_XWING_KEY_PAIR_GEN` and `CKM_CV_XWING` (include/collabvault.h).
const CKM_CV_XWING_KEY_PAIR_GEN: u64 = 0xC356_0010;
const CKM_CV_XWING: u64 = 0xC356_0011;
/// The CFRG hybrids: name, key pair generation and KEM mechanism (include/collabvault.h).
const HYBRIDS: [(&str, u64, u64); 2] =
    [("MLKEM768-P256", 0xC356_0012, 0xC356_0013), ("MLKEM1024-P384", 0xC356_0014, 0xC356_0015)];

fn vendor(ty: u64) -> Res<Mechanism<'static>> {
    let ty = MechanismType::new_vendor_defined(ty).map_err(|e| err(e.to_string()))?;
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None)))
}

fn mldsa_pair(s: &Session) -> Res<(ObjectHandle, ObjectHandle)> {
    let set = Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_65.into());
    Ok(s.generate_key_pair(
        &Mechanism::MlDsaKeyPairGen,
        &[Attribute::Token(false), set, Attribute::Verify(true)],
        &[Attribute::Token(false), Attribute::Sign(true)],
    )?)
}

/// A batch of `op`, which makes session objects, and of their `C_DestroyObject`, timed
/// together (see `Client::making_keys`).
fn making<'a>(s: &'a Session, op: impl Fn() -> Res<Vec<ObjectHandle>> + 'a) -> Batch<'a> {
    Box::new(move |n| {
        let start = std::time::Instant::now();
        for _ in 0..n {
            op()?.into_iter().try_for_each(|h| s.destroy_object(h))?;
        }
        Ok(start.elapsed())
    })
}

/// The raw crates doing one hybrid instance's work: (encapsulate, decapsulate) batches.
macro_rules! raw_hybrid {
    ($kem:ty, $curve:ident, $label:expr, $scalar:literal) => {{
        use ml_kem::{Decapsulate as _, Encapsulate as _};
        let seed = ml_kem::Seed::try_from(&random::<64>()?[..]).map_err(|_| err("seed"))?;
        let dk_pq = ml_kem::DecapsulationKey::<$kem>::from_seed(seed);
        let ek_pq = dk_pq.encapsulation_key().clone();
        let dk_t = $curve::SecretKey::from_slice(&random::<$scalar>()?).map_err(|_| err("scalar"))?;
        let ek_t = dk_t.public_key();
        let ek_t_bytes = ek_t.to_sec1_point(false).as_bytes().to_vec();
        let combine = move |ss_pq: &[u8], ss_t: &[u8], ct_t: &[u8], ek_t: &[u8]| {
            sha3::Sha3_256::new()
                .chain_update(ss_pq)
                .chain_update(ss_t)
                .chain_update(ct_t)
                .chain_update(ek_t)
                .chain_update($label)
                .finalize()
        };
        let encapsulate = {
            let (ek_pq, ek_t, ek_t_bytes) = (ek_pq.clone(), ek_t, ek_t_bytes.clone());
            move || -> Res<(Vec<u8>, Vec<u8>)> {
                let (ct_pq, ss_pq) = ek_pq.encapsulate();
                let e = $curve::SecretKey::from_slice(&random::<$scalar>()?).map_err(|_| err("scalar"))?;
                let ct_t = e.public_key().to_sec1_point(false).as_bytes().to_vec();
                let ss_t = e.diffie_hellman(&ek_t);
                let ss = combine(&ss_pq, ss_t.raw_secret_bytes(), &ct_t, &ek_t_bytes);
                Ok(([ct_pq.as_slice(), &ct_t].concat(), ss.to_vec()))
            }
        };
        let (ct, _) = encapsulate()?;
        let n_ct_pq = ct.len() - ek_t_bytes.len();
        let decapsulate = move || -> Res<Vec<u8>> {
            let (ct_pq, ct_t) = ct.split_at(n_ct_pq);
            let ss_pq = dk_pq.decapsulate_slice(ct_pq).map_err(|_| err("ciphertext"))?;
            let point = $curve::PublicKey::from_sec1_bytes(ct_t).map_err(|_| err("point"))?;
            let ss_t = dk_t.diffie_hellman(&point);
            Ok(combine(&ss_pq, ss_t.raw_secret_bytes(), ct_t, &ek_t_bytes).to_vec())
        };
        let encaps: Batch<'_> = Box::new(move |n| timed(n, || Ok(black_box(encapsulate().map(|_| ())?))));
        let decaps: Batch<'_> = Box::new(move |n| timed(n, || Ok(black_box(decapsulate().map(|_| ())?))));
        (encaps, decaps)
    }};
}

/// Runs the rows; `wanted` filters by row name.
pub(super) fn run(tokens: &[&Token], clients: &[&Client<'_>], wanted: &dyn Fn(&str) -> bool) -> Res<()> {
    let row = |name: &str, contenders: Vec<Option<Batch<'_>>>| -> Res<()> {
        if wanted(name) {
            measure_row(name, contenders)?;
        }
        Ok(())
    };
    let message = [0x5au8; 64];
    let message = &message;
    let hedged = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None));
    let hedged = &hedged;

    let raw_key = SigningKey::<MlDsa65>::from_seed(&random::<32>()?.into());
    let raw_key = raw_key.expanded_key();
    let raw_public = raw_key.verifying_key();
    let raw_signature = raw_key.sign_internal(&[&[0, 0], message], &random::<32>()?.into());
    let (mut keygen, mut sign, mut verify) = (Vec::new(), Vec::new(), Vec::new());
    for (client, token) in clients.iter().zip(tokens) {
        let s = client.s;
        if !(token.has(MechanismType::ML_DSA)? && token.has(MechanismType::ML_DSA_KEY_PAIR_GEN)?) {
            keygen.push(None);
            sign.push(None);
            verify.push(None);
            continue;
        }
        let (public, private) = mldsa_pair(s)?;
        let signature = s.sign(hedged, private, message)?;
        keygen.push(Some(making(s, move || mldsa_pair(s).map(|(p, k)| vec![p, k]))));
        sign.push(Some(Box::new(move |n| {
            timed(n, || {
                black_box(s.sign(hedged, private, message)?);
                Ok(())
            })
        }) as Batch));
        verify.push(Some(Box::new(move |n| timed(n, || Ok(s.verify(hedged, public, message, &signature)?))) as Batch));
    }
    keygen.push(Some(Box::new(|n| {
        timed(n, || {
            black_box(SigningKey::<MlDsa65>::from_seed(&random::<32>()?.into()));
            Ok(())
        })
    })));
    sign.push(Some(Box::new(|n| {
        timed(n, || {
            black_box(raw_key.sign_internal(&[&[0, 0], message], &random::<32>()?.into()));
            Ok(())
        })
    })));
    verify.push(Some(Box::new(|n| {
        timed(n, || match raw_public.verify_with_context(message, &[], &raw_signature) {
            true => Ok(()),
            false => Err(err("the raw ML-DSA signature does not verify")),
        })
    })));
    row("ML-DSA-65 key pair generation", keygen)?;
    row("ML-DSA-65 sign 64 B", sign)?;
    row("ML-DSA-65 verify 64 B", verify)?;

    let secret = shared_secret_template();
    let secret = &secret;
    let (mut encaps, mut decaps) = kem_contenders(clients, CKM_CV_XWING_KEY_PAIR_GEN, CKM_CV_XWING, secret)?;
    let raw_dk = x_wing::DecapsulationKey::from(random::<32>()?);
    let raw_ek = x_wing::EncapsulationKey::try_from(&x_wing::Decapsulator::encapsulation_key(&raw_dk).to_bytes()[..])
        .map_err(|_| err("x-wing public key"))?;
    let (raw_ct, _) = raw_ek.encapsulate();
    encaps.push(Some(Box::new(move |n| {
        timed(n, || {
            black_box(raw_ek.encapsulate());
            Ok(())
        })
    })));
    decaps.push(Some(Box::new(move |n| {
        timed(n, || {
            black_box(raw_dk.decapsulate(&raw_ct));
            Ok(())
        })
    })));
    row("X-Wing encapsulate", encaps)?;
    row("X-Wing decapsulate", decaps)?;

    for (name, gen, kem) in HYBRIDS {
        let (mut encaps, mut decaps) = kem_contenders(clients, gen, kem, secret)?;
        let (raw_encaps, raw_decaps) = match name {
            "MLKEM768-P256" => raw_hybrid!(ml_kem::MlKem768, p256, b"MLKEM768-P256", 32),
            _ => raw_hybrid!(ml_kem::MlKem1024, p384, b"MLKEM1024-P384", 48),
        };
        encaps.push(Some(raw_encaps));
        decaps.push(Some(raw_decaps));
        row(&format!("{name} encapsulate"), encaps)?;
        row(&format!("{name} decapsulate"), decaps)?;
    }
    Ok(())
}

/// One batch per module in a row (`None` where it lacks the operation).
type Contenders<'a> = Vec<Option<Batch<'a>>>;

/// Each client's encapsulation and decapsulation batches for the KEM `kem` (a key pair
/// from `gen`), or `None` where the token lacks it.
fn kem_contenders<'a>(
    clients: &[&Client<'a>],
    gen: u64,
    kem: u64,
    secret: &'a [Attribute],
) -> Res<(Contenders<'a>, Contenders<'a>)> {
    let (mut encaps, mut decaps) = (Vec::new(), Vec::new());
    for client in clients {
        let s = client.s;
        let Ok((public, private)) = s.generate_key_pair(&vendor(gen)?, &[], &[]) else {
            encaps.push(None);
            decaps.push(None);
            continue;
        };
        let m = vendor(kem)?;
        let (ct, _) = s.encapsulate_key(&m, public, secret)?;
        let m2 = vendor(kem)?;
        encaps.push(Some(making(s, move || Ok(vec![s.encapsulate_key(&m, public, secret)?.1]))));
        decaps.push(Some(making(s, move || Ok(vec![s.decapsulate_key(&m2, private, secret, &ct)?]))));
    }
    Ok((encaps, decaps))
}
