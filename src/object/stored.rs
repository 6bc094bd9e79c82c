//! The stored form of an object: the clear attributes of its row, and the sealed part
//! (secret attributes, plus the row binding) that `AtRest` seals under the storage key or
//! as a wrap record. Everything in the row is authenticated when the sealed part opens: a
//! row edited in the store file answers an integrity error, never an object with a
//! changed policy.

use std::collections::BTreeMap;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::policy::Classes;
use super::{codec, Attr, Object, Template};
use crate::error::{Error, Result};
use crate::store::{sealed, ObjectRecord};

/// How an object's secret attributes are sealed at rest: the session layer decides (the
/// storage key, or a wrap record under the master key for stored DEKs).
pub trait AtRest {
    /// Seals the encoded secret attributes of `object`: the blob, and the master key
    /// version that sealed it when it is a wrap record.
    fn seal(&self, object: &Object, secret: &[u8]) -> Result<(Vec<u8>, Option<u32>)>;
    /// Opens a stored object's sealed part; `None` when the key to open it is not
    /// available (nobody logged in).
    fn open(&self, record: &ObjectRecord) -> Result<Option<Zeroizing<Vec<u8>>>>;
}

/// Sealing under the token's storage key, when one is at hand. The associated data binds
/// the object's unique id and the attributes a wrap record binds (`CKA_SENSITIVE`,
/// `CKA_EXTRACTABLE`, usage flags...); the row binding inside the sealed part covers the
/// rest of the row and its generation: a row edited outside the token no longer opens.
pub struct UnderStorageKey<'a>(pub Option<&'a [u8; 32]>);

/// The associated data that binds a stored object's sealed part to its row.
pub fn binding(unique_id: &str, bound: &Template) -> Result<Vec<u8>> {
    let mut aad = format!("object:{unique_id}:").into_bytes();
    aad.extend_from_slice(&bound.encode_nested()?);
    Ok(aad)
}

/// The bound attributes of a stored row, read from its clear attributes.
pub fn bound_in_record(record: &ObjectRecord) -> Result<Template> {
    let attrs: BTreeMap<_, _> = codec::decode(&record.attrs)?.into_iter().collect();
    Ok(Template(super::BOUND.iter().filter_map(|ty| attrs.get(ty).map(|v| Attr::new(*ty, v.clone()))).collect()))
}

impl AtRest for UnderStorageKey<'_> {
    fn seal(&self, object: &Object, secret: &[u8]) -> Result<(Vec<u8>, Option<u32>)> {
        let key = self.0.ok_or(Error::UserNotLoggedIn)?;
        let aad = binding(&object.unique_id(), &object.bound_attributes())?;
        Ok((sealed::seal(key, &aad, secret)?, None))
    }

    fn open(&self, record: &ObjectRecord) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let (Some(key), Some(blob)) = (self.0, &record.sealed) else {
            return Ok(None);
        };
        let aad = binding(&record.unique_id, &bound_in_record(record)?)?;
        sealed::open(key, &aad, blob).map(Some)
    }
}

/// Opens a sealed part that carries the row binding. A sealed part written before
/// bindings existed starts with an attribute type (8 bytes, little-endian), never with
/// these bytes, which as a type would be an attribute this token does not seal.
const BINDING_MAGIC: &[u8; 8] = b"CVBIND01";

/// Length of the row binding (SHA-256).
const BINDING_LEN: usize = 32;

/// The row binding: a digest of everything in a stored row that is kept in the clear
/// (every attribute outside the sealed part, so every policy attribute: usage flags,
/// `CKA_TRUSTED`, `CKA_WRAP_WITH_TRUSTED`, `CKA_ALLOWED_MECHANISMS`, the templates,
/// `CKA_PRIVATE`, `CKA_MODIFIABLE`, ...), its class and private columns, its unique id
/// and its generation. It travels inside the sealed part, whose AEAD authenticates it, so
/// a row edited in the store file (an attribute, a column, the generation) no longer
/// opens. Being inside the plaintext rather than in the associated data, it survives a
/// re-wrap of a stored DEK under a new master key version unchanged.
fn row_binding(unique_id: &str, generation: u64, class: u64, private: bool, clear: &[u8]) -> Vec<u8> {
    let mut d = crate::mechanism::hash::digester(crate::mechanism::HashAlg::Sha256);
    d.update(b"collabvault object row binding v1\0");
    d.update(&(unique_id.len() as u64).to_le_bytes());
    d.update(unique_id.as_bytes());
    d.update(&generation.to_le_bytes());
    d.update(&class.to_le_bytes());
    d.update(&[u8::from(private)]);
    d.update(clear);
    d.finish()
}

/// Splits an opened sealed part into its row binding (if it has one: parts sealed before
/// bindings existed do not) and the encoded secret attributes.
fn split_binding(plain: &[u8]) -> Result<(Option<&[u8]>, &[u8])> {
    match plain.strip_prefix(BINDING_MAGIC.as_slice()) {
        Some(rest) if rest.len() >= BINDING_LEN => Ok((Some(&rest[..BINDING_LEN]), &rest[BINDING_LEN..])),
        Some(_) => Err(Error::Integrity("stored object's binding is truncated")),
        None => Ok((None, plain)),
    }
}

impl Object {
    /// Whether this object came from a stored row sealed before row bindings existed,
    /// which should be sealed again (with a binding) on its first use.
    pub fn needs_binding(&self) -> bool {
        !self.bound && !self.locked && self.is_token() && self.types().any(|t| self.is_sealed(t))
    }

    /// The stored form; secret attributes are sealed by `at_rest`, so storing an object
    /// that has any needs a logged-in user or SO.
    pub fn to_record(&self, at_rest: &dyn AtRest) -> Result<ObjectRecord> {
        if self.locked {
            return Err(Error::UserNotLoggedIn);
        }
        // Every attribute, the class defaults a made object reads included: the row is the
        // same as if they had been copied into the object.
        let (secret, public): (Vec<_>, Vec<_>) = self.entries().into_iter().partition(|(ty, _)| self.is_sealed(*ty));
        let attrs = codec::encode(public.into_iter())?.to_vec();
        // A trusted object is sealed even without secret attributes, so that its trust
        // is bound (see `from_record`).
        let (sealed, master_version) = if secret.is_empty() && !self.flag(CKA_TRUSTED) {
            (None, None)
        } else {
            let mut plain = Zeroizing::new(BINDING_MAGIC.to_vec());
            plain.extend_from_slice(&row_binding(
                &self.unique_id(),
                self.generation,
                self.class(),
                self.is_private(),
                &attrs,
            ));
            plain.extend_from_slice(&codec::encode(secret.into_iter())?);
            let (blob, version) = at_rest.seal(self, &plain)?;
            (Some(blob), version)
        };
        Ok(ObjectRecord {
            class: self.class(),
            key_type: self.ulong(CKA_KEY_TYPE),
            label: self.bytes(CKA_LABEL).unwrap_or_default().to_vec(),
            ckid: self.bytes(CKA_ID).map(<[u8]>::to_vec),
            private: self.is_private(),
            attrs,
            sealed,
            master_version,
            unique_id: self.unique_id(),
            generation: self.generation,
        })
    }

    /// Rebuilds an object from its stored form. When `at_rest` cannot open the sealed
    /// part (nobody logged in), those attributes stay closed and read as sensitive.
    pub fn from_record(record: &ObjectRecord, at_rest: &dyn AtRest) -> Result<Object> {
        let class = Classes::of(record.class).ok_or(Error::Integrity("stored object has an unknown class"))?;
        // In an object from the start, so opened secret values are zeroized on every
        // early return below.
        let mut object = Object::holding(codec::decode(&record.attrs)?.into_iter().collect());
        object.class = class;
        let attrs = &mut object.attrs;
        let mut locked = false;
        let mut bound = false;
        if record.sealed.is_some() {
            match at_rest.open(record)? {
                Some(plain) => {
                    let (binding, secret) = split_binding(&plain)?;
                    match binding {
                        Some(b) => {
                            let want = row_binding(
                                &record.unique_id,
                                record.generation,
                                record.class,
                                record.private,
                                &record.attrs,
                            );
                            if b != want.as_slice() {
                                return Err(Error::Integrity("stored object's row was changed outside the token"));
                            }
                            bound = true;
                        }
                        // Rows written since bindings exist start at generation 0 and
                        // carry one at every generation; only an older row lacks it.
                        None if record.generation != 0 => {
                            return Err(Error::Integrity("stored object's binding is missing"))
                        }
                        None => {}
                    }
                    attrs.extend(codec::decode(secret)?);
                }
                None => locked = true,
            }
        }
        object.locked = locked;
        object.generation = record.generation;
        object.bound = bound;
        if object.class() != record.class || object.unique_id() != record.unique_id {
            return Err(Error::Integrity("stored object's columns disagree with its attributes"));
        }
        if object.is_private() != record.private {
            return Err(Error::Integrity("stored object's private column disagrees with its attributes"));
        }
        if object.flag(CKA_TRUSTED) && !bound && !locked {
            // Trust the token did not bind (a row from before the SO-only rule, or one
            // edited in the file) is not honoured: the SO sets it again.
            log::warn!("stored object {} claims CKA_TRUSTED without a binding: read as untrusted", record.unique_id);
            object.attrs.insert(CKA_TRUSTED, vec![CK_FALSE]);
        }
        Ok(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::tests::aes_key;
    use crate::object::Read;

    #[test]
    fn the_stored_form_seals_key_material() {
        let o = Object::create(&aes_key(vec![Attr::new(CKA_LABEL, "k")])).expect("create");
        let key = [3u8; 32];
        let rec = o.to_record(&UnderStorageKey(Some(&key))).expect("record");
        assert!(!rec.attrs.windows(32).any(|w| w == [0x11; 32]));
        assert!(!rec.sealed.as_ref().expect("sealed").windows(32).any(|w| w == [0x11; 32]));
        assert_eq!(Object::from_record(&rec, &UnderStorageKey(Some(&key))).expect("load"), o);
        let locked = Object::from_record(&rec, &UnderStorageKey(None)).expect("load locked");
        assert_eq!(locked.read(CKA_VALUE), Read::Sensitive);
        assert_eq!(locked.read(CKA_LABEL), Read::Value(b"k"));
        assert_eq!(o.to_record(&UnderStorageKey(None)).unwrap_err(), Error::UserNotLoggedIn);
    }

    /// `o` with its class defaults copied into its attributes, as objects were once made.
    fn filled(o: &Object) -> Object {
        let mut full = o.clone();
        for (t, v) in o.defaults {
            full.attrs.entry(*t).or_insert_with(|| v.clone());
        }
        full.defaults = &[];
        full
    }

    #[test]
    fn a_made_object_stores_the_row_its_defaults_copied_in_would_give() {
        let key = [3u8; 32];
        let at_rest = UnderStorageKey(Some(&key));
        let data = Template(vec![Attr::ulong(CKA_CLASS, CKO_DATA), Attr::new(CKA_VALUE, "v")]);
        let made = [
            Object::create(&aes_key(vec![Attr::bool(CKA_TOKEN, true), Attr::bool(CKA_ENCRYPT, false)])).expect("key"),
            Object::create(&data).expect("data"),
        ];
        for o in made {
            let full = filled(&o);
            assert!(full.attrs.len() > o.attrs.len(), "the made object holds no copied defaults");
            assert_eq!(o, full);
            assert_eq!(o.size(), full.size());
            assert_eq!(format!("{o:?}"), format!("{full:?}"));
            for row in super::super::policy::TABLE {
                assert_eq!(o.read(row.ty), full.read(row.ty), "{}", crate::names::attr_name(row.ty));
            }
            let (a, b) = (o.to_record(&at_rest).expect("sparse"), full.to_record(&at_rest).expect("full"));
            assert_eq!(a.attrs, b.attrs, "clear attributes");
            assert_eq!(
                (a.class, a.key_type, &a.label, &a.ckid, a.private),
                (b.class, b.key_type, &b.label, &b.ckid, b.private)
            );
            assert_eq!((&a.unique_id, a.generation, a.master_version), (&b.unique_id, b.generation, b.master_version));
            let opened = |r: &ObjectRecord| at_rest.open(r).expect("open").map(|p| p.to_vec());
            assert_eq!(opened(&a), opened(&b), "sealed part");
        }
    }

    #[test]
    fn a_loaded_object_reads_only_what_its_row_holds() {
        let key = [3u8; 32];
        let o = Object::create(&aes_key(vec![Attr::bool(CKA_TOKEN, true)])).expect("key");
        let mut rec = o.to_record(&UnderStorageKey(Some(&key))).expect("record");
        // A row written before CKA_WRAP_WITH_TRUSTED had a default: no default appears on read.
        let clear: Vec<_> = codec::decode(&rec.attrs).expect("decode");
        let older = clear.iter().filter(|(t, _)| *t != CKA_WRAP_WITH_TRUSTED).map(|(t, v)| (*t, v.as_slice()));
        rec.attrs = codec::encode(older).expect("encode").to_vec();
        let loaded = Object::from_record(&rec, &UnderStorageKey(None)).expect("load locked");
        assert_eq!(loaded.read(CKA_WRAP_WITH_TRUSTED), Read::Invalid);
    }

    #[test]
    fn a_row_whose_policy_was_edited_outside_the_token_does_not_open() {
        let key = [3u8; 32];
        let o = Object::create(&aes_key(vec![])).expect("key");
        let mut rec = o.to_record(&UnderStorageKey(Some(&key))).expect("record");
        let mut relaxed = o.clone();
        relaxed.attrs.insert(CKA_SENSITIVE, vec![CK_FALSE]);
        relaxed.attrs.insert(CKA_EXTRACTABLE, vec![CK_TRUE]);
        rec.attrs = relaxed.to_record(&UnderStorageKey(Some(&[9u8; 32]))).expect("relaxed").attrs;
        assert!(matches!(Object::from_record(&rec, &UnderStorageKey(Some(&key))), Err(Error::Integrity(_))));
    }

    /// A record as sealed before row bindings existed: the secret attributes alone.
    fn legacy_record(o: &Object, key: &[u8; 32]) -> ObjectRecord {
        let mut rec = o.to_record(&UnderStorageKey(Some(key))).expect("record");
        let plain = codec::encode(std::iter::once((CKA_VALUE, &[0x11u8; 32][..]))).expect("encode");
        let aad = binding(&rec.unique_id, &bound_in_record(&rec).expect("bound")).expect("aad");
        rec.sealed = Some(sealed::seal(key, &aad, &plain).expect("seal"));
        rec
    }

    #[test]
    fn a_row_sealed_before_bindings_opens_once_and_asks_to_be_bound() {
        let key = [3u8; 32];
        let o = Object::create(&aes_key(vec![Attr::bool(CKA_TOKEN, true)])).expect("key");
        let rec = legacy_record(&o, &key);
        let loaded = Object::from_record(&rec, &UnderStorageKey(Some(&key))).expect("a legacy row opens");
        assert_eq!(loaded.secret_value().as_deref().map(Vec::as_slice), Some(&[0x11u8; 32][..]));
        assert!(loaded.needs_binding());
        let bound = loaded.to_record(&UnderStorageKey(Some(&key))).expect("bound record");
        assert!(!Object::from_record(&bound, &UnderStorageKey(Some(&key))).expect("bound").needs_binding());
        // A row past generation 0 always carries a binding: one without is refused.
        let moved = ObjectRecord { generation: 1, ..rec };
        assert!(matches!(Object::from_record(&moved, &UnderStorageKey(Some(&key))), Err(Error::Integrity(_))));
    }

    #[test]
    fn an_edited_label_or_private_column_no_longer_opens() {
        let key = [3u8; 32];
        let o = Object::create(&aes_key(vec![Attr::new(CKA_LABEL, "a")])).expect("key");
        let rec = o.to_record(&UnderStorageKey(Some(&key))).expect("record");
        let mut relabelled = o.clone();
        relabelled.attrs.insert(CKA_LABEL, b"b".to_vec());
        let entries = relabelled.entries();
        let clear = entries.into_iter().filter(|(t, _)| !relabelled.is_sealed(*t));
        let attrs = codec::encode(clear).expect("encode").to_vec();
        let edited = ObjectRecord { attrs, ..rec.clone() };
        assert!(matches!(Object::from_record(&edited, &UnderStorageKey(Some(&key))), Err(Error::Integrity(_))));
        let public = ObjectRecord { private: false, ..rec };
        assert!(matches!(Object::from_record(&public, &UnderStorageKey(Some(&key))), Err(Error::Integrity(_))));
    }

    #[test]
    fn trust_without_a_binding_is_not_honoured() {
        let key = [3u8; 32];
        let mut o = Object::create(&aes_key(vec![Attr::bool(CKA_TOKEN, true)])).expect("key");
        o.attrs.insert(CKA_TRUSTED, vec![CK_TRUE]);
        let loaded = Object::from_record(&legacy_record(&o, &key), &UnderStorageKey(Some(&key))).expect("opens");
        assert!(!loaded.flag(CKA_TRUSTED));
        let sealed = o.to_record(&UnderStorageKey(Some(&key))).expect("record");
        assert!(Object::from_record(&sealed, &UnderStorageKey(Some(&key))).expect("opens").flag(CKA_TRUSTED));
    }

    #[test]
    fn a_record_with_swapped_sealed_part_is_refused() {
        let key = [3u8; 32];
        let a = Object::create(&aes_key(vec![])).expect("a").to_record(&UnderStorageKey(Some(&key))).expect("rec a");
        let mut b =
            Object::create(&aes_key(vec![])).expect("b").to_record(&UnderStorageKey(Some(&key))).expect("rec b");
        b.sealed = a.sealed.clone();
        assert!(matches!(Object::from_record(&b, &UnderStorageKey(Some(&key))), Err(Error::Integrity(_))));
    }
}
