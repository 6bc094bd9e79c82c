//! The attribute policy as data: one row per attribute, with the classes it belongs to,
//! its value type and the spec's rules for it (PKCS#11 3.2 §4.4–4.10 and their
//! footnotes). Create, copy, set and read all consult this table; nothing else decides
//! whether an attribute may be given, changed or revealed.

use cryptoki_sys::*;

/// The value shape of an attribute, checked on every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `CK_BBOOL`: one byte, 0 or 1.
    Bool,
    /// `CK_ULONG`.
    Ulong,
    /// Arbitrary bytes (UTF-8 strings included; the spec does not ask tokens to validate them).
    Bytes,
    /// `CK_DATE`: empty or eight ASCII digits.
    Date,
    /// An array of `CK_MECHANISM_TYPE`.
    MechList,
    /// A nested template (`CKA_WRAP_TEMPLATE` and friends), in `codec`'s encoding.
    Template,
}

/// Object classes an attribute belongs to, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classes(u8);

impl Classes {
    /// `CKO_DATA`.
    pub const DATA: Classes = Classes(1);
    /// `CKO_CERTIFICATE`.
    pub const CERT: Classes = Classes(2);
    /// `CKO_SECRET_KEY`.
    pub const SECRET: Classes = Classes(4);
    /// `CKO_PUBLIC_KEY`.
    pub const PUBLIC: Classes = Classes(8);
    /// `CKO_PRIVATE_KEY`.
    pub const PRIVATE: Classes = Classes(16);
    /// Every storage object.
    pub const ALL: Classes = Classes(0xff);
    /// Every key class.
    pub const KEYS: Classes = Classes(4 | 8 | 16);

    const fn or(self, other: Classes) -> Classes {
        Classes(self.0 | other.0)
    }

    /// The bit for an object class this token stores, if it stores it.
    pub fn of(class: CK_OBJECT_CLASS) -> Option<Classes> {
        match class {
            CKO_DATA => Some(Classes::DATA),
            CKO_CERTIFICATE => Some(Classes::CERT),
            CKO_SECRET_KEY => Some(Classes::SECRET),
            CKO_PUBLIC_KEY => Some(Classes::PUBLIC),
            CKO_PRIVATE_KEY => Some(Classes::PRIVATE),
            _ => None,
        }
    }

    /// Whether the two sets share a class.
    pub fn contains(self, other: Classes) -> bool {
        self.0 & other.0 != 0
    }
}

/// The spec's rules for one attribute, as flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules(u16);

impl Rules {
    /// No restriction: settable at create, copy and set.
    pub const FREE: Rules = Rules(0);
    /// Must be present in a create template (`CKR_TEMPLATE_INCOMPLETE`).
    pub const REQUIRED: Rules = Rules(1);
    /// Given at create, never changed afterwards (`CKR_ATTRIBUTE_READ_ONLY`).
    pub const FIXED: Rules = Rules(2);
    /// Set only by the token (`CKR_ATTRIBUTE_READ_ONLY` in any template).
    pub const TOKEN_SET: Rules = Rules(4);
    /// May change in `C_CopyObject`'s template although otherwise fixed.
    pub const CHANGE_ON_COPY: Rules = Rules(8);
    /// May only change from false to true (`CKA_SENSITIVE`).
    pub const ONLY_TO_TRUE: Rules = Rules(16);
    /// May only change from true to false (`CKA_EXTRACTABLE`, `CKA_COPYABLE`).
    pub const ONLY_TO_FALSE: Rules = Rules(32);
    /// Key material: unreadable when the key is sensitive or unextractable, sealed at rest.
    pub const SECRET: Rules = Rules(64);
    /// Computed by the token from other attributes; refused in a create template
    /// (`CKR_TEMPLATE_INCONSISTENT`), as `CKA_VALUE_LEN` is for an imported secret key.
    pub const DERIVED: Rules = Rules(128);

    const fn or(self, other: Rules) -> Rules {
        Rules(self.0 | other.0)
    }

    /// Whether every flag of `other` is set.
    pub fn has(self, other: Rules) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Default value of an attribute the template leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// No default: the attribute is absent unless given (or required).
    None,
    /// A boolean.
    Bool(bool),
    /// A `CK_ULONG`.
    Ulong(CK_ULONG),
    /// Empty bytes.
    Empty,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The attribute.
    pub ty: CK_ATTRIBUTE_TYPE,
    /// Classes that have it.
    pub classes: Classes,
    /// Its value shape.
    pub kind: Kind,
    /// The spec's rules.
    pub rules: Rules,
    /// Value when not given.
    pub default: Fallback,
}

const fn row(ty: CK_ATTRIBUTE_TYPE, classes: Classes, kind: Kind, rules: Rules, default: Fallback) -> Row {
    Row { ty, classes, kind, rules, default }
}

use Fallback as D;
use Kind as K;
const ALL: Classes = Classes::ALL;
const CERT: Classes = Classes::CERT;
const DATA: Classes = Classes::DATA;
const KEYS: Classes = Classes::KEYS;
const SECRET: Classes = Classes::SECRET;
const PUB: Classes = Classes::PUBLIC;
const PRIV: Classes = Classes::PRIVATE;
const SECRET_PRIV: Classes = Classes::SECRET.or(Classes::PRIVATE);
const ASYM: Classes = Classes::PUBLIC.or(Classes::PRIVATE);
const FIXED_SECRET: Rules = Rules::FIXED.or(Rules::SECRET);
const FIXED_ON_COPY: Rules = Rules::FIXED.or(Rules::CHANGE_ON_COPY);
const UNAVAILABLE: CK_ULONG = CK_UNAVAILABLE_INFORMATION;

/// The table. `CKA_PRIVATE`'s default depends on the class and is set by [`ClassView`].
pub static TABLE: &[Row] = &[
    // Common object and storage attributes (§4.4).
    row(CKA_CLASS, ALL, K::Ulong, Rules::REQUIRED.or(Rules::FIXED), D::None),
    row(CKA_TOKEN, ALL, K::Bool, FIXED_ON_COPY, D::Bool(false)),
    row(CKA_PRIVATE, ALL, K::Bool, FIXED_ON_COPY, D::None),
    row(CKA_MODIFIABLE, ALL, K::Bool, FIXED_ON_COPY, D::Bool(true)),
    row(CKA_COPYABLE, ALL, K::Bool, Rules::ONLY_TO_FALSE, D::Bool(true)),
    row(CKA_DESTROYABLE, ALL, K::Bool, Rules::FREE, D::Bool(true)),
    row(CKA_LABEL, ALL, K::Bytes, Rules::FREE, D::Empty),
    row(CKA_UNIQUE_ID, ALL, K::Bytes, Rules::TOKEN_SET, D::None),
    // Data objects (§4.5).
    row(CKA_APPLICATION, DATA, K::Bytes, Rules::FREE, D::Empty),
    row(CKA_OBJECT_ID, DATA, K::Bytes, Rules::FREE, D::Empty),
    row(CKA_VALUE, DATA, K::Bytes, Rules::FREE, D::Empty),
    // Certificates (§4.6), X.509 public key certificates only.
    row(CKA_CERTIFICATE_TYPE, CERT, K::Ulong, Rules::REQUIRED.or(Rules::FIXED), D::None),
    row(CKA_TRUSTED, CERT.or(SECRET), K::Bool, Rules::FREE, D::Bool(false)),
    row(CKA_CERTIFICATE_CATEGORY, CERT, K::Ulong, Rules::FREE, D::Ulong(0)),
    row(CKA_CHECK_VALUE, CERT.or(SECRET), K::Bytes, Rules::FIXED, D::None),
    row(CKA_START_DATE, CERT.or(KEYS), K::Date, Rules::FREE, D::Empty),
    row(CKA_END_DATE, CERT.or(KEYS), K::Date, Rules::FREE, D::Empty),
    row(CKA_PUBLIC_KEY_INFO, CERT, K::Bytes, Rules::FIXED, D::Empty),
    row(CKA_SUBJECT, CERT, K::Bytes, Rules::REQUIRED, D::None),
    row(CKA_ID, CERT.or(KEYS), K::Bytes, Rules::FREE, D::Empty),
    row(CKA_ISSUER, CERT, K::Bytes, Rules::FREE, D::Empty),
    row(CKA_SERIAL_NUMBER, CERT, K::Bytes, Rules::FREE, D::Empty),
    row(CKA_VALUE, CERT, K::Bytes, Rules::REQUIRED.or(Rules::FIXED), D::None),
    row(CKA_URL, CERT, K::Bytes, Rules::FIXED, D::Empty),
    row(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, CERT, K::Bytes, Rules::FIXED, D::Empty),
    row(CKA_HASH_OF_ISSUER_PUBLIC_KEY, CERT, K::Bytes, Rules::FIXED, D::Empty),
    row(CKA_JAVA_MIDP_SECURITY_DOMAIN, CERT, K::Ulong, Rules::FIXED, D::Ulong(0)),
    row(CKA_NAME_HASH_ALGORITHM, CERT, K::Ulong, Rules::FIXED, D::Ulong(CKM_SHA_1)),
    // Common key attributes (§4.7).
    row(CKA_KEY_TYPE, KEYS, K::Ulong, Rules::REQUIRED.or(Rules::FIXED), D::None),
    row(CKA_DERIVE, KEYS, K::Bool, Rules::FREE, D::Bool(false)),
    row(CKA_LOCAL, KEYS, K::Bool, Rules::TOKEN_SET, D::Bool(false)),
    row(CKA_KEY_GEN_MECHANISM, KEYS, K::Ulong, Rules::TOKEN_SET, D::Ulong(UNAVAILABLE)),
    row(CKA_ALLOWED_MECHANISMS, KEYS, K::MechList, Rules::FREE, D::Empty),
    // Keys that can be private or sensitive (§4.9, §4.10).
    row(CKA_SENSITIVE, SECRET_PRIV, K::Bool, Rules::ONLY_TO_TRUE, D::Bool(true)),
    row(CKA_EXTRACTABLE, SECRET_PRIV, K::Bool, Rules::ONLY_TO_FALSE, D::Bool(false)),
    row(CKA_ALWAYS_SENSITIVE, SECRET_PRIV, K::Bool, Rules::TOKEN_SET, D::Bool(false)),
    row(CKA_NEVER_EXTRACTABLE, SECRET_PRIV, K::Bool, Rules::TOKEN_SET, D::Bool(false)),
    row(CKA_WRAP_WITH_TRUSTED, SECRET_PRIV, K::Bool, Rules::ONLY_TO_TRUE, D::Bool(false)),
    // Usage flags, on the classes that can do the operation.
    row(CKA_ENCRYPT, SECRET.or(PUB), K::Bool, Rules::FREE, D::Bool(true)),
    row(CKA_DECRYPT, SECRET_PRIV, K::Bool, Rules::FREE, D::Bool(true)),
    row(CKA_SIGN, SECRET_PRIV, K::Bool, Rules::FREE, D::Bool(true)),
    row(CKA_VERIFY, SECRET.or(PUB), K::Bool, Rules::FREE, D::Bool(true)),
    row(CKA_WRAP, SECRET.or(PUB), K::Bool, Rules::FREE, D::Bool(true)),
    row(CKA_UNWRAP, SECRET_PRIV, K::Bool, Rules::FREE, D::Bool(true)),
    row(CKA_SIGN_RECOVER, PRIV, K::Bool, Rules::FREE, D::Bool(false)),
    row(CKA_VERIFY_RECOVER, PUB, K::Bool, Rules::FREE, D::Bool(false)),
    row(CKA_ENCAPSULATE, PUB, K::Bool, Rules::FREE, D::Bool(true)),
    row(CKA_DECAPSULATE, PRIV, K::Bool, Rules::FREE, D::Bool(true)),
    row(CKA_TRUSTED, PUB, K::Bool, Rules::FREE, D::Bool(false)),
    row(CKA_ALWAYS_AUTHENTICATE, PRIV, K::Bool, Rules::FIXED, D::Bool(false)),
    // Templates a key imposes on what it wraps, unwraps or derives (§4.9, §4.10).
    row(CKA_WRAP_TEMPLATE, SECRET.or(PUB), K::Template, Rules::FREE, D::None),
    row(CKA_UNWRAP_TEMPLATE, SECRET_PRIV, K::Template, Rules::FREE, D::None),
    row(CKA_DERIVE_TEMPLATE, KEYS, K::Template, Rules::FREE, D::None),
    // Secret keys (§4.10).
    row(CKA_VALUE, SECRET, K::Bytes, Rules::REQUIRED.or(FIXED_SECRET), D::None),
    row(CKA_VALUE_LEN, SECRET, K::Ulong, Rules::FIXED.or(Rules::DERIVED), D::None),
    // CollabVault's hierarchy attributes (src/vendor.rs): set by the token only.
    row(crate::vendor::CKA_CV_ROLE, KEYS, K::Ulong, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_KEY_VERSION, KEYS, K::Ulong, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_LIFECYCLE, KEYS, K::Ulong, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_CREATED, KEYS, K::Ulong, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_CLASSIFICATION, KEYS, K::Bytes, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_CURRENT, KEYS, K::Bool, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_BLOCKED, KEYS, K::Bool, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_STORED_RECORDS, KEYS, K::Ulong, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_ORIGIN, KEYS, K::Bytes, Rules::TOKEN_SET, D::None),
    // The quorum's (src/session/quorum.rs): read on master key objects, and the
    // template of CKM_CV_QUORUM_SPLIT.
    row(crate::vendor::CKA_CV_THRESHOLD, KEYS, K::Ulong, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_CUSTODIANS, KEYS, K::Bytes, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_LOCKED, KEYS, K::Bool, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_UNLOCK_EXPIRES, KEYS, K::Ulong, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_LEGAL_HOLD, KEYS, K::Bool, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_EMERGENCY_ACCESS, KEYS, K::Bytes, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_EMERGENCY_EXPIRES, KEYS, K::Ulong, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_QUORUM_REQUEST, KEYS, K::Bytes, Rules::TOKEN_SET, D::None),
    row(crate::vendor::CKA_CV_CANCEL_REQUEST, KEYS, K::Ulong, Rules::TOKEN_SET, D::None),
    // Public and private keys (§4.8, §4.9); which of these a key type needs is checked by
    // its mechanism family on import.
    row(CKA_SUBJECT, ASYM, K::Bytes, Rules::FREE, D::Empty),
    row(CKA_PUBLIC_KEY_INFO, ASYM, K::Bytes, Rules::FIXED, D::Empty),
    row(CKA_EC_PARAMS, ASYM, K::Bytes, Rules::FIXED, D::None),
    row(CKA_EC_POINT, PUB, K::Bytes, Rules::FIXED, D::None),
    row(CKA_PARAMETER_SET, ASYM, K::Ulong, Rules::FIXED, D::None),
    row(CKA_VALUE, PUB, K::Bytes, Rules::FIXED, D::None),
    row(CKA_VALUE, PRIV, K::Bytes, FIXED_SECRET, D::None),
    row(CKA_SEED, PRIV, K::Bytes, FIXED_SECRET, D::None),
    // RSA keys (§6.1.2, §6.1.3). Public components readable on both halves; the
    // private ones are key material. CKA_MODULUS_BITS is given in a generation template
    // and recomputed from the modulus on import.
    row(CKA_MODULUS, ASYM, K::Bytes, Rules::FIXED, D::None),
    row(CKA_MODULUS_BITS, PUB, K::Ulong, Rules::FIXED, D::None),
    row(CKA_PUBLIC_EXPONENT, ASYM, K::Bytes, Rules::FIXED, D::None),
    row(CKA_PRIVATE_EXPONENT, PRIV, K::Bytes, FIXED_SECRET, D::None),
    row(CKA_PRIME_1, PRIV, K::Bytes, FIXED_SECRET, D::None),
    row(CKA_PRIME_2, PRIV, K::Bytes, FIXED_SECRET, D::None),
    row(CKA_EXPONENT_1, PRIV, K::Bytes, FIXED_SECRET, D::None),
    row(CKA_EXPONENT_2, PRIV, K::Bytes, FIXED_SECRET, D::None),
    row(CKA_COEFFICIENT, PRIV, K::Bytes, FIXED_SECRET, D::None),
];

/// The row for `ty` in objects of class bit `class`, if the attribute belongs there.
pub fn lookup(class: Classes, ty: CK_ATTRIBUTE_TYPE) -> Option<&'static Row> {
    match view(class) {
        Some(v) => v.rows.binary_search_by_key(&ty, |r| r.ty).ok().map(|i| v.rows[i]),
        None => TABLE.iter().find(|r| r.ty == ty && r.classes.contains(class)),
    }
}

/// One class's part of the table, built once per process: every object of the class
/// consults it on each make and read, so it is laid out for that.
#[derive(Debug)]
pub struct ClassView {
    /// The class's rows, sorted by type (a binary search per lookup, not a table scan).
    rows: Vec<&'static Row>,
    /// The value every attribute with a default takes when a new object's template leaves
    /// it out (`CKA_PRIVATE`'s by class), sorted by type.
    defaults: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
    /// The attributes a new object must be given (`CKR_TEMPLATE_INCOMPLETE`), in table order.
    required: Vec<CK_ATTRIBUTE_TYPE>,
}

impl ClassView {
    fn build(class: Classes) -> ClassView {
        let mut rows: Vec<&'static Row> = rows_for(class).collect();
        rows.sort_by_key(|r| r.ty);
        let mut defaults: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> = rows
            .iter()
            .filter_map(|r| {
                let value = match r.default {
                    Fallback::None => return None,
                    Fallback::Bool(b) => vec![CK_BBOOL::from(b)],
                    Fallback::Ulong(v) => v.to_ne_bytes().to_vec(),
                    Fallback::Empty => Vec::new(),
                };
                Some((r.ty, value))
            })
            .collect();
        // Secret and private keys are private unless the template says otherwise.
        let private_by_default = class == Classes::SECRET || class == Classes::PRIVATE;
        defaults.push((CKA_PRIVATE, vec![CK_BBOOL::from(private_by_default)]));
        defaults.sort_by_key(|(ty, _)| *ty);
        let required = rows_for(class)
            .filter(|r| r.rules.has(Rules::REQUIRED) && r.default == Fallback::None)
            .map(|r| r.ty)
            .collect();
        ClassView { rows, defaults, required }
    }

    /// The defaults of the class, sorted by type.
    pub fn defaults(&'static self) -> &'static [(CK_ATTRIBUTE_TYPE, Vec<u8>)] {
        &self.defaults
    }

    /// The attributes a new object of the class must be given, in table order.
    pub fn required(&self) -> &[CK_ATTRIBUTE_TYPE] {
        &self.required
    }
}

/// The view of one class (`None` for a set of several classes).
pub fn view(class: Classes) -> Option<&'static ClassView> {
    static VIEWS: std::sync::OnceLock<[ClassView; 5]> = std::sync::OnceLock::new();
    let i = match class {
        Classes::DATA => 0,
        Classes::CERT => 1,
        Classes::SECRET => 2,
        Classes::PUBLIC => 3,
        Classes::PRIVATE => 4,
        _ => return None,
    };
    let views = VIEWS.get_or_init(|| {
        [Classes::DATA, Classes::CERT, Classes::SECRET, Classes::PUBLIC, Classes::PRIVATE].map(ClassView::build)
    });
    Some(&views[i])
}

/// A default value among `defaults` (sorted by type, as [`ClassView::defaults`] gives them).
pub fn default_in(defaults: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)], ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
    defaults.binary_search_by_key(&ty, |(t, _)| *t).ok().map(|i| defaults[i].1.as_slice())
}

/// Every row that applies to objects of class bit `class`.
pub fn rows_for(class: Classes) -> impl Iterator<Item = &'static Row> {
    TABLE.iter().filter(move |r| r.classes.contains(class))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_attribute_appears_twice_for_one_class() {
        for class in [Classes::DATA, Classes::CERT, Classes::SECRET, Classes::PUBLIC, Classes::PRIVATE] {
            let mut seen: Vec<CK_ATTRIBUTE_TYPE> = rows_for(class).map(|r| r.ty).collect();
            let n = seen.len();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), n, "duplicate row for class {class:?}");
        }
    }

    #[test]
    fn key_value_is_secret_but_data_value_is_not() {
        assert!(lookup(Classes::SECRET, CKA_VALUE).expect("row").rules.has(Rules::SECRET));
        assert!(!lookup(Classes::DATA, CKA_VALUE).expect("row").rules.has(Rules::SECRET));
    }

    #[test]
    fn a_class_view_finds_what_a_table_scan_finds() {
        for class in [Classes::DATA, Classes::CERT, Classes::SECRET, Classes::PUBLIC, Classes::PRIVATE] {
            for row in TABLE {
                let scanned = TABLE.iter().find(|r| r.ty == row.ty && r.classes.contains(class));
                let looked_up = lookup(class, row.ty);
                assert_eq!(
                    scanned.map(|r| (r.ty, r.rules)),
                    looked_up.map(|r| (r.ty, r.rules)),
                    "{class:?} {}",
                    row.ty
                );
            }
        }
    }

    #[test]
    fn private_defaults_by_class() {
        let private = |class| view(class).and_then(|v| default_in(v.defaults(), CKA_PRIVATE).map(<[u8]>::to_vec));
        assert_eq!(private(Classes::SECRET), Some(vec![CK_TRUE]));
        assert_eq!(private(Classes::PRIVATE), Some(vec![CK_TRUE]));
        assert_eq!(private(Classes::PUBLIC), Some(vec![CK_FALSE]));
        assert_eq!(private(Classes::DATA), Some(vec![CK_FALSE]));
        assert_eq!(view(Classes::SECRET).map(ClassView::required), Some(&[CKA_CLASS, CKA_KEY_TYPE, CKA_VALUE][..]));
    }

    #[test]
    fn attributes_of_other_classes_are_not_found() {
        assert!(lookup(Classes::DATA, CKA_KEY_TYPE).is_none());
        assert!(lookup(Classes::SECRET, CKA_APPLICATION).is_none());
    }
}
