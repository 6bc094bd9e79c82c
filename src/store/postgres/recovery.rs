//! The recovery kit inventory on PostgreSQL (`store/recovery.rs` says what each row is),
//! the same rows as SQLite's; each change commits with its audit entry.

use postgres::GenericClient;

use super::{col, Db, PgStore};
use crate::error::{Error, Result};
use crate::store::recovery::{parse_versions, versions_text, IssuedKit, KitAck, KitRecord};
use crate::store::AuditEvent;

/// Every kit of `workspace` with its acknowledgements, oldest first.
pub(super) fn kits<C: GenericClient>(db: &mut Db<'_, C>, workspace: &str) -> Result<Vec<IssuedKit>> {
    let rows = db.query(
        "SELECT kit_id, fingerprint, versions, holder, issued_at FROM recovery_kits
         WHERE workspace = $1 ORDER BY issued_at, kit_id",
        &[&workspace],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let kit_id: String = col(&r, 0)?;
        let fingerprint: Vec<u8> = col(&r, 1)?;
        let fingerprint: [u8; 32] =
            fingerprint.try_into().map_err(|_| Error::Store(format!("kit {kit_id}: fingerprint is not 32 bytes")))?;
        let acks = db
            .query("SELECT holder, at FROM recovery_kit_acks WHERE kit_id = $1 ORDER BY at, holder", &[&kit_id])?
            .iter()
            .map(|a| Ok(KitAck { kit_id: kit_id.clone(), holder: col(a, 0)?, at: col(a, 1)? }))
            .collect::<Result<Vec<_>>>()?;
        let versions: String = col(&r, 2)?;
        let kit = KitRecord {
            kit_id,
            workspace: workspace.to_string(),
            fingerprint,
            versions: parse_versions(&versions)?,
            holder: col(&r, 3)?,
            issued_at: col(&r, 4)?,
        };
        out.push(IssuedKit { kit, acks });
    }
    Ok(out)
}

impl PgStore {
    pub(super) fn recovery_add_kit(&self, kit: &KitRecord, event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            tx.exec(
                "INSERT INTO recovery_kits (kit_id, workspace, fingerprint, versions, holder, issued_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &kit.kit_id,
                    &kit.workspace,
                    &kit.fingerprint.as_slice(),
                    &versions_text(&kit.versions),
                    &kit.holder,
                    &kit.issued_at,
                ],
            )?;
            Ok(())
        })
    }

    pub(super) fn recovery_ack_kit(&self, ack: &KitAck, fingerprint: &[u8; 32], event: &AuditEvent) -> Result<bool> {
        // A kit's fingerprint never changes once issued, so checking it before the write
        // (as SQLite does) cannot race with another host.
        let known = self.read(|db| {
            let row = db.opt("SELECT fingerprint FROM recovery_kits WHERE kit_id = $1", &[&ack.kit_id])?;
            row.map(|r| col::<Vec<u8>>(&r, 0)).transpose()
        })?;
        if known.as_deref() != Some(fingerprint.as_slice()) {
            return Ok(false);
        }
        self.write(event, |tx| {
            tx.exec(
                "INSERT INTO recovery_kit_acks (kit_id, holder, at) VALUES ($1, $2, $3)",
                &[&ack.kit_id, &ack.holder, &ack.at],
            )?;
            Ok(true)
        })
    }
}
