//! A root of trust split 2-of-3 over three SoftHSM2 tokens (`[[root.slots]]`, doc/root.md),
//! through the C ABI: it works with every slot, with any two (a token deleted for good,
//! the module initialized again), refuses with one and names the missing slots, and
//! finds a share that belongs to another slot or another deployment.

#![allow(missing_docs)]

mod common;

use common::hsm::Hsm;
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

const SLOTS: [&str; 3] = ["cv-split-1", "cv-split-2", "cv-split-3"];
const PLAIN: &[u8] = b"what the split root protects";
const IV: [u8; 16] = [7; 16];
const CKM_CV_ROTATE_MASTER: cryptoki_sys::CK_ULONG = 0xC356_0003;

fn rotate(s: &Session) -> cryptoki::error::Result<ObjectHandle> {
    let mechanism = cryptoki::mechanism::MechanismType::new_vendor_defined(CKM_CV_ROTATE_MASTER).expect("vendor range");
    s.generate_key(
        &Mechanism::VendorDefined(cryptoki::mechanism::vendor_defined::VendorDefinedMechanism::new::<()>(
            mechanism, None,
        )),
        &[],
    )
}

/// A store whose root is split `threshold`-of-n over `labels` in `hsm`.
fn workspace(hsm: &Hsm, labels: &[&str], threshold: u8) -> common::Workspace {
    common::Workspace::with_config_body(&format!(
        "{}[[workspace]]\nname = \"main\"\n",
        hsm.split_section(labels, threshold)
    ))
}

/// The module loaded over the current config, and its one slot.
fn load() -> (Pkcs11, cryptoki::slot::Slot) {
    let p = common::load();
    let slot = p.get_all_slots().expect("slots")[0];
    (p, slot)
}

/// Initializes the token, stores an AES key and returns the ciphertext of [`PLAIN`] under it.
fn first_use(p: &Pkcs11, slot: cryptoki::slot::Slot) -> Vec<u8> {
    common::init_token(p, slot, "split");
    let s = common::user_session(p, slot);
    let key = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Label(b"data".to_vec()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .expect("C_GenerateKey under the split root");
    s.encrypt(&Mechanism::AesCbcPad(IV), key, PLAIN).expect("C_Encrypt")
}

/// The stored key still decrypts `ct`, and a master key rotation works.
fn still_works(p: &Pkcs11, slot: cryptoki::slot::Slot, ct: &[u8]) {
    let s = common::user_session(p, slot);
    let found =
        s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(b"data".to_vec())]).expect("find");
    assert_eq!(found.len(), 1);
    assert_eq!(s.decrypt(&Mechanism::AesCbcPad(IV), found[0], ct).expect("C_Decrypt"), PLAIN);
    rotate(&s).expect("a rotation seals a new master key version under the split root");
}

#[test]
fn any_two_of_three_slots_open_the_root_and_one_refuses_naming_the_missing_slots() {
    let _serial = common::lock();
    let hsm = Hsm::with_tokens(&SLOTS);
    let ws = workspace(&hsm, &SLOTS, 2);
    let (p, slot) = load();
    let ct = first_use(&p, slot);
    still_works(&p, slot, &ct);
    p.finalize().expect("C_Finalize");
    assert!(ws.log().contains("split root: dealt a new root 2-of-3"), "{}", ws.log());

    // One HSM gone for good: the module initialized again opens the root from the other two.
    hsm.delete_token(SLOTS[2]);
    let (p, slot) = load();
    still_works(&p, slot, &ct);
    p.finalize().expect("C_Finalize");
    let log = ws.log();
    assert!(log.contains("recombined 2-of-3 from slots \"cv-split-1\", \"cv-split-2\""), "{log}");
    assert!(log.contains("the others hold no share of it"), "a version made without slot 3 says so: {log}");

    // A second one gone: one share is not enough, and the log names the missing slots.
    hsm.delete_token(SLOTS[1]);
    let (p, slot) = load();
    assert_eq!(common::rv_of(p.open_rw_session(slot)), RvError::DeviceError);
    p.finalize().expect("C_Finalize");
    let log = ws.log();
    assert!(log.contains("only 1 slot(s) answer; missing slots: cv-split-2, cv-split-3"), "{log}");
}

#[test]
fn a_share_from_another_deployment_or_another_position_is_found_and_named() {
    let _serial = common::lock();
    let other = ["cv-other-1", "cv-other-2", "cv-other-3"];
    let hsm = Hsm::with_tokens(&[SLOTS[0], SLOTS[1], SLOTS[2], other[0], other[1], other[2]]);
    let ws = workspace(&hsm, &SLOTS, 2);
    let (p, slot) = load();
    let ct = first_use(&p, slot);
    p.finalize().expect("C_Finalize");
    // Another deployment deals its own root over three other tokens.
    let _other_ws = workspace(&hsm, &other, 2);
    let (p, _) = load();
    p.finalize().expect("C_Finalize");

    // The second slot swapped for the other deployment's: the two good shares still
    // open the root, and the stranger is named.
    let mixed = [SLOTS[0], other[1], SLOTS[2]];
    std::fs::write(
        &ws.conf,
        std::fs::read_to_string(&ws.conf)
            .expect("config")
            .replace(&hsm.split_section(&SLOTS, 2), &hsm.split_section(&mixed, 2)),
    )
    .expect("config");
    std::env::set_var("COLLABVAULT_CONF", &ws.conf);
    let (p, slot) = load();
    still_works(&p, slot, &ct);
    p.finalize().expect("C_Finalize");
    let log = ws.log();
    assert!(log.contains("the share of root in slot \"cv-other-2\" does not match the others"), "{log}");

    // With the third slot gone, the stranger's share and one good one do not recombine.
    let two = [SLOTS[0], other[1]];
    let text = std::fs::read_to_string(&ws.conf)
        .expect("config")
        .replace(&hsm.split_section(&mixed, 2), &hsm.split_section(&[two[0], two[1], "cv-gone"], 2));
    std::fs::write(&ws.conf, text).expect("config");
    let (p, slot) = load();
    assert_eq!(common::rv_of(p.open_rw_session(slot)), RvError::DeviceError);
    p.finalize().expect("C_Finalize");
    let log = ws.log();
    assert!(log.contains("no 2 of the shares of root in slots \"cv-split-1\", \"cv-other-2\" recombine"), "{log}");
    assert!(log.contains("missing slots: cv-gone"), "{log}");

    // The deployment's own slots in another order: each share was dealt to another
    // position, which is found, and the one left in place is not enough.
    let swapped = [SLOTS[1], SLOTS[0], SLOTS[2]];
    let text = std::fs::read_to_string(&ws.conf)
        .expect("config")
        .replace(&hsm.split_section(&[two[0], two[1], "cv-gone"], 2), &hsm.split_section(&swapped, 2));
    std::fs::write(&ws.conf, text).expect("config");
    let (p, slot) = load();
    assert_eq!(common::rv_of(p.open_rw_session(slot)), RvError::DeviceError);
    p.finalize().expect("C_Finalize");
    let log = ws.log();
    assert!(
        log.contains(
            "the share of root in slot \"cv-split-2\" was dealt to position 2 of a 2-of-3 split, not position 1"
        ),
        "{log}"
    );

    // In their order again, they open it.
    let text = std::fs::read_to_string(&ws.conf)
        .expect("config")
        .replace(&hsm.split_section(&swapped, 2), &hsm.split_section(&SLOTS, 2));
    std::fs::write(&ws.conf, text).expect("config");
    let (p, slot) = load();
    still_works(&p, slot, &ct);
    p.finalize().expect("C_Finalize");
}

/// The data object labels on token `label` (pkcs11-tool, another process).
fn data_labels(hsm: &Hsm, label: &str) -> String {
    let out = std::process::Command::new("pkcs11-tool")
        .arg("--module")
        .arg(common::hsm::softhsm_module())
        .args(["--token-label", label, "--login", "--pin", common::hsm::ROOT_PIN, "--list-objects", "--type", "data"])
        .env("SOFTHSM2_CONF", hsm.conf().join("softhsm2.conf"))
        .output()
        .expect("pkcs11-tool");
    assert!(out.status.success(), "pkcs11-tool: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn destroying_a_version_deletes_its_shares_and_a_slot_that_was_away_deletes_its_own_later() {
    const CKA_CV_LIFECYCLE: cryptoki_sys::CK_ULONG = 0xC356_0003;
    const AWAY_PIN: &str = "CV_TEST_SLOT3_PIN";
    let _serial = common::lock();
    let hsm = Hsm::with_tokens(&SLOTS);
    // The third slot's PIN comes from its own variable, so it can be made unreachable.
    let section = hsm.split_section(&SLOTS, 2);
    let at = section.rfind(common::hsm::ROOT_PIN_ENV).expect("third slot's pin_env");
    let section = format!("{}{AWAY_PIN}{}", &section[..at], &section[at + common::hsm::ROOT_PIN_ENV.len()..]);
    let ws = common::Workspace::with_config_body(&format!("{section}[[workspace]]\nname = \"main\"\n"));
    std::env::set_var(AWAY_PIN, common::hsm::ROOT_PIN);
    let (p, slot) = load();
    common::init_token(&p, slot, "split");
    let s = common::user_session(&p, slot);
    rotate(&s).expect("v2");
    drop(s);
    p.finalize().expect("C_Finalize");
    let v1_share = "collabvault-split/wmk/main/v1";
    for label in SLOTS {
        assert!(data_labels(&hsm, label).contains(v1_share), "every slot holds a share of v1");
    }

    // The third slot away (its PIN refused), v1 is retired and destroyed.
    std::env::set_var(AWAY_PIN, "not-the-pin");
    let (p, slot) = load();
    let s = common::user_session(&p, slot);
    let v1 = s.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).expect("v1")[0];
    for state in [3u64, 4] {
        let value = state.to_ne_bytes().to_vec();
        let attr = Attribute::VendorDefined((cryptoki::object::AttributeType::VendorDefined(CKA_CV_LIFECYCLE), value));
        s.update_attributes(v1, &[attr]).expect("retire, then destroy v1");
    }
    drop(s);
    p.finalize().expect("C_Finalize");
    for label in &SLOTS[..2] {
        let objects = data_labels(&hsm, label);
        assert!(!objects.contains(v1_share), "{label}: v1's share is gone: {objects}");
        assert!(objects.contains("collabvault-split-destroyed/wmk/main/v1"), "{label}: a tombstone: {objects}");
    }
    assert!(data_labels(&hsm, SLOTS[2]).contains(v1_share), "the slot that was away still holds its share");

    // Back, the next initialization finds the tombstone and deletes the last share.
    std::env::set_var(AWAY_PIN, common::hsm::ROOT_PIN);
    let (p, slot) = load();
    let s = common::user_session(&p, slot);
    rotate(&s).expect("v3 under all three slots");
    drop(s);
    p.finalize().expect("C_Finalize");
    let objects = data_labels(&hsm, SLOTS[2]);
    assert!(!objects.contains(v1_share), "{objects}");
    assert!(objects.contains("collabvault-split-destroyed/wmk/main/v1"), "{objects}");
    assert!(objects.contains("collabvault-split/wmk/main/v2"), "other versions' shares stay: {objects}");
    assert!(ws.log().contains("slot \"cv-split-3\" held a share of destroyed wmk/main/v1; deleted"), "{}", ws.log());
}

#[test]
fn a_version_dealt_only_in_part_is_dealt_anew_by_the_next_rotation() {
    let _serial = common::lock();
    let hsm = Hsm::with_tokens(&SLOTS);
    let ws = workspace(&hsm, &SLOTS, 2);
    let (p, slot) = load();
    common::init_token(&p, slot, "split");
    let s = common::user_session(&p, slot);
    // The second slot goes while the module runs: the rotation writes v2's share to the
    // first slot, fails on the second, and stores nothing.
    hsm.delete_token(SLOTS[1]);
    assert_eq!(common::rv_of(rotate(&s)), RvError::DeviceError, "a rotation cut short");
    drop(s);
    p.finalize().expect("C_Finalize");
    assert!(data_labels(&hsm, SLOTS[0]).contains("collabvault-split/wmk/main/v2"), "a partial deal");

    // The module again, over the two slots left: v2's lone share does not recombine, and
    // the rotation replaces it instead of failing for good.
    let (p, slot) = load();
    let s = common::user_session(&p, slot);
    rotate(&s).expect("the rotation retried");
    let found = s.find_objects(&[Attribute::Label(b"collabvault-master-v2".to_vec())]).expect("v2");
    assert_eq!(found.len(), 1, "v2 exists");
    drop(s);
    p.finalize().expect("C_Finalize");
    let log = ws.log();
    assert!(log.contains("partial share(s) of wmk/main/v2 that do not recombine deleted"), "{log}");
    // And the versions run on in a process of their own.
    let (p, slot) = load();
    let s = common::user_session(&p, slot);
    rotate(&s).expect("v3 after v2");
    drop(s);
    p.finalize().expect("C_Finalize");
}
