//! The recovery kit inventory in SQLite (`store/recovery.rs` says what each row is). Each
//! change commits with its audit entry, as everywhere in the store.

use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteStore;
use crate::error::{Error, Result};
use crate::store::recovery::{parse_versions, versions_text, IssuedKit, KitAck, KitRecord};
use crate::store::AuditEvent;

/// Every kit of `workspace` with its acknowledgements, oldest first.
pub(super) fn kits(conn: &Connection, workspace: &str) -> Result<Vec<IssuedKit>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kit_id, fingerprint, versions, holder, issued_at FROM recovery_kits
         WHERE workspace = ?1 ORDER BY issued_at, kit_id",
    )?;
    let rows = stmt
        .query_map([workspace], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<Vec<(String, Vec<u8>, String, String, i64)>>>()?;
    let mut acks =
        conn.prepare_cached("SELECT holder, at FROM recovery_kit_acks WHERE kit_id = ?1 ORDER BY at, holder")?;
    let mut out = Vec::with_capacity(rows.len());
    for (kit_id, fingerprint, versions, holder, issued_at) in rows {
        let fingerprint: [u8; 32] =
            fingerprint.try_into().map_err(|_| Error::Store(format!("kit {kit_id}: fingerprint is not 32 bytes")))?;
        let list = acks
            .query_map([&kit_id], |r| Ok(KitAck { kit_id: kit_id.clone(), holder: r.get(0)?, at: r.get(1)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let kit = KitRecord {
            kit_id,
            workspace: workspace.to_string(),
            fingerprint,
            versions: parse_versions(&versions)?,
            holder,
            issued_at,
        };
        out.push(IssuedKit { kit, acks: list });
    }
    Ok(out)
}

impl SqliteStore {
    pub(super) fn recovery_add_kit(&self, kit: &KitRecord, event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            tx.execute(
                "INSERT INTO recovery_kits (kit_id, workspace, fingerprint, versions, holder, issued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    kit.kit_id,
                    kit.workspace,
                    kit.fingerprint.to_vec(),
                    versions_text(&kit.versions),
                    kit.holder,
                    kit.issued_at
                ],
            )?;
            Ok(())
        })
    }

    pub(super) fn recovery_ack_kit(&self, ack: &KitAck, fingerprint: &[u8; 32], event: &AuditEvent) -> Result<bool> {
        let known: Option<Vec<u8>> = self.with_conn(|c| {
            Ok(c.prepare_cached("SELECT fingerprint FROM recovery_kits WHERE kit_id = ?1")?
                .query_row([&ack.kit_id], |r| r.get(0))
                .optional()?)
        })?;
        if known.as_deref() != Some(fingerprint.as_slice()) {
            return Ok(false);
        }
        self.write(event, |tx| {
            tx.execute(
                "INSERT INTO recovery_kit_acks (kit_id, holder, at) VALUES (?1, ?2, ?3)",
                params![ack.kit_id, ack.holder, ack.at],
            )?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Backend;

    fn kit(id: &str, fingerprint: u8, versions: &[u32]) -> KitRecord {
        KitRecord {
            kit_id: id.into(),
            workspace: "eng".into(),
            fingerprint: [fingerprint; 32],
            versions: versions.to_vec(),
            holder: "alice".into(),
            issued_at: 100,
        }
    }

    #[test]
    fn kits_and_acknowledgements_round_trip_each_with_its_audit_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let before = store.audit_rows().unwrap().len();
        store.add_kit(&kit("k1", 1, &[1, 2]), &AuditEvent::ok("eng", "cvault", "kit-export", None)).unwrap();
        store.add_kit(&kit("k2", 2, &[3]), &AuditEvent::ok("eng", "cvault", "kit-export", None)).unwrap();
        let ack = KitAck { kit_id: "k1".into(), holder: "bob".into(), at: 200 };
        let event = AuditEvent::ok("eng", "cvault", "kit-ack", None);
        assert!(!store.ack_kit(&ack, &[2; 32], &event).unwrap(), "another kit's fingerprint proves nothing");
        assert!(!store.ack_kit(&KitAck { kit_id: "k9".into(), ..ack.clone() }, &[1; 32], &event).unwrap());
        assert!(store.ack_kit(&ack, &[1; 32], &event).unwrap());
        assert_eq!(store.audit_rows().unwrap().len(), before + 3, "two issues and one acknowledgement");
        let kits = store.kits("eng").unwrap();
        assert_eq!(kits.len(), 2);
        assert_eq!(kits[0].kit.versions, vec![1, 2]);
        assert_eq!(kits[0].acks, vec![ack]);
        assert_eq!(kits[1].kit.newest(), 3);
        assert!(store.kits("sales").unwrap().is_empty());
        let dup = store.add_kit(&kit("k3", 1, &[1]), &AuditEvent::ok("eng", "cvault", "kit-export", None));
        assert!(dup.is_err(), "a fingerprint names one kit");
    }
}
