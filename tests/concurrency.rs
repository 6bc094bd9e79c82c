//! Concurrent use: many threads of one application, each with its own session, and two
//! processes working on one store at the same time.

#![allow(missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::process::Child;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::Fixture;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState};

const THREADS: usize = 8;
const PER_THREAD: usize = 20;

/// Set in the child process to the parent's config file; the child test does nothing
/// without it.
const CHILD_ENV: &str = "CV_CHILD_CONF";
const CHILD_TEST: &str = "child_process_adds_objects_to_the_shared_store";
const WAIT_LIMIT: Duration = Duration::from_secs(60);

fn token_data(label: &str, private: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(private),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(format!("value of {label}").into_bytes()),
    ]
}

fn by_label(s: &Session, label: &str) -> cryptoki::error::Result<Vec<ObjectHandle>> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
}

fn labels(s: &Session, handles: &[ObjectHandle]) -> BTreeSet<String> {
    handles
        .iter()
        .map(|h| match s.get_attributes(*h, &[AttributeType::Label]).expect("read label").as_slice() {
            [Attribute::Label(l)] => String::from_utf8_lossy(l).into_owned(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// One worker thread: its own RW session (the application's login applies to it), 20
/// token objects created, found and read, and half of them destroyed.
fn worker(
    pkcs11: &cryptoki::context::Pkcs11,
    slot: cryptoki::slot::Slot,
    t: usize,
    start: &Barrier,
) -> Result<(), String> {
    let s = pkcs11.open_rw_session(slot).map_err(|e| format!("thread {t}: open: {e}"))?;
    let st = s.get_session_info().map_err(|e| format!("thread {t}: info: {e}"))?.session_state();
    if st != SessionState::RwUser {
        return Err(format!("thread {t}: session state {st:?}, expected the shared user login"));
    }
    start.wait();
    let mut made = Vec::new();
    for i in 0..PER_THREAD {
        let label = format!("t{t}-o{i}");
        // Alternate public and private objects: private values are sealed under the storage key.
        let h = s.create_object(&token_data(&label, i % 2 == 1)).map_err(|e| format!("{label}: create: {e}"))?;
        made.push((label, h));
    }
    for (label, h) in &made {
        let found = by_label(&s, label).map_err(|e| format!("{label}: find: {e}"))?;
        if found != [*h] {
            return Err(format!("{label}: find returned {found:?}, expected [{h}]"));
        }
        let got = s
            .get_attributes(*h, &[AttributeType::Label, AttributeType::Value])
            .map_err(|e| format!("{label}: read: {e}"))?;
        let want = vec![
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Value(format!("value of {label}").into_bytes()),
        ];
        if got != want {
            return Err(format!("{label}: read {got:?}"));
        }
    }
    for (label, h) in made.iter().step_by(2) {
        s.destroy_object(*h).map_err(|e| format!("{label}: destroy: {e}"))?;
        let found = by_label(&s, label).map_err(|e| format!("{label}: find after destroy: {e}"))?;
        if !found.is_empty() {
            return Err(format!("{label}: still found after destroy: {found:?}"));
        }
    }
    Ok(())
}

#[test]
fn eight_threads_with_their_own_sessions_create_find_read_and_destroy_objects() {
    let f = Fixture::new();
    let slot = f.init_token();
    // One login, in a session that stays open, serves every thread's session.
    let main = f.user_session(slot);
    let start = Barrier::new(THREADS);
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn({
                    let (pkcs11, start) = (&f.pkcs11, &start);
                    move || worker(pkcs11, slot, t, start)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a worker thread panicked".into()))).collect()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "failures: {failures:#?}");

    let all = main.find_objects(&[Attribute::Class(ObjectClass::DATA)]).expect("find all data objects");
    assert_eq!(all.len(), THREADS * PER_THREAD / 2);
    let expected: BTreeSet<String> =
        (0..THREADS).flat_map(|t| (1..PER_THREAD).step_by(2).map(move |i| format!("t{t}-o{i}"))).collect();
    assert_eq!(labels(&main, &all), expected);
}

fn wait_for_label(s: &Session, label: &str, child: &mut Child) {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        if by_label(s, label).expect("find").len() == 1 {
            return;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the child exited ({status}) before {label:?} appeared");
        }
        assert!(Instant::now() < deadline, "{label:?} did not appear within {WAIT_LIMIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_processes_work_on_one_store_at_the_same_time() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.user_session(slot);
    s.create_object(&token_data("parent-0", false)).expect("create parent-0");

    let mut child = common::child_over(CHILD_TEST, CHILD_ENV, &f.ws.conf).spawn().expect("spawn the child process");

    for i in 1..5 {
        s.create_object(&token_data(&format!("parent-{i}"), i % 2 == 1)).expect("create parent object");
    }
    // The child creates child-0..4, then waits for parent-5: the two interleave for sure.
    wait_for_label(&s, "child-0", &mut child);
    for i in 5..10 {
        s.create_object(&token_data(&format!("parent-{i}"), i % 2 == 1)).expect("create parent object");
    }

    common::child_passed(&child.wait_with_output().expect("wait for the child"));

    let all = s.find_objects(&[Attribute::Class(ObjectClass::DATA)]).expect("find all");
    assert_eq!(all.len(), 20, "found {:?}", labels(&s, &all));
    let expected: BTreeSet<String> = (0..10).flat_map(|i| [format!("parent-{i}"), format!("child-{i}")]).collect();
    assert_eq!(labels(&s, &all), expected);
    // The child's private objects open under this process's login too.
    let h = by_label(&s, "child-1").expect("find child-1");
    assert_eq!(h.len(), 1);
    assert_eq!(
        s.get_attributes(h[0], &[AttributeType::Value]).expect("read child-1"),
        vec![Attribute::Value(b"value of child-1".to_vec())]
    );
}

/// The second process of [`two_processes_work_on_one_store_at_the_same_time`]; a no-op
/// unless that test started it.
#[test]
#[ignore = "started as a child process by two_processes_work_on_one_store_at_the_same_time"]
fn child_process_adds_objects_to_the_shared_store() {
    let Some((_serial, p, slot)) = common::child_module(CHILD_ENV) else { return };
    {
        let s = common::user_session(&p, slot);
        assert_eq!(by_label(&s, "parent-0").expect("find parent-0").len(), 1, "the child does not see parent-0");
        for i in 0..10 {
            if i == 5 {
                let deadline = Instant::now() + WAIT_LIMIT;
                while by_label(&s, "parent-5").expect("find parent-5").is_empty() {
                    assert!(Instant::now() < deadline, "parent-5 did not appear within {WAIT_LIMIT:?}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            s.create_object(&token_data(&format!("child-{i}"), i % 2 == 1)).expect("create child object");
        }
        assert!(s.find_objects(&[Attribute::Class(ObjectClass::DATA)]).expect("find").len() >= 16);
    }
    p.finalize().expect("C_Finalize");
}
