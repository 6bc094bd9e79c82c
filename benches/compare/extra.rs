//! Further rows: AES-GCM through the 3.0 message API, AES-256 key generation
//! (session and durable token object), AES key wrap with padding (KWP), the hierarchy's
//! DEK wrap and unwrap under the workspace master key (`CKM_CV_WRAP_RECORD`),
//! EC P-256 and ML-KEM-768 key pair generation, SHA-256, HMAC-SHA256 and
//! `C_GenerateRandom`. Each against SoftHSM2 and Kryoptic (when in the run) through the
//! same client code and against the raw crate.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::AeadInOut;
use aes_gcm::Nonce;
use cryptoki::mechanism::aead::{GcmMessageParams, GeneratorFunction};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType, MessageParam};
use cryptoki::object::{Attribute, KeyType, MlKemParameterSetType, ObjectHandle};
use hmac::{Hmac, KeyInit, Mac};
use ml_kem::{DecapsulationKey, MlKem768};
use sha2::{Digest, Sha256};

use super::{err, kwp, measure_row, random, secret_template, timed, Batch, Client, Raw, Res, Token, P256_OID};

/// `CKM_CV_WRAP_RECORD` (include/collabvault.h): a DEK sealed under the workspace master key.
const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;
/// The label of the current master key object.
const MASTER_LABEL: &[u8] = b"collabvault-master";

fn vendor(ty: u64) -> Res<Mechanism<'static>> {
    let ty = MechanismType::new_vendor_defined(ty).map_err(|e| err(e.to_string()))?;
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None)))
}

fn size_label(size: usize) -> &'static str {
    match size {
        64 => "64 B",
        4096 => "4 KiB",
        _ => "1 MiB",
    }
}

/// A batch that makes `n` session objects with `op` and destroys them, both timed (see
/// `Client::making_keys`: what a module defers from the make is in the timed part).
fn making<'a>(c: &'a Client<'a>, op: impl Fn() -> Res<Vec<ObjectHandle>> + 'a) -> Batch<'a> {
    Box::new(move |n| {
        let start = Instant::now();
        for _ in 0..n {
            for h in op()? {
                c.s.destroy_object(h)?;
            }
        }
        Ok(start.elapsed())
    })
}

/// A batch that makes `n` durable token objects with `op`, timed, and destroys them
/// untimed: each make commits on its own (nothing of it waits for a later call), and the
/// destroy is a durable commit of its own, not part of making a key.
fn making_durable<'a>(c: &'a Client<'a>, op: impl Fn() -> Res<Vec<ObjectHandle>> + 'a) -> Batch<'a> {
    Box::new(move |n| {
        let mut total = Duration::ZERO;
        for _ in 0..n {
            let start = Instant::now();
            let made = op()?;
            total += start.elapsed();
            for h in made {
                c.s.destroy_object(h)?;
            }
        }
        Ok(total)
    })
}

/// Whether a module offers the 3.0 message-based encryption functions with AES-GCM.
fn has_message_api(c: &Client<'_>) -> bool {
    if c.s.message_encrypt_init(&Mechanism::AesGcm(gcm_dummy()), c.gcm_key).is_err()
        && c.s.message_encrypt_init(&Mechanism::AesGcmMessage(msg_dummy()), c.gcm_key).is_err()
    {
        return false;
    }
    c.s.message_encrypt_final().is_ok()
}

fn gcm_dummy() -> cryptoki::mechanism::aead::GcmParams<'static> {
    let iv: &'static mut [u8] = Box::leak(Box::new([0u8; 12]));
    #[allow(clippy::expect_used)]
    cryptoki::mechanism::aead::GcmParams::new(iv, &[], 128.into()).expect("GCM parameters")
}

fn msg_dummy() -> GcmMessageParams<'static> {
    let iv: &'static mut [u8] = Box::leak(Box::new([0u8; 12]));
    let tag: &'static mut [u8] = Box::leak(Box::new([0u8; 16]));
    #[allow(clippy::expect_used)]
    GcmMessageParams::new(iv, 32.into(), GeneratorFunction::GenerateCounter, tag).expect("message parameters")
}

/// Message-API initialization: the module takes plain `CKM_AES_GCM`.
fn message_init(c: &Client<'_>, encrypt: bool) -> Res<()> {
    let m = Mechanism::AesGcm(gcm_dummy());
    if encrypt {
        c.s.message_encrypt_init(&m, c.gcm_key)?;
    } else {
        c.s.message_decrypt_init(&m, c.gcm_key)?;
    }
    Ok(())
}

/// Runs the rows; `wanted` filters by row name.
///
/// `tokens`, their library `paths` and `clients` are in peer order: collabvault first,
/// then SoftHSM2 and Kryoptic (when in the run).
pub(super) fn run(
    tokens: &[&Token],
    paths: &[&std::path::Path],
    clients: &[&Client<'_>],
    raw: &Raw,
    wanted: &dyn Fn(&str) -> bool,
) -> Res<()> {
    let cvc = clients[0];
    let row = |name: &str, contenders: Vec<Option<Batch<'_>>>| -> Res<()> {
        if wanted(name) {
            measure_row(name, contenders)?;
        }
        Ok(())
    };

    // AES-256-GCM through the 3.0 message API: one C_MessageEncryptInit per batch, then
    // one C_EncryptMessage per message with a token-generated counter IV.
    let message_ok: Vec<bool> = clients.iter().map(|c| has_message_api(c)).collect();
    for size in [64usize, 4096, 1 << 20] {
        let data = vec![0x3cu8; size];
        let data = &data;
        let mut c: Vec<Option<Batch<'_>>> = Vec::new();
        for (client, ok) in clients.iter().zip(message_ok.iter().copied()) {
            c.push(ok.then(|| -> Batch<'_> {
                Box::new(move |n| {
                    let start = Instant::now();
                    message_init(client, true)?;
                    for _ in 0..n {
                        let mut iv = [0u8; 12];
                        let mut tag = [0u8; 16];
                        let p =
                            GcmMessageParams::new(&mut iv, 32.into(), GeneratorFunction::GenerateCounter, &mut tag)?;
                        black_box(client.s.encrypt_message(&MessageParam::AesGcmMessage(p), &[], data)?);
                    }
                    client.s.message_encrypt_final()?;
                    Ok(start.elapsed())
                })
            }));
        }
        let mut ctr = 0u64;
        let mut buf = Vec::with_capacity(size + 16);
        c.push(Some(Box::new(move |n| timed(n, || raw.gcm_encrypt(&mut ctr, data, &mut buf)))));
        row(&format!("AES-256-GCM encrypt {} (message API)", size_label(size)), c)?;

        let mut c: Vec<Option<Batch<'_>>> = Vec::new();
        for (client, ok) in clients.iter().zip(message_ok.iter().copied()) {
            if !ok {
                c.push(None);
                continue;
            }
            // One message sealed with a caller IV, opened again and again.
            let iv0 = [9u8; 12];
            let mut tag0 = [0u8; 16];
            message_init(client, true)?;
            let sealed = {
                let mut iv = iv0;
                let p = GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag0)?;
                client.s.encrypt_message(&MessageParam::AesGcmMessage(p), &[], data)?
            };
            client.s.message_encrypt_final()?;
            c.push(Some(Box::new(move |n| {
                let start = Instant::now();
                message_init(client, false)?;
                for _ in 0..n {
                    let mut iv = iv0;
                    let mut tag = tag0;
                    let p = GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag)?;
                    black_box(client.s.decrypt_message(&MessageParam::AesGcmMessage(p), &[], &sealed)?);
                }
                client.s.message_decrypt_final()?;
                Ok(start.elapsed())
            })));
        }
        let mut sealed = data.clone();
        let tag = raw
            .gcm
            .encrypt_inout_detached(&Nonce::from([7u8; 12]), &[], sealed.as_mut_slice().into())
            .map_err(|e| err(e.to_string()))?;
        sealed.extend_from_slice(&tag);
        let mut buf = Vec::with_capacity(size);
        c.push(Some(Box::new(move |n| timed(n, || raw.gcm_decrypt(&sealed, &mut buf)))));
        row(&format!("AES-256-GCM decrypt {} (message API)", size_label(size)), c)?;
    }

    // AES-256 key generation: a session object, then a token object (committed durably).
    for token_object in [false, true] {
        let mut c: Vec<Option<Batch<'_>>> = Vec::new();
        for &client in clients {
            let make = if token_object { making_durable } else { making };
            c.push(Some(make(client, move || {
                let t = vec![
                    cryptoki::object::Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
                    Attribute::Token(token_object),
                    Attribute::Private(true),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ];
                Ok(vec![client.s.generate_key(&Mechanism::AesKeyGen, &t)?])
            })));
        }
        c.push((!token_object).then(|| -> Batch<'_> {
            Box::new(|n| {
                timed(n, || {
                    black_box(random::<32>()?);
                    Ok(())
                })
            })
        }));
        let what = if token_object { "token object, durable" } else { "session object" };
        row(&format!("AES-256 key generation ({what})"), c)?;
    }

    // AES key wrap with padding (RFC 5649) of an AES-256 key under an AES-256 KEK, through
    // the raw C ABI (kwp.rs: cryptoki 0.12 cannot name CKM_AES_KEY_WRAP_KWP). Setup checks
    // that every module wraps a known key to the raw crate's bytes.
    let (kek_value, raw_target) = (random::<32>()?, random::<32>()?);
    let raw_kwp = aes_kw::KwpAes256::new_from_slice(&kek_value).map_err(|e| err(e.to_string()))?;
    let raw_kwp = &raw_kwp;
    let expected = kwp::raw_wrap(raw_kwp, &raw_target)?;
    let raw_wrapped = expected.clone();
    let kwps = tokens
        .iter()
        .zip(paths)
        .map(|(token, path)| kwp::Kwp::setup(token, path, &kek_value, &raw_target, &expected))
        .collect::<Res<Vec<_>>>()?;
    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for k in &kwps {
        c.push(k.as_ref().map(|k| -> Batch<'_> {
            Box::new(move |n| {
                timed(n, || {
                    black_box(k.wrap()?);
                    Ok(())
                })
            })
        }));
    }
    c.push(Some(Box::new(move |n| {
        let mut out = [0u8; 40];
        timed(n, || {
            black_box(raw_kwp.wrap_key(&raw_target, &mut out).map_err(|e| err(e.to_string()))?);
            Ok(())
        })
    })));
    row("AES-KWP wrap AES-256 key", c)?;
    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for k in &kwps {
        c.push(k.as_ref().map(|k| -> Batch<'_> {
            Box::new(move |n| {
                let mut total = Duration::ZERO;
                for _ in 0..n {
                    let start = Instant::now();
                    let h = k.unwrap()?;
                    total += start.elapsed();
                    k.destroy(h)?;
                }
                Ok(total)
            })
        }));
    }
    c.push(Some(Box::new(move |n| {
        let mut out = [0u8; 40];
        timed(n, || {
            black_box(raw_kwp.unwrap_key(&raw_wrapped, &mut out).map_err(|e| err(e.to_string()))?);
            Ok(())
        })
    })));
    row("AES-KWP unwrap AES-256 key", c)?;

    // The hierarchy's DEK wrap and unwrap under the workspace master key: the
    // bench workspace has the software root. Raw: AES-256-GCM over a 32-byte key with a
    // record-sized header as associated data, which is the record's cryptography.
    let wrap_record = vendor(CKM_CV_WRAP_RECORD)?;
    let wrap_record = &wrap_record;
    let master = cvc.s.find_objects(&[Attribute::Label(MASTER_LABEL.to_vec())])?;
    let master = *master.first().ok_or_else(|| err("collabvault: no current master key object"))?;
    let dek = cvc.s.generate_key(
        &Mechanism::AesKeyGen,
        &secret_template(&[
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ]),
    )?;
    let record = cvc.s.wrap_key(wrap_record, master, dek)?;
    let record = &record;
    let header = [0x11u8; 40];
    let header = &header;
    let c: Vec<Option<Batch<'_>>> = vec![
        Some(Box::new(move |n| {
            timed(n, || {
                black_box(cvc.s.wrap_key(wrap_record, master, dek)?);
                Ok(())
            })
        })),
        None,
        Some(Box::new(move |n| {
            let mut buf = [0u8; 32];
            timed(n, || {
                buf.copy_from_slice(&raw_target);
                let tag = raw
                    .gcm
                    .encrypt_inout_detached(&Nonce::from(random::<12>()?), header, buf.as_mut_slice().into())
                    .map_err(|e| err(e.to_string()))?;
                black_box((&buf, tag));
                Ok(())
            })
        })),
    ];
    row("CV_WRAP_RECORD wrap DEK under master (soft root)", c)?;
    let mut raw_sealed = raw_target;
    let raw_tag = raw
        .gcm
        .encrypt_inout_detached(&Nonce::from([5u8; 12]), header, raw_sealed.as_mut_slice().into())
        .map_err(|e| err(e.to_string()))?;
    let c: Vec<Option<Batch<'_>>> = vec![
        Some(making(cvc, move || {
            Ok(vec![cvc.s.unwrap_key(wrap_record, master, record, &[Attribute::Token(false)])?])
        })),
        None,
        Some(Box::new(move |n| {
            let mut buf = [0u8; 32];
            timed(n, || {
                buf.copy_from_slice(&raw_sealed);
                raw.gcm
                    .decrypt_inout_detached(&Nonce::from([5u8; 12]), header, buf.as_mut_slice().into(), &raw_tag)
                    .map_err(|e| err(e.to_string()))?;
                black_box(&buf);
                Ok(())
            })
        })),
    ];
    row("CV_WRAP_RECORD unwrap DEK under master (soft root)", c)?;

    // EC P-256 key pair generation.
    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for (client, token) in clients.iter().zip(tokens) {
        c.push(token.has(MechanismType::ECC_KEY_PAIR_GEN)?.then(|| {
            making(client, move || {
                let (public, private) = client.s.generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[Attribute::Token(false), Attribute::EcParams(P256_OID.to_vec()), Attribute::Verify(true)],
                    &[Attribute::Token(false), Attribute::Sign(true), Attribute::Sensitive(true)],
                )?;
                Ok(vec![public, private])
            })
        }));
    }
    c.push(Some(Box::new(|n| {
        timed(n, || {
            let secret = loop {
                if let Ok(k) = p256::SecretKey::from_slice(&random::<32>()?) {
                    break k;
                }
            };
            black_box(secret.public_key());
            Ok(())
        })
    })));
    row("EC P-256 key pair generation", c)?;

    // ML-KEM-768 key pair generation.
    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for &client in clients {
        c.push(client.mlkem.is_some().then(|| {
            making(client, move || {
                let (public, private) = client.s.generate_key_pair(
                    &Mechanism::MlKemKeyPairGen,
                    &[
                        Attribute::Token(false),
                        Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
                        Attribute::Encapsulate(true),
                    ],
                    &[Attribute::Token(false), Attribute::Decapsulate(true)],
                )?;
                Ok(vec![public, private])
            })
        }));
    }
    c.push(Some(Box::new(|n| {
        timed(n, || {
            let dk = DecapsulationKey::<MlKem768>::from_seed(random::<64>()?.into());
            black_box(dk.encapsulation_key());
            Ok(())
        })
    })));
    row("ML-KEM-768 key pair generation", c)?;

    // SHA-256 and HMAC-SHA256 over 4 KiB.
    let block = vec![0xa5u8; 4096];
    let block = &block;
    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for (client, token) in clients.iter().zip(tokens) {
        c.push(token.has(MechanismType::SHA256)?.then(|| -> Batch<'_> {
            Box::new(move |n| {
                timed(n, || {
                    black_box(client.s.digest(&Mechanism::Sha256, block)?);
                    Ok(())
                })
            })
        }));
    }
    c.push(Some(Box::new(move |n| {
        timed(n, || {
            black_box(Sha256::digest(block));
            Ok(())
        })
    })));
    row("SHA-256 digest 4 KiB", c)?;

    let hmac_key = random::<32>()?;
    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for (client, token) in clients.iter().zip(tokens) {
        if !token.has(MechanismType::SHA256_HMAC)? {
            c.push(None);
            continue;
        }
        let key = client.s.create_object(&[
            Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sign(true),
            Attribute::Value(hmac_key.to_vec()),
        ])?;
        c.push(Some(Box::new(move |n| {
            timed(n, || {
                black_box(client.s.sign(&Mechanism::Sha256Hmac, key, block)?);
                Ok(())
            })
        })));
    }
    c.push(Some(Box::new(move |n| {
        timed(n, || {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&hmac_key).map_err(|e| err(e.to_string()))?;
            mac.update(block);
            black_box(mac.finalize().into_bytes());
            Ok(())
        })
    })));
    row("HMAC-SHA256 4 KiB", c)?;

    // C_GenerateRandom, 32 bytes.
    let mut c: Vec<Option<Batch<'_>>> = Vec::new();
    for &client in clients {
        c.push(Some(Box::new(move |n| {
            let mut buf = [0u8; 32];
            timed(n, || {
                client.s.generate_random_slice(&mut buf)?;
                black_box(&buf);
                Ok(())
            })
        })));
    }
    c.push(Some(Box::new(|n| {
        timed(n, || {
            black_box(random::<32>()?);
            Ok(())
        })
    })));
    row("C_GenerateRandom 32 B", c)?;
    Ok(())
}
