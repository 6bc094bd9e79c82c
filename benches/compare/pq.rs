//! Post-quantum rows: ML-DSA-65 key pairs, signatures and checks (FIPS 204, pure, hedged,
//! 64-byte messages), and X-Wing encapsulation and decapsulation (the vendor hybrid KEM),
//! each beside the raw crate (`ml-dsa`, `x-wing`). SoftHSM2 2.6 offers neither, and
//! Kryoptic as built here (without `pqc`) neither: their columns say so.

use std::hint::black_box;

use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, MlDsaParameterSetType, ObjectHandle};
use cryptoki::session::Session;
use ml_dsa::{MlDsa65, SigningKey};
use x_wing::{Decapsulate, Encapsulate, KeyExport};

use super::client::shared_secret_template;
use super::{err, measure_row, random, timed, Batch, Client, Res, Token};

/// `CKM_CV_XWING_KEY_PAIR_GEN` and `CKM_CV_XWING` (include/collabvault.h).
const CKM_CV_XWING_KEY_PAIR_GEN: u64 = 0xC356_0010;
const CKM_CV_XWING: u64 = 0xC356_0011;

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

/// A batch of `op`, which makes objects; only `op` is timed.
fn making<'a>(s: &'a Session, op: impl Fn() -> Res<Vec<ObjectHandle>> + 'a) -> Batch<'a> {
    Box::new(move |n| {
        let mut total = std::time::Duration::ZERO;
        for _ in 0..n {
            let start = std::time::Instant::now();
            let made = op()?;
            total += start.elapsed();
            made.into_iter().try_for_each(|h| s.destroy_object(h))?;
        }
        Ok(total)
    })
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

    let xwing = vendor(CKM_CV_XWING)?;
    let xwing = &xwing;
    let secret = shared_secret_template();
    let secret = &secret;
    let raw_dk = x_wing::DecapsulationKey::from(random::<32>()?);
    let raw_ek = x_wing::EncapsulationKey::try_from(&x_wing::Decapsulator::encapsulation_key(&raw_dk).to_bytes()[..])
        .map_err(|_| err("x-wing public key"))?;
    let (raw_ct, _) = raw_ek.encapsulate();
    let (mut encaps, mut decaps) = (Vec::new(), Vec::new());
    for client in clients {
        let s = client.s;
        let Ok((public, private)) = s.generate_key_pair(&vendor(CKM_CV_XWING_KEY_PAIR_GEN)?, &[], &[]) else {
            encaps.push(None);
            decaps.push(None);
            continue;
        };
        let (ct, _) = s.encapsulate_key(xwing, public, secret)?;
        encaps.push(Some(making(s, move || Ok(vec![s.encapsulate_key(xwing, public, secret)?.1]))));
        decaps.push(Some(making(s, move || Ok(vec![s.decapsulate_key(xwing, private, secret, &ct)?]))));
    }
    encaps.push(Some(Box::new(|n| {
        timed(n, || {
            black_box(raw_ek.encapsulate());
            Ok(())
        })
    })));
    decaps.push(Some(Box::new(|n| {
        timed(n, || {
            black_box(raw_dk.decapsulate(&raw_ct));
            Ok(())
        })
    })));
    row("X-Wing encapsulate", encaps)?;
    row("X-Wing decapsulate", decaps)
}
