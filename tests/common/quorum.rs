//! A module over a real SoftHSM2 root with a `[quorum]` section, for the tests of the
//! quorum and of what it guards (tests/quorum.rs, tests/byok.rs): three custodians, a
//! split, custodian approvals through the raw `C_LoginUser`, and the store read with the
//! module finalized (two SQLite copies in one process break each other's POSIX locks:
//! closing the test's connection would checkpoint and delete the WAL the module still
//! writes to).

// `C_LoginUser` is called through the raw function list; each call says why it is sound.
#![allow(unsafe_code)]

use collabvault_pkcs11::quorum::custodian;
use collabvault_pkcs11::vendor::{CKA_CV_CUSTODIANS, CKA_CV_THRESHOLD, CKM_CV_QUORUM_SPLIT, CKU_CV_CUSTODIAN};
use cryptoki::context::Pkcs11;
use cryptoki::error::Rv;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::{CKR_OK, CK_RV, CK_ULONG};

use super::hsm::{Hsm, ROOT_LABEL};
use super::raw::Api;

/// The custodians every split enrols, with their passphrases.
pub const CUSTODIANS: [(&str, &str); 3] =
    [("alice", "alice passphrase 1"), ("bob", "bob passphrase 22"), ("carol", "carol passphrase 333")];

pub use super::vendor;

/// A `CK_ULONG` vendor attribute.
pub fn ulong_attr(ty: CK_ULONG, v: CK_ULONG) -> Attribute {
    Attribute::VendorDefined((AttributeType::VendorDefined(ty), v.to_ne_bytes().to_vec()))
}

/// The return code of a call as a `CK_RV`, found among `known` (cryptoki gives no way
/// back from its error type to the number).
pub fn rv_among<T>(r: cryptoki::error::Result<T>, known: &[CK_RV]) -> CK_RV {
    let rv = match r {
        Ok(_) => return CKR_OK,
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => rv,
        Err(e) => panic!("not a PKCS#11 error: {e}"),
    };
    known.iter().copied().find(|c| Rv::from(*c) == Rv::Error(rv)).unwrap_or_else(|| panic!("unexpected {rv:?}"))
}

/// The module over a fresh store and a fresh SoftHSM2 root, its token initialized.
pub struct Setup {
    pkcs11: Option<Pkcs11>,
    pub api: Api,
    pub ws: super::Workspace,
    _hsm: Hsm,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(p) = self.pkcs11.take() {
            let _ = p.finalize();
        }
    }
}

impl Setup {
    /// An HSM-rooted token with its user PIN set, and `[quorum]` as given.
    pub fn new(quorum: &str) -> Setup {
        let serial = super::lock();
        let hsm = Hsm::new();
        let ws = super::Workspace::with_config_body(&format!(
            "{}[quorum]\n{quorum}\n[[workspace]]\nname = \"main\"\n",
            hsm.root_section(ROOT_LABEL)
        ));
        let pkcs11 = super::load();
        let mut setup = Setup { pkcs11: Some(pkcs11), api: Api::load(), ws, _hsm: hsm, _serial: serial };
        let slot = setup.slot();
        setup.p().init_token(slot, &AuthPin::new(super::SO_PIN.into()), "quorum").expect("C_InitToken");
        let so = setup.session(UserType::So, super::SO_PIN);
        so.init_pin(&AuthPin::new(super::USER_PIN.into())).expect("C_InitPIN");
        so.logout().expect("logout");
        setup
    }

    /// The loaded module.
    pub fn p(&self) -> &Pkcs11 {
        self.pkcs11.as_ref().expect("loaded")
    }

    /// Loads the module again if a store access finalized it.
    pub fn online(&mut self) {
        if self.pkcs11.is_none() {
            self.pkcs11 = Some(super::load());
            self.api = Api::load();
        }
    }

    /// Finalizes the module before the test touches the store file itself (see the
    /// module doc); a finalize and a new load is also what a second process sees.
    pub fn offline(&mut self) {
        if let Some(p) = self.pkcs11.take() {
            p.finalize().expect("C_Finalize");
        }
    }

    pub fn slot(&mut self) -> cryptoki::slot::Slot {
        self.online();
        self.p().get_all_slots().expect("slots")[0]
    }

    pub fn session(&mut self, who: UserType, pin: &str) -> Session {
        let slot = self.slot();
        let s = self.p().open_rw_session(slot).expect("open");
        s.login(who, Some(&AuthPin::new(pin.into()))).expect("login");
        s
    }

    pub fn user(&mut self) -> Session {
        self.session(UserType::User, super::USER_PIN)
    }

    /// Splits the KEK `k`-of-3 among [`CUSTODIANS`] in an SO session.
    pub fn split(&mut self, k: CK_ULONG) -> cryptoki::error::Result<ObjectHandle> {
        let enrolled: Vec<_> = CUSTODIANS
            .iter()
            .map(|(name, pass)| custodian::enrol(name, pass.as_bytes(), 64, 1).expect("enrol"))
            .collect();
        let so = self.session(UserType::So, super::SO_PIN);
        let template = [
            ulong_attr(CKA_CV_THRESHOLD, k),
            Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_CV_CUSTODIANS),
                custodian::encode(&enrolled).expect("encode"),
            )),
        ];
        let result = so.generate_key(&vendor(CKM_CV_QUORUM_SPLIT), &template);
        so.logout().expect("logout");
        result
    }

    /// `C_LoginUser` as a custodian in a fresh public session.
    pub fn approve(&mut self, username: &str, passphrase: &str) -> CK_RV {
        let slot = self.slot();
        let s = self.p().open_rw_session(slot).expect("open");
        let login_user = self.api.f.C_LoginUser.expect("C_LoginUser");
        let mut pin = passphrase.as_bytes().to_vec();
        let mut name = username.as_bytes().to_vec();
        let len = |b: &[u8]| CK_ULONG::try_from(b.len()).expect("length");
        let (pin_len, name_len) = (len(&pin), len(&name));
        // SAFETY: both buffers are live locals of the lengths passed; the session is open.
        unsafe { login_user(s.handle(), CKU_CV_CUSTODIAN, pin.as_mut_ptr(), pin_len, name.as_mut_ptr(), name_len) }
    }

    /// The store, opened by the test with the module finalized.
    pub fn store(&mut self) -> std::sync::Arc<dyn collabvault_pkcs11::store::Backend> {
        self.offline();
        self.ws.open_store()
    }

    /// Runs `sql` on the store (SQLite or PostgreSQL, through its shell) with the module
    /// finalized: the edits of an attacker with write access to the database.
    pub fn sql(&mut self, sql: &str) -> String {
        self.offline();
        self.ws.live_sql(sql)
    }

    /// Every audit entry.
    pub fn audit(&mut self) -> Vec<collabvault_pkcs11::store::audit::AuditRow> {
        self.store().audit_rows().expect("audit")
    }

    /// Every audit entry's action.
    pub fn actions(&mut self) -> Vec<String> {
        self.audit().into_iter().map(|r| r.event.action).collect()
    }
}
