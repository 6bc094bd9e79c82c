//! A tour of the token through the `cryptoki` crate, as an application sees it: load the
//! module, initialize the token, log in, store a data object and an AES key, find them
//! again, and show that the key's bytes never leave the token.
//!
//! Run: `COLLABVAULT_MODULE=target/release/libcollabvault_pkcs11.so cargo run --release --example token_tour`
//! (with `COLLABVAULT_CONF` naming a config, or none for the per-user default store).

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let module =
        std::env::var("COLLABVAULT_MODULE").unwrap_or_else(|_| "target/release/libcollabvault_pkcs11.so".into());
    let pkcs11 = Pkcs11::new(&module)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let info = pkcs11.get_library_info()?;
    println!("loaded {} ({}), Cryptoki {}", module, info.library_description(), info.cryptoki_version());

    let slot = pkcs11.get_all_slots()?[0];
    let so_pin = AuthPin::new("tour-so-pin".into());
    let user_pin = AuthPin::new("tour-user-pin".into());
    pkcs11.init_token(slot, &so_pin, "token tour")?;
    {
        let so = pkcs11.open_rw_session(slot)?;
        so.login(UserType::So, Some(&so_pin))?;
        so.init_pin(&user_pin)?;
    }
    let token = pkcs11.get_token_info(slot)?;
    println!("token {:?}: model {:?}, serial {}", token.label(), token.model(), token.serial_number());

    let session = pkcs11.open_rw_session(slot)?;
    session.login(UserType::User, Some(&user_pin))?;
    let doc = session.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Label(b"quarterly report".to_vec()),
        Attribute::Value(b"numbers only the board may see".to_vec()),
        Attribute::Private(true),
    ])?;
    let key_bytes = [0x5a_u8; 32];
    let key = session.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Label(b"report key".to_vec()),
        Attribute::Id(b"k1".to_vec()),
        Attribute::Value(key_bytes.to_vec()),
    ])?;
    println!("created data object {doc} and AES key {key}");

    let found = session.find_objects(&[Attribute::Id(b"k1".to_vec())])?;
    println!("find by CKA_ID \"k1\": {} object(s)", found.len());
    match session.get_attributes(key, &[AttributeType::Value]) {
        Ok(attrs) if attrs.is_empty() => println!("CKA_VALUE of the key: not revealed (sensitive)"),
        Ok(attrs) => println!("CKA_VALUE of the key: {attrs:?} (unexpected!)"),
        Err(e) => println!("CKA_VALUE of the key: refused ({e})"),
    }
    let len = session.get_attributes(key, &[AttributeType::ValueLen])?;
    println!("CKA_VALUE_LEN of the key: {len:?}");
    session.logout()?;
    let hidden = session.find_objects(&[Attribute::Class(ObjectClass::DATA)])?;
    println!("after logout, private data objects visible: {}", hidden.len());
    drop(session);
    pkcs11.finalize()?;
    Ok(())
}
