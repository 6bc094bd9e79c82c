//! A whole store as rows, to move it between backends (`cvault store migrate`) and to
//! back a PostgreSQL store up into the SQLite file a backup holds (`Backend::backup_to`).
//!
//! Both backends keep the same tables with the same columns (SQLite's schema, in
//! PostgreSQL's types where they differ: `BOOLEAN` for SQLite's 0/1, `BYTEA` for `BLOB`).
//! [`TABLES`] names them once, in an order that satisfies every foreign key, and the unit
//! tests hold it to both schemas, so a migration that adds a column fails a test until the
//! copy knows it. Rows travel verbatim: sealed values stay sealed (the copy never sees a
//! key), and the audit chain keeps its hashes, so the copy verifies as the original did.
//! The whole snapshot is held in memory: a store of a million objects needs about a
//! gigabyte for the move.

use crate::error::{Error, Result};

/// How a column's values are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A 64-bit integer.
    Int,
    /// A flag (SQLite: 0 or 1; PostgreSQL: `BOOLEAN`).
    Bool,
    /// UTF-8 text.
    Text,
    /// Bytes.
    Bytes,
}

/// One table: its name, its columns, and the column whose values the database assigns
/// (copied as they are, and the counter behind them carried over).
#[derive(Debug)]
pub struct Table {
    /// The table's name.
    pub name: &'static str,
    /// Its columns, in order.
    pub columns: &'static [(&'static str, Kind)],
    /// The identity (autoincrement) column, if any.
    pub identity: Option<&'static str>,
}

impl Table {
    /// The column names, comma-separated, for a statement.
    pub fn column_list(&self) -> String {
        self.columns.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
    }
}

use Kind::{Bool, Bytes, Int, Text};

/// Every table of the store (schema version 12), parents before children.
pub const TABLES: &[Table] = &[
    Table {
        name: "tokens",
        columns: &[
            ("workspace", Text),
            ("label", Text),
            ("serial", Text),
            ("initialized", Bool),
            ("so_pin", Bytes),
            ("user_pin", Bytes),
            ("so_failures", Int),
            ("user_failures", Int),
            ("epoch", Int),
            ("sealed_storage_key", Bytes),
            ("pins_mac", Bytes),
        ],
        identity: None,
    },
    Table {
        name: "objects",
        columns: &[
            ("id", Int),
            ("workspace", Text),
            ("class", Int),
            ("key_type", Int),
            ("label", Bytes),
            ("ckid", Bytes),
            ("private", Bool),
            ("unique_id", Text),
            ("attrs", Bytes),
            ("sealed", Bytes),
            ("master_version", Int),
            ("generation", Int),
        ],
        identity: Some("id"),
    },
    Table {
        name: "master_keys",
        columns: &[
            ("workspace", Text),
            ("version", Int),
            ("state", Int),
            ("created_at", Int),
            ("classification", Text),
            ("sealed", Bytes),
            ("blocked", Text),
            ("mac", Bytes),
            ("origin", Text),
        ],
        identity: None,
    },
    Table {
        name: "audit_log",
        columns: &[
            ("seq", Int),
            ("at_ms", Int),
            ("pid", Int),
            ("workspace", Text),
            ("actor", Text),
            ("action", Text),
            ("object", Text),
            ("outcome", Text),
            ("prev_hash", Bytes),
            ("hash", Bytes),
            ("session", Int),
            ("count", Int),
            ("format", Int),
        ],
        identity: None,
    },
    Table {
        name: "audit_checkpoints",
        columns: &[
            ("number", Int),
            ("entry_seq", Int),
            ("entry_hash", Bytes),
            ("signature", Bytes),
            ("public_key", Bytes),
            ("mldsa_signature", Bytes),
            ("mldsa_public_key", Bytes),
        ],
        identity: None,
    },
    Table { name: "gcm_iv_counters", columns: &[("fingerprint", Bytes), ("next", Int)], identity: None },
    Table {
        name: "workspace_keks",
        columns: &[
            ("workspace", Text),
            ("generation", Int),
            ("threshold", Int),
            ("sealed", Bytes),
            ("check_value", Bytes),
        ],
        identity: None,
    },
    Table {
        name: "custodians",
        columns: &[
            ("workspace", Text),
            ("name", Text),
            ("share_index", Int),
            ("salt", Bytes),
            ("memory_kib", Int),
            ("passes", Int),
            ("public_key", Bytes),
            ("sealed_share", Bytes),
            ("failures", Int),
        ],
        identity: None,
    },
    Table {
        name: "emergency_windows",
        columns: &[("workspace", Text), ("name", Text), ("opened_by", Text), ("opened_at", Int), ("expires_at", Int)],
        identity: None,
    },
    Table {
        name: "quorum_requests",
        columns: &[
            ("id", Int),
            ("workspace", Text),
            ("action", Text),
            ("requested_by", Text),
            ("generation", Int),
            ("created_at", Int),
            ("expires_at", Int),
            ("state", Int),
        ],
        identity: Some("id"),
    },
    Table {
        name: "quorum_approvals",
        columns: &[("request", Int), ("custodian", Text), ("share_index", Int), ("sealed_share", Bytes), ("at", Int)],
        identity: None,
    },
    Table {
        name: "unlock_grants",
        columns: &[("workspace", Text), ("generation", Int), ("expires_at", Int), ("sealed", Bytes)],
        identity: None,
    },
    Table {
        name: "legal_holds",
        columns: &[("workspace", Text), ("set_by", Text), ("reason", Text), ("set_at", Int)],
        identity: None,
    },
    Table {
        name: "recovery_kits",
        columns: &[
            ("kit_id", Text),
            ("workspace", Text),
            ("fingerprint", Bytes),
            ("versions", Text),
            ("holder", Text),
            ("issued_at", Int),
        ],
        identity: None,
    },
    Table { name: "recovery_kit_acks", columns: &[("kit_id", Text), ("holder", Text), ("at", Int)], identity: None },
];

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// An integer or a flag (0 or 1).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// Every row of every table, read in one transaction.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The rows of each of [`TABLES`], in the same order.
    pub rows: Vec<Vec<Vec<Value>>>,
    /// For each table with an identity column, the last value the database handed out
    /// (which may exceed every remaining row's: ids are never reused).
    pub last_ids: Vec<(&'static str, i64)>,
}

impl Snapshot {
    /// The rows of table `name`.
    pub fn table(&self, name: &str) -> &[Vec<Value>] {
        TABLES.iter().position(|t| t.name == name).and_then(|i| self.rows.get(i)).map_or(&[], Vec::as_slice)
    }

    /// Rows per table, for the record of a move.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        TABLES.iter().zip(&self.rows).map(|(t, rows)| (t.name, rows.len())).collect()
    }

    /// The snapshot's audit head: the last entry's sequence number and hash.
    pub fn audit_head(&self) -> Option<(i64, Vec<u8>)> {
        let rows = self.table("audit_log");
        let last = rows.iter().max_by_key(|r| match r.first() {
            Some(Value::Int(seq)) => *seq,
            _ => i64::MIN,
        })?;
        match (last.first(), last.get(9)) {
            (Some(Value::Int(seq)), Some(Value::Bytes(hash))) => Some((*seq, hash.clone())),
            _ => None,
        }
    }
}

/// A value read from `table.column` that is not of the column's kind: the store was
/// edited outside the module (SQLite keeps any type in any column).
pub fn mistyped(table: &str, column: &str) -> Error {
    Error::Store(format!("{table}.{column} holds a value of the wrong type; the store was edited outside the module"))
}

/// Refuses to load into a store that holds anything: a move never merges two stores.
pub fn must_be_empty(counts: &[(&'static str, i64)]) -> Result<()> {
    match counts.iter().find(|(_, n)| *n > 0) {
        None => Ok(()),
        Some((table, n)) => Err(Error::Store(format!(
            "the destination store is not empty ({table} holds {n} rows): a store is moved only into an empty one"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_list_matches_the_sqlite_schema_column_for_column() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(dir.path()).unwrap();
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        let mut tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'meta'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        tables.sort();
        let mut listed: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        listed.sort();
        assert_eq!(tables, listed, "every table is copied, and only tables that exist");
        for table in TABLES {
            let columns: Vec<String> = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{}') ORDER BY cid", table.name))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let mut columns = columns;
            columns.sort();
            let mut ours: Vec<String> = table.columns.iter().map(|(c, _)| c.to_string()).collect();
            ours.sort();
            assert_eq!(columns, ours, "columns of {}", table.name);
        }
    }

    #[test]
    fn a_non_empty_destination_is_refused_by_name() {
        assert!(must_be_empty(&[("tokens", 0), ("objects", 0)]).is_ok());
        let e = must_be_empty(&[("tokens", 0), ("objects", 3)]).unwrap_err();
        assert!(e.to_string().contains("objects holds 3 rows"), "{e}");
    }
}
