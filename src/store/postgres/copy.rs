//! A whole PostgreSQL store as rows and back (`store/copy.rs`). The snapshot is one
//! `REPEATABLE READ, READ ONLY` transaction, so it is the state after one commit while
//! every host keeps writing; a load runs under the write lock, with the identity columns'
//! values kept (`OVERRIDING SYSTEM VALUE`) and their sequences moved past them.

use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, Row};

use super::{PgStore, WRITE_LOCK};
use crate::error::Result;
use crate::store::copy::{mistyped, must_be_empty, Kind, Snapshot, Value, TABLES};

fn read_value(row: &Row, i: usize, kind: Kind) -> std::result::Result<Value, postgres::Error> {
    Ok(match kind {
        Kind::Int => row.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int),
        Kind::Bool => row.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, |b| Value::Int(i64::from(b))),
        Kind::Text => row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text),
        Kind::Bytes => row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Value::Null, Value::Bytes),
    })
}

/// A value as the parameter its column's type takes (NULL typed as the column).
fn parameter(value: &Value, kind: Kind) -> Option<Box<dyn ToSql + Sync>> {
    Some(match (value, kind) {
        (Value::Null, Kind::Int) => Box::new(None::<i64>),
        (Value::Null, Kind::Bool) => Box::new(None::<bool>),
        (Value::Null, Kind::Text) => Box::new(None::<String>),
        (Value::Null, Kind::Bytes) => Box::new(None::<Vec<u8>>),
        (Value::Int(i), Kind::Int) => Box::new(*i),
        (Value::Int(i), Kind::Bool) => Box::new(*i != 0),
        (Value::Text(t), Kind::Text) => Box::new(t.clone()),
        (Value::Bytes(b), Kind::Bytes) => Box::new(b.clone()),
        _ => return None,
    })
}

/// Every row of every table, in one snapshot transaction.
fn snapshot(client: &mut Client) -> Result<Snapshot> {
    let mut tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
    let mut snapshot = Snapshot::default();
    for table in TABLES {
        let rows = tx.query(&format!("SELECT {} FROM {} ORDER BY 1", table.column_list(), table.name), &[])?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut row = Vec::with_capacity(table.columns.len());
            for (i, (name, kind)) in table.columns.iter().enumerate() {
                row.push(read_value(r, i, *kind).map_err(|_| mistyped(table.name, name))?);
            }
            out.push(row);
        }
        snapshot.rows.push(out);
    }
    for table in TABLES {
        let Some(column) = table.identity else { continue };
        let sequence: String =
            tx.query_one("SELECT pg_get_serial_sequence($1, $2)", &[&table.name, &column])?.try_get(0)?;
        let row = tx.query_one(&format!("SELECT last_value, is_called FROM {sequence}"), &[])?;
        let last: i64 = if row.try_get::<_, bool>(1)? { row.try_get(0)? } else { 0 };
        snapshot.last_ids.push((table.name, last));
    }
    tx.commit()?;
    Ok(snapshot)
}

/// Writes `snapshot` into the (empty) store, in one transaction under the write lock.
fn load(client: &mut Client, snapshot: &Snapshot) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let n: i64 = tx.query_one(&format!("SELECT count(*) FROM {}", table.name), &[])?.try_get(0)?;
        counts.push((table.name, n));
    }
    must_be_empty(&counts)?;
    for (table, rows) in TABLES.iter().zip(&snapshot.rows) {
        let marks = (1..=table.columns.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let overriding = if table.identity.is_some() { " OVERRIDING SYSTEM VALUE" } else { "" };
        let sql = format!("INSERT INTO {} ({}){overriding} VALUES ({marks})", table.name, table.column_list());
        let stmt = tx.prepare(&sql)?;
        for row in rows {
            let params = row
                .iter()
                .zip(table.columns)
                .map(|(v, (name, kind))| parameter(v, *kind).ok_or_else(|| mistyped(table.name, name)))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
            tx.execute(&stmt, &refs)?;
        }
    }
    // Ids are never reused: each sequence goes on past the source's counter and every id.
    for table in TABLES {
        let Some(column) = table.identity else { continue };
        let last = snapshot.last_ids.iter().find(|(name, _)| *name == table.name).map_or(0, |(_, v)| *v);
        let highest: Option<i64> =
            tx.query_one(&format!("SELECT max({column}) FROM {}", table.name), &[])?.try_get(0)?;
        let next_after = last.max(highest.unwrap_or(0));
        if next_after > 0 {
            tx.execute("SELECT setval(pg_get_serial_sequence($1, $2), $3)", &[&table.name, &column, &next_after])?;
        }
    }
    tx.commit()?;
    Ok(())
}

impl PgStore {
    pub(super) fn copy_snapshot(&self) -> Result<Snapshot> {
        self.with_conn(|conn| snapshot(&mut conn.client))
    }

    pub(super) fn copy_load(&self, snapshot: &Snapshot) -> Result<()> {
        self.with_conn(|conn| load(&mut conn.client, snapshot))
    }
}
