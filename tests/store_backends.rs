//! The store's domain contract (`store::Backend`), run against both backends: the SQLite
//! file and a real PostgreSQL server (`common/postgres.rs`). Every case runs on each, so
//! the two behave alike; the PostgreSQL cases then run what only a shared server can
//! show: several store instances (standing in for hosts, each with its own connections)
//! writing at once keep one audit chain, make one master key version per rotation, count
//! login failures and IV counter ranges together; a server that goes away fails calls
//! with a store error and the next call after it returns reconnects.

mod common;

use std::sync::Arc;

use collabvault_pkcs11::audit::{verify, Verdict};
use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::error::Error;
use collabvault_pkcs11::store::audit::GENESIS;
use collabvault_pkcs11::store::{
    self, AuditEvent, Backend, IndexQuery, Lifecycle, MasterRecord, ObjectId, ObjectRecord, PinOwner, TokenInit,
    Updated,
};
use common::postgres::{self as pg, Server};

/// One backend under test: the store and what keeps it alive.
struct Under {
    store: Arc<dyn Backend>,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Under {
    /// Another instance on the same store (another process or host).
    fn another(&self) -> Arc<dyn Backend> {
        store::open(&self.config).expect("open another instance")
    }
}

fn config(dir: &std::path::Path, store: Option<String>) -> Config {
    let line = store.map(|s| format!("store = {s:?}\n")).unwrap_or_default();
    Config::parse(&format!("store_dir = {:?}\n{line}[[workspace]]\nname = \"ws\"\n", dir.join("store")))
        .expect("config")
}

fn sqlite() -> Under {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), None);
    Under { store: store::open(&config).expect("open"), config, _dir: dir }
}

fn postgres(server: &Server) -> Under {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), Some(server.url(&server.new_database())));
    Under { store: store::open(&config).expect("open"), config, _dir: dir }
}

/// Runs `case` on SQLite, then on PostgreSQL.
fn both(case: impl Fn(&Under)) {
    case(&sqlite());
    let server = pg::shared();
    case(&postgres(&server));
}

fn event() -> AuditEvent {
    AuditEvent::ok("ws", "so", "test", None)
}

fn record(label: &str, class: u64) -> ObjectRecord {
    ObjectRecord {
        class,
        key_type: None,
        label: label.as_bytes().to_vec(),
        ckid: None,
        private: false,
        unique_id: format!("uid-{label}-{class}-{}", rand_suffix()),
        attrs: vec![1, 2, 3],
        sealed: None,
        master_version: None,
        generation: 0,
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn master(version: u32, state: Lifecycle) -> MasterRecord {
    MasterRecord {
        version,
        state,
        created_at: 0,
        classification: "c".into(),
        sealed: Some(version.to_be_bytes().to_vec()),
        blocked: None,
        mac: None,
        origin: None,
    }
}

fn init(store: &dyn Backend) {
    store.open_token("ws", "").expect("token");
    let first = master(1, Lifecycle::Active);
    let init = TokenInit { label: "l", so_pin: b"so", sealed_storage_key: None, first_master: &first };
    store.init_token("ws", &init, &event()).expect("init");
}

fn intact(store: &dyn Backend) -> usize {
    let rows = store.audit_rows().expect("rows");
    match verify(&rows, None) {
        Verdict::Intact { entries, .. } => entries,
        other => panic!("the chain does not verify: {other:?}"),
    }
}

#[test]
fn iv_counter_ranges_never_overlap_and_stop_at_the_limit() {
    both(|u| {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let s = &u.store;
        assert_eq!(s.reserve_iv_counter(&a, 10, 100).expect("reserve"), Some(1..11));
        assert_eq!(s.reserve_iv_counter(&a, 10, 100).expect("reserve"), Some(11..21));
        assert_eq!(s.reserve_iv_counter(&b, 10, 100).expect("reserve"), Some(1..11), "per key");
        let again = u.another();
        assert_eq!(again.reserve_iv_counter(&a, 90, 100).expect("reserve"), Some(21..101), "clipped at the limit");
        assert_eq!(again.reserve_iv_counter(&a, 1, 100).expect("reserve"), None, "exhausted, never wrapped");
    });
}

#[test]
fn init_token_wipes_objects_and_resets_pins() {
    both(|u| {
        let s = &*u.store;
        s.open_token("ws", "").expect("token");
        s.insert_object("ws", &record("a", 0), &event()).expect("insert");
        s.set_pin("ws", PinOwner::User, b"rec", &event()).expect("pin");
        init(s);
        assert_eq!(s.masters("ws").expect("masters"), vec![master(1, Lifecycle::Active)]);
        let t = s.token("ws").expect("token");
        assert!(t.initialized && t.user_pin.is_none() && t.epoch == 1 && t.so_pin.as_deref() == Some(&b"so"[..]));
        assert!(s.find_objects("ws", &IndexQuery::default()).expect("find").is_empty());
        assert_eq!(intact(s), 3);
    });
}

#[test]
fn a_master_version_that_exists_is_refused_as_taken_with_nothing_written() {
    both(|u| {
        let s = &*u.store;
        init(s);
        s.add_master("ws", &master(2, Lifecycle::Active), &|_| Ok(vec![0]), &event()).expect("rotate");
        let entries = intact(s);
        // A second v2, as from a host that read v1 as newest before the first v2 landed.
        let again = s.add_master("ws", &master(2, Lifecycle::Active), &|_| Ok(vec![0]), &event());
        assert_eq!(again, Err(Error::VersionTaken(2)));
        let versions: Vec<_> = s.masters("ws").expect("masters").iter().map(|m| (m.version, m.state)).collect();
        assert_eq!(versions, [(1, Lifecycle::DecryptOnly), (2, Lifecycle::Active)]);
        assert_eq!(intact(s), entries, "no entry for a refused version");
    });
}

#[test]
fn a_change_refused_by_its_own_check_leaves_held_entries_held_not_failed() {
    both(|u| {
        let s = &*u.store;
        init(s);
        s.set_batching(collabvault_pkcs11::store::batch::BatchPolicy {
            entries: 100,
            max_age: std::time::Duration::from_secs(600),
        });
        s.add_master("ws", &master(2, Lifecycle::Active), &|_| Ok(vec![0]), &event()).expect("rotate");
        let before = intact(s);
        s.append_audit(&AuditEvent::ok("ws", "user", "C_GenerateKey", Some("held".into())).batched()).expect("hold");
        assert_eq!(intact(s), before, "the session entry is held");
        // The lost race rolls back the transaction the held entry was in: the refusal is
        // the caller's answer, not a failure of the batch (which would fail every
        // audited call with CKR_DEVICE_ERROR until written).
        let again = s.add_master("ws", &master(2, Lifecycle::Active), &|_| Ok(vec![0]), &event());
        assert_eq!(again, Err(Error::VersionTaken(2)));
        s.append_audit(&AuditEvent::ok("ws", "user", "C_Login", None)).expect("the next write works");
        let objects: Vec<_> = s.audit_rows().expect("rows").into_iter().filter_map(|r| r.event.object).collect();
        assert!(objects.iter().any(|o| o == "held"), "the held entry went out with the next write");
        assert_eq!(intact(s), before + 2);
    });
}

#[test]
fn a_new_master_version_demotes_the_active_one_and_destroying_forgets_it() {
    both(|u| {
        let s = &*u.store;
        init(s);
        let mac = |m: &MasterRecord| Ok(vec![m.state.code().to_be_bytes()[7], u8::from(m.sealed.is_some())]);
        s.add_master("ws", &master(2, Lifecycle::Active), &mac, &event()).expect("rotate");
        let states: Vec<_> = s.masters("ws").expect("masters").iter().map(|m| m.state).collect();
        assert_eq!(states, [Lifecycle::DecryptOnly, Lifecycle::Active]);
        assert_eq!(s.masters("ws").expect("masters")[0].mac, Some(vec![2, 1]));
        assert!(s.set_master_state("ws", 1, Lifecycle::Destroyed, &mac, &event()).expect("destroy"));
        let first = &s.masters("ws").expect("masters")[0];
        assert_eq!(
            (first.state, first.sealed.is_none(), first.mac.clone()),
            (Lifecycle::Destroyed, true, Some(vec![4, 0]))
        );
        assert!(!s.set_master_state("ws", 9, Lifecycle::Retired, &mac, &event()).expect("no such version"));
        assert!(s.set_master_blocked("ws", 2, Some("alert"), &mac, &event()).expect("block"));
        assert_eq!(s.masters("ws").expect("masters")[1].blocked.as_deref(), Some("alert"));
    });
}

#[test]
fn objects_insert_find_update_by_generation_and_delete() {
    both(|u| {
        let s = &*u.store;
        s.open_token("ws", "").expect("token");
        let a = record("a", 0);
        let id = s.insert_object("ws", &a, &event()).expect("insert");
        s.insert_object("ws", &record("b", 0), &event()).expect("insert");
        s.insert_object("ws", &ObjectRecord { private: true, ckid: Some(b"k".to_vec()), ..record("a", 3) }, &event())
            .expect("insert");
        let q = |q: IndexQuery| s.find_objects("ws", &q).expect("find").len();
        assert_eq!(q(IndexQuery { label: Some(b"a".to_vec()), ..Default::default() }), 2);
        assert_eq!(q(IndexQuery { label: Some(b"a".to_vec()), class: Some(3), ..Default::default() }), 1);
        assert_eq!(q(IndexQuery { ckid: Some(b"k".to_vec()), ..Default::default() }), 1);
        assert_eq!(q(IndexQuery { ckid: Some(b"k".to_vec()), public_only: true, ..Default::default() }), 0);
        assert!(s.find_objects("other", &IndexQuery::default()).expect("find").is_empty());
        let before = s.audit_rows().expect("rows").len();
        let next = ObjectRecord { generation: 1, label: b"b".to_vec(), ..a.clone() };
        assert_eq!(s.update_object(id, 0, &next, &event()).expect("update"), Updated::Done);
        let stale = ObjectRecord { generation: 1, label: b"c".to_vec(), ..a.clone() };
        assert_eq!(s.update_object(id, 0, &stale, &event()).expect("update"), Updated::Moved);
        let now = s.object("ws", id).expect("read").expect("row");
        assert_eq!((now.label.as_slice(), now.generation), (&b"b"[..], 1));
        assert_eq!(s.audit_rows().expect("rows").len(), before + 1, "only the change that landed is audited");
        assert!(s.delete_object(id, &event()).expect("delete"));
        assert!(!s.delete_object(id, &event()).expect("delete again"));
        assert_eq!(s.update_object(id, 1, &stale, &event()).expect("update"), Updated::Gone);
        assert!(s.object("ws", id).expect("read").is_none());
    });
}

#[test]
fn a_rewrap_job_moves_every_record_in_batches() {
    both(|u| {
        let s = &*u.store;
        s.open_token("ws", "").expect("token");
        for i in 0..7 {
            let r = ObjectRecord { master_version: Some(1), sealed: Some(vec![1]), ..record(&format!("dek{i}"), 4) };
            s.insert_object("ws", &r, &event()).expect("insert");
        }
        // Each record's new body is its own (its label), so a batch written in one
        // statement must put every body on its own row.
        let resealed = |r: &ObjectRecord| [b"v2:".as_slice(), r.label.as_slice()].concat();
        // A record that does not re-seal fails its batch whole: nothing moved, no entry.
        let entries = s.audit_rows().expect("rows").len();
        let refused = s.rewrap_batch("ws", 2, ObjectId(0), 3, &mut |r| match r.label.as_slice() {
            b"dek1" => Err(Error::Integrity("does not open")),
            _ => Ok(resealed(r)),
        });
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!((s.records_under("ws", 1).expect("n"), s.audit_rows().expect("rows").len()), (7, entries));
        let mut after = ObjectId(0);
        let mut batches = Vec::new();
        loop {
            let step = s.rewrap_batch("ws", 2, after, 3, &mut |r| Ok(resealed(r))).expect("batch");
            let Some(last) = step.last else { break };
            batches.push(step.moved);
            after = last;
        }
        assert_eq!(batches, [3, 3, 1]);
        assert_eq!((s.records_under("ws", 1).expect("n"), s.records_under("ws", 2).expect("n")), (0, 7));
        assert_eq!(s.audit_rows().expect("rows").len(), entries + 3, "one entry per batch");
        for (_, r) in s.find_objects("ws", &IndexQuery::default()).expect("find") {
            assert_eq!((r.sealed.clone(), r.master_version), (Some(resealed(&r)), Some(2)), "{:?}", r.label);
        }
    });
}

#[test]
fn a_find_with_the_hierarchy_reads_the_objects_epoch_and_master_rows_together() {
    both(|u| {
        let s = &*u.store;
        init(s);
        let mac = |m: &MasterRecord| Ok(vec![u8::try_from(m.version).unwrap_or(0)]);
        // Rows with every nullable column both set and unset: a destroyed version (no
        // sealed value), a blocked one, an imported one.
        s.add_master(
            "ws",
            &MasterRecord { origin: Some("byok".into()), ..master(2, Lifecycle::Active) },
            &mac,
            &event(),
        )
        .expect("v2");
        s.add_master("ws", &master(3, Lifecycle::Active), &mac, &event()).expect("v3");
        s.set_master_state("ws", 1, Lifecycle::Destroyed, &mac, &event()).expect("destroy v1");
        s.set_master_blocked("ws", 2, Some("alert"), &mac, &event()).expect("block v2");
        for (label, class) in [("a", 4), ("b", 4), ("a", 3)] {
            let r = ObjectRecord { master_version: Some(3), sealed: Some(vec![7]), ..record(label, class) };
            s.insert_object("ws", &r, &event()).expect("insert");
        }
        let epoch = s.token("ws").expect("token").epoch;
        let masters = s.masters("ws").expect("masters");
        assert_eq!(masters.len(), 3);
        for q in [
            IndexQuery { label: Some(b"a".to_vec()), ..Default::default() },
            IndexQuery { label: Some(b"a".to_vec()), class: Some(3), ..Default::default() },
            IndexQuery { label: Some(b"none".to_vec()), ..Default::default() },
            IndexQuery { public_only: true, ..Default::default() },
            IndexQuery::default(),
        ] {
            let read = s.find_with_hierarchy("ws", &q, true).expect("find with the hierarchy");
            assert_eq!(read.objects, s.find_objects("ws", &q).expect("find"), "{q:?}");
            assert_eq!(read.hierarchy, Some((epoch, masters.clone())), "{q:?}");
            let plain = s.find_with_hierarchy("ws", &q, false).expect("find alone");
            assert_eq!((plain.objects, plain.hierarchy), (read.objects, None));
        }
        assert!(s.find_with_hierarchy("nowhere", &IndexQuery::default(), true).is_err(), "no token, no epoch");
    });
}

#[test]
fn login_reservations_stop_at_the_limit_and_refused_logins_are_counted() {
    both(|u| {
        let s = &*u.store;
        s.open_token("ws", "").expect("token");
        let reserve = || s.reserve_login("ws", PinOwner::User, 2).expect("reserve");
        assert_eq!((reserve(), reserve(), reserve()), (Some(1), Some(2), None));
        let t = s.token("ws").expect("token");
        assert_eq!((t.user_failures, t.so_failures), (2, 0));
        assert_eq!(s.record_login("ws", PinOwner::User, true, &event()).expect("ok"), 0);
        assert_eq!(s.record_login("ws", PinOwner::User, false, &event()).expect("fail"), 1);
        let refused = AuditEvent::ok("ws", "user", "C_Login", None).with_outcome("CKR_PIN_INCORRECT");
        s.append_audit(&refused).expect("append");
        s.append_audit(&AuditEvent::ok("ws", "user", "C_Login", None)).expect("append");
        u.another().append_audit(&refused.clone().with_outcome("CKR_PIN_LOCKED")).expect("append");
        assert_eq!(s.failed_logins_since("ws", 0).expect("count"), 2, "counted from every instance");
        assert_eq!(s.failed_logins_since("ws", i64::MAX).expect("count"), 0);
    });
}

#[test]
fn a_registered_pin_mac_follows_every_change() {
    both(|u| {
        let s = &*u.store;
        s.open_token("ws", "").expect("token");
        s.set_pins_mac(
            "ws",
            Arc::new(|r: &collabvault_pkcs11::store::TokenRecord| Ok(vec![r.user_failures.to_be_bytes()[3]])),
        );
        assert_eq!(s.reserve_login("ws", PinOwner::User, 3).expect("reserve"), Some(1));
        assert_eq!(s.token("ws").expect("token").pins_mac, Some(vec![1]));
        // Another instance changes the counter without the MAC: this one refuses it.
        let other = u.another();
        other.record_login("ws", PinOwner::User, true, &event()).expect("reset elsewhere");
        assert!(matches!(s.reserve_login("ws", PinOwner::User, 3), Err(Error::Integrity(_))));
    });
}

#[test]
fn every_write_appends_one_chained_entry_and_checkpoints_round_trip() {
    use collabvault_pkcs11::store::audit::{Checkpoint, CheckpointSignature};
    both(|u| {
        let s = &*u.store;
        s.open_token("ws", "").expect("token");
        s.insert_object("ws", &record("a", 0), &event()).expect("insert");
        s.append_audit(&event().synced_lazily()).expect("lazy");
        s.append_audit_batch(&[event(), event()]).expect("batch");
        let rows = s.audit_rows().expect("rows");
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].prev_hash, GENESIS.to_vec());
        assert_eq!(intact(s), 4);
        assert_eq!(s.audit_head().expect("head"), Some((4, rows[3].hash.clone())));
        let sig = CheckpointSignature { signature: vec![1, 2], public_key: vec![4] };
        let c = Checkpoint { number: 1, entry_seq: 4, entry_hash: rows[3].hash.clone(), ecdsa: Some(sig), mldsa: None };
        s.add_checkpoint(&c).expect("checkpoint");
        let unsigned = Checkpoint { number: 2, ecdsa: None, mldsa: None, ..c.clone() };
        assert!(s.add_checkpoint(&unsigned).is_err(), "a checkpoint without a signature is refused");
        assert_eq!(s.checkpoints().expect("read"), vec![c]);
    });
}

#[test]
fn quorum_rows_commit_with_their_entries() {
    use collabvault_pkcs11::store::quorum::{Approval, Custodian, Grant, Hold, KekRecord, NewRequest, RequestState};
    both(|u| {
        let s = &*u.store;
        init(s);
        let kek = KekRecord { generation: 1, threshold: 2, sealed: None, check: vec![9] };
        let custodian = |name: &str, index| Custodian {
            name: name.into(),
            index,
            salt: vec![1],
            memory_kib: 8,
            passes: 1,
            public_key: vec![2],
            sealed_share: vec![3],
            failures: 0,
        };
        let custodians = [custodian("alice", 1), custodian("bob", 2)];
        assert!(s.replace_kek("ws", None, &kek, &custodians, &[], &event()).expect("split"));
        assert!(!s.replace_kek("ws", None, &kek, &custodians, &[], &event()).expect("moved"), "expected no KEK");
        assert_eq!(s.kek("ws").expect("kek"), Some(kek));
        assert_eq!(s.custodians("ws").expect("custodians"), custodians.to_vec());
        assert_eq!(s.reserve_custodian_attempt("ws", "alice", 1).expect("attempt"), Some(1));
        assert_eq!(s.reserve_custodian_attempt("ws", "alice", 1).expect("attempt"), None);
        s.custodian_verified("ws", "alice").expect("verified");
        let new = NewRequest { action: "unlock", requested_by: "so", generation: 1, now: 10, expires_at: 100 };
        let r = s.open_request("ws", &new, &event()).expect("request");
        assert_eq!(s.open_request("ws", &new, &event()).expect("same").id, r.id, "an open request is reused");
        let approval = Approval { custodian: "alice".into(), index: 1, sealed_share: vec![7], at: 11 };
        assert!(s.add_approval(r.id, &approval, &event()).expect("approve"));
        assert!(!s.add_approval(r.id, &approval, &event()).expect("twice"));
        assert_eq!(s.approvals(r.id).expect("approvals"), vec![approval]);
        let grant = Grant { generation: 1, expires_at: 500, sealed: vec![8] };
        s.close_request("ws", r.id, RequestState::Used, Some(&grant), &event()).expect("close");
        assert!(s.close_request("ws", r.id, RequestState::Used, None, &event()).is_err(), "used once");
        assert_eq!(s.requests("ws").expect("requests")[0].state, RequestState::Used);
        assert_eq!(s.grant("ws").expect("grant"), Some(grant));
        assert!(!s.drop_grant("ws", Some(1), &event()).expect("another grant"));
        assert!(s.drop_grant("ws", Some(500), &event()).expect("expired"));
        let hold = Hold { set_by: "so".into(), reason: "case 1".into(), set_at: 5 };
        s.set_hold("ws", Some(&hold), &event()).expect("hold");
        assert_eq!(s.hold("ws").expect("hold"), Some(hold));
        s.set_hold("ws", None, &event()).expect("lift");
        assert_eq!(s.hold("ws").expect("hold"), None);
        assert_eq!(s.emergency("ws").expect("emergency"), None);
        intact(s);
    });
}

// ---- PostgreSQL only: several instances on one server ----

/// Threads, each with its own store instance (its own connections), run `work` at once.
fn at_once<T: Send + 'static>(
    u: &Under,
    n: usize,
    work: impl Fn(usize, Arc<dyn Backend>) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let work = Arc::new(work);
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (store, work, barrier) = (u.another(), work.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                work(i, store)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("thread")).collect()
}

#[test]
fn postgres_instances_writing_at_once_keep_one_unbroken_chain() {
    let server = pg::shared();
    let u = postgres(&server);
    u.store.open_token("ws", "").expect("token");
    at_once(&u, 4, |i, s| {
        for n in 0..40 {
            let e = AuditEvent::ok("ws", "user", "C_Encrypt", Some(format!("{i}/{n}")));
            if n % 3 == 0 {
                s.insert_object("ws", &record(&format!("{i}-{n}"), 4), &e).expect("insert");
            } else {
                s.append_audit(&e).expect("append");
            }
        }
    });
    assert_eq!(intact(&*u.store), 160, "no fork, no gap");
}

#[test]
fn postgres_two_instances_rotating_at_once_make_one_version() {
    let server = pg::shared();
    let u = postgres(&server);
    init(&*u.store);
    for round in 2..6u32 {
        // Each read the same current version before any wrote, and makes the next one,
        // as the hierarchy does on each host.
        let current = u.store.masters("ws").expect("masters").iter().map(|m| m.version).max().expect("v1");
        assert_eq!(current + 1, round);
        let results = at_once(&u, 3, move |_, s| {
            match s.add_master("ws", &master(round, Lifecycle::Active), &|_| Ok(vec![0]), &event()) {
                Ok(()) => true,
                Err(Error::VersionTaken(v)) if v == round => false,
                Err(e) => panic!("round {round}: a lost race is VersionTaken, not {e:?}"),
            }
        });
        assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "round {round}: one rotation lands");
    }
    let masters = u.store.masters("ws").expect("masters");
    assert_eq!(masters.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(masters.iter().filter(|m| m.state == Lifecycle::Active).count(), 1);
    let rotations = u.store.audit_rows().expect("rows").iter().filter(|r| r.event.action == "test").count();
    assert_eq!(rotations, 1 + 4, "the init and one entry per landed rotation: a refused one wrote nothing");
    intact(&*u.store);
}

#[test]
fn postgres_login_failures_and_iv_ranges_count_across_instances() {
    let server = pg::shared();
    let u = postgres(&server);
    u.store.open_token("ws", "").expect("token");
    let granted = at_once(&u, 4, |_, s| {
        (0..5).filter(|_| s.reserve_login("ws", PinOwner::User, 7).expect("reserve").is_some()).count()
    });
    assert_eq!(granted.iter().sum::<usize>(), 7, "the lockout holds across instances");
    let ranges = at_once(&u, 4, |_, s| {
        (0..20).map(|_| s.reserve_iv_counter(&[7; 32], 5, 1_000_000).expect("iv").expect("range")).collect::<Vec<_>>()
    });
    let mut all: Vec<_> = ranges.into_iter().flatten().collect();
    all.sort_by_key(|r| r.start);
    assert_eq!(all.len(), 80);
    assert!(all.windows(2).all(|w| w[0].end == w[1].start), "no range handed out twice, none skipped");
    assert_eq!(all.last().map(|r| r.end), Some(401));
}

#[test]
fn postgres_a_stopped_server_fails_calls_and_the_next_call_after_it_returns_reconnects() {
    // A server of its own: this test stops it.
    let server = Server::start();
    let u = postgres(&server);
    init(&*u.store);
    server.stop();
    let failed = u.store.insert_object("ws", &record("a", 4), &event());
    assert!(matches!(failed, Err(Error::Store(_))), "{failed:?}");
    assert!(matches!(u.store.masters("ws"), Err(Error::Store(_))));
    server.restart();
    u.store.insert_object("ws", &record("b", 4), &event()).expect("reconnected");
    assert_eq!(u.store.find_objects("ws", &IndexQuery::default()).expect("find").len(), 1, "nothing half-written");
    intact(&*u.store);
}

#[test]
fn postgres_config_refuses_a_password_in_the_connection_string_and_reads_it_from_the_environment() {
    let err = Config::parse("store_dir='/x'\nstore='postgresql://u:secret@localhost/db'\n[[workspace]]\nname='a'\n")
        .expect_err("a password in the config");
    assert!(err.contains("store_password_env") && !err.contains("secret"), "{err}");
    let err =
        Config::parse("store_dir='/x'\nstore='mysql://h/db'\n[[workspace]]\nname='a'\n").expect_err("not postgres");
    assert!(err.contains("PostgreSQL"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path(), Some("postgresql://cvault@127.0.0.1:1/none".into()));
    c.store_password_env = Some("CV_TEST_UNSET_PASSWORD_VARIABLE".into());
    assert!(matches!(store::open(&c), Err(Error::Config(m)) if m.contains("CV_TEST_UNSET_PASSWORD_VARIABLE")));
    c.store_password_env = None;
    let started = std::time::Instant::now();
    assert!(matches!(store::open(&c), Err(Error::Store(m)) if m.contains("unreachable")), "nothing listens on port 1");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

/// The median of `n` runs of `f`, in microseconds.
fn median_us(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut times: Vec<f64> = (0..n)
        .map(|i| {
            let t = std::time::Instant::now();
            f(i);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

/// Not a check: prints the store's medians on both backends (doc/postgresql.md). Run:
/// `cargo test --release --test store_backends -- --ignored --nocapture measure`.
#[test]
#[ignore = "a measurement, run by hand (doc/postgresql.md)"]
fn measure_store_operations_on_both_backends() {
    let server = pg::shared();
    for (name, u) in [("sqlite", sqlite()), ("postgresql", postgres(&server))] {
        let s = &*u.store;
        init(s);
        let append = median_us(500, |i| {
            s.append_audit(&AuditEvent::ok("ws", "user", "C_Sign", Some(format!("{i}")))).expect("append")
        });
        let insert = median_us(500, |i| {
            s.insert_object("ws", &record(&format!("key{i}"), 4), &event()).expect("insert");
        });
        let find = median_us(500, |i| {
            let q = IndexQuery { label: Some(format!("key{i}").into_bytes()), ..Default::default() };
            assert_eq!(s.find_objects("ws", &q).expect("find").len(), 1);
        });
        // What a logged-in C_FindObjectsInit reads: the same find with the token epoch
        // and the master key rows (one statement on PostgreSQL).
        let find_with = median_us(500, |i| {
            let q = IndexQuery { label: Some(format!("key{i}").into_bytes()), ..Default::default() };
            assert_eq!(s.find_with_hierarchy("ws", &q, true).expect("find").objects.len(), 1);
        });
        let iv = median_us(500, |_| {
            s.reserve_iv_counter(&[3; 32], 1, u64::MAX >> 2).expect("iv").expect("range");
        });
        // The per-call version check: what a host reads each call to see a rotation made
        // on another host (the master key rows; the hierarchy reads them per call).
        let versions = median_us(500, |_| {
            assert!(!s.masters("ws").expect("masters").is_empty());
        });
        println!("{name}: audit append {append:.0} us, object insert {insert:.0} us, indexed find {find:.0} us, the same with the epoch and master key rows {find_with:.0} us, IV reservation {iv:.0} us, master versions read {versions:.1} us (medians of 500)");
    }
    // What LISTEN/NOTIFY would cost instead: a poll of a listening connection per call
    // (no round trip when nothing is pending), and how soon a NOTIFY is seen.
    use postgres::fallible_iterator::FallibleIterator;
    let mut listener = server.client("postgres");
    listener.batch_execute("LISTEN cv_master").expect("LISTEN");
    let poll = median_us(500, |_| assert!(listener.notifications().iter().next().expect("poll").is_none()));
    let mut notifier = server.admin();
    let seen = median_us(50, |_| {
        notifier.batch_execute("NOTIFY cv_master, 'v2'").expect("NOTIFY");
        let seen = listener.notifications().timeout_iter(std::time::Duration::from_secs(10)).next().expect("wait");
        assert!(seen.is_some(), "the NOTIFY arrived");
    });
    println!("postgresql: LISTEN/NOTIFY poll per call {poll:.1} us, a NOTIFY sent and seen {seen:.0} us (medians)");
}

/// Fills a store with a bit of everything the copy carries.
fn populated(s: &dyn Backend) -> ObjectId {
    init(s);
    let kept = s.insert_object("ws", &ObjectRecord { private: true, ..record("kept", 3) }, &event()).expect("insert");
    // The newest object is deleted: its id must not come back after a move.
    let gone = s.insert_object("ws", &record("deleted", 0), &event()).expect("insert");
    assert!(s.delete_object(gone, &event()).expect("delete"));
    s.add_master("ws", &master(2, Lifecycle::Active), &|_| Ok(vec![9; 32]), &event()).expect("rotate");
    s.reserve_iv_counter(&[5; 32], 10, 1000).expect("iv").expect("range");
    kept
}

#[test]
fn a_snapshot_moves_between_the_backends_row_for_row_and_ids_are_not_reused() {
    let server = pg::shared();
    for (from, to) in [(sqlite(), postgres(&server)), (postgres(&server), sqlite())] {
        let kept = populated(&*from.store);
        let snapshot = from.store.snapshot().expect("snapshot");
        to.store.load_snapshot(&snapshot).expect("load");
        let copied = to.store.snapshot().expect("read back");
        assert_eq!(copied.rows, snapshot.rows, "every table, every row, every value");
        assert_eq!(to.store.audit_rows().expect("rows"), from.store.audit_rows().expect("rows"));
        assert_eq!(intact(&*to.store), intact(&*from.store));
        assert_eq!(to.store.object("ws", kept).expect("read"), from.store.object("ws", kept).expect("read"));
        let next = to.store.insert_object("ws", &record("new", 0), &event()).expect("insert after the move");
        assert!(next.0 > kept.0 + 1, "the deleted object's id is not handed out again ({next:?} after {kept:?})");
        let refused = to.store.load_snapshot(&snapshot).expect_err("a store that holds rows is not loaded into");
        assert!(refused.to_string().contains("not empty"), "{refused}");
        let iv = to.store.reserve_iv_counter(&[5; 32], 1, 1000).expect("iv").expect("range");
        assert_eq!(iv.start, 11, "IV counters go on from where they stood");
    }
}
