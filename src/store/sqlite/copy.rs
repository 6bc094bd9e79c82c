//! A whole SQLite store as rows and back (`store/copy.rs`): the snapshot is read in one
//! transaction (under WAL, the state after exactly one commit while writers go on), and a
//! load writes every row in one `IMMEDIATE` transaction, so a failed move leaves the
//! destination empty.

use std::path::Path;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{SqliteStore, STORE_FILE};
use crate::error::{Error, Result};
use crate::store::copy::{mistyped, must_be_empty, Kind, Snapshot, Value, TABLES};

fn read_value(value: ValueRef<'_>, kind: Kind) -> Option<Value> {
    match (value, kind) {
        (ValueRef::Null, _) => Some(Value::Null),
        (ValueRef::Integer(i), Kind::Int | Kind::Bool) => Some(Value::Int(i)),
        (ValueRef::Text(t), Kind::Text) => String::from_utf8(t.to_vec()).ok().map(Value::Text),
        // A byte column once written with a text binding holds the same bytes.
        (ValueRef::Blob(b) | ValueRef::Text(b), Kind::Bytes) => Some(Value::Bytes(b.to_vec())),
        _ => None,
    }
}

fn to_sql(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Text(t) => SqlValue::Text(t.clone()),
        Value::Bytes(b) => SqlValue::Blob(b.clone()),
    }
}

/// Every row of every table, in one read transaction.
pub(super) fn snapshot(conn: &mut Connection) -> Result<Snapshot> {
    let tx = conn.transaction()?;
    let mut snapshot = Snapshot::default();
    for table in TABLES {
        let mut stmt = tx.prepare(&format!("SELECT {} FROM {} ORDER BY 1", table.column_list(), table.name))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(table.columns.len());
            for (i, (name, kind)) in table.columns.iter().enumerate() {
                row.push(read_value(r.get_ref(i)?, *kind).ok_or_else(|| mistyped(table.name, name))?);
            }
            out.push(row);
        }
        snapshot.rows.push(out);
    }
    for table in TABLES.iter().filter(|t| t.identity.is_some()) {
        let last: Option<i64> =
            tx.query_row("SELECT seq FROM sqlite_sequence WHERE name = ?1", [table.name], |r| r.get(0)).optional()?;
        snapshot.last_ids.push((table.name, last.unwrap_or(0)));
    }
    Ok(snapshot)
}

/// Writes `snapshot` into the (empty) store behind `conn`, in one transaction.
pub(super) fn load(conn: &mut Connection, snapshot: &Snapshot) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let n: i64 = tx.query_row(&format!("SELECT count(*) FROM {}", table.name), [], |r| r.get(0))?;
        counts.push((table.name, n));
    }
    must_be_empty(&counts)?;
    for (table, rows) in TABLES.iter().zip(&snapshot.rows) {
        let marks = (1..=table.columns.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let mut stmt = tx.prepare(&format!("INSERT INTO {} ({}) VALUES ({marks})", table.name, table.column_list()))?;
        for row in rows {
            stmt.execute(rusqlite::params_from_iter(row.iter().map(to_sql)))?;
        }
    }
    // Ids are never reused: the counter goes on from where the source's stood.
    for (name, last) in &snapshot.last_ids {
        let moved = tx.execute("UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1", params![name, last])?;
        if moved == 0 && *last > 0 {
            tx.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)", params![name, last])?;
        }
    }
    tx.commit()?;
    Ok(())
}

impl SqliteStore {
    pub(super) fn copy_snapshot(&self) -> Result<Snapshot> {
        self.with_conn(snapshot)
    }

    pub(super) fn copy_load(&self, snapshot: &Snapshot) -> Result<()> {
        self.with_conn(|conn| load(conn, snapshot))
    }
}

/// Writes `snapshot` as a new SQLite store file `dest` (which must not exist): a store is
/// made beside it, loaded, closed, and renamed into place, so `dest` appears whole or not
/// at all.
pub fn write_file(snapshot: &Snapshot, dest: &Path) -> Result<()> {
    if dest.exists() {
        return Err(Error::Store(format!("{} already exists", dest.display())));
    }
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let scratch = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let written = (|| {
        let store = SqliteStore::open(&scratch)?;
        store.copy_load(snapshot)?;
        drop(store); // closes every connection, folding the WAL into the file
        std::fs::rename(scratch.join(STORE_FILE), dest)
            .map_err(|e| Error::Store(format!("cannot move the copy to {}: {e}", dest.display())))
    })();
    let cleaned = std::fs::remove_dir_all(&scratch);
    written?;
    cleaned.map_err(|e| Error::Store(format!("cannot remove {}: {e}", scratch.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditEvent, Backend};

    #[test]
    fn a_store_copied_row_for_row_keeps_its_chain_and_its_id_counter() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("a")).unwrap();
        store.open_token("eng", "Engineering").unwrap();
        for i in 0..5 {
            store.append_audit(&AuditEvent::ok("eng", "test", "entry", Some(format!("{i}")))).unwrap();
        }
        store
            .add_kit(
                &crate::store::recovery::KitRecord {
                    kit_id: "k1".into(),
                    workspace: "eng".into(),
                    fingerprint: [7; 32],
                    versions: vec![1],
                    holder: "alice".into(),
                    issued_at: 1,
                },
                &AuditEvent::ok("eng", "test", "kit-export", None),
            )
            .unwrap();
        let snapshot = store.snapshot().unwrap();
        let dest = dir.path().join("copy.sqlite3");
        write_file(&snapshot, &dest).unwrap();
        assert!(!dir.path().join(format!(".copy.sqlite3.partial-{}", std::process::id())).exists());

        let moved = tempfile::tempdir().unwrap();
        std::fs::rename(&dest, moved.path().join(STORE_FILE)).unwrap();
        let copy = SqliteStore::open(moved.path()).unwrap();
        assert_eq!(copy.audit_rows().unwrap(), store.audit_rows().unwrap(), "the chain, verbatim");
        assert!(matches!(
            crate::audit::verify(&copy.audit_rows().unwrap(), None),
            crate::audit::Verdict::Intact { .. }
        ));
        assert_eq!(copy.kits("eng").unwrap(), store.kits("eng").unwrap());
        assert_eq!(copy.snapshot().unwrap().counts(), snapshot.counts());
        assert!(write_file(&snapshot, &moved.path().join(STORE_FILE)).is_err(), "never over an existing file");
        let again = copy.copy_load(&snapshot).unwrap_err();
        assert!(again.to_string().contains("not empty"), "{again}");
    }
}
