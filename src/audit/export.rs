//! Export for SIEMs: one JSON object per line with stable field names, filtered by time
//! and object. Never key bytes, PINs or plaintext: entries hold none to begin with.

use serde::Serialize;

use crate::store::audit::AuditRow;

/// Which entries an export includes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only entries at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Only entries before this time (Unix ms).
    pub until_ms: Option<i64>,
    /// Only entries whose object mentions this (a `CKA_UNIQUE_ID`, a label, "wmk v2").
    pub key: Option<String>,
}

impl Filter {
    /// Whether `row` passes.
    pub fn accepts(&self, row: &AuditRow) -> bool {
        self.since_ms.is_none_or(|t| row.at_ms >= t)
            && self.until_ms.is_none_or(|t| row.at_ms < t)
            && self.key.as_deref().is_none_or(|k| row.event.object.as_deref().is_some_and(|o| o.contains(k)))
    }
}

/// One entry as a JSON line (no trailing newline). The field names and their order are
/// the export's contract with SIEMs: serde keeps them as declared.
pub fn json_line(row: &AuditRow) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        seq: i64,
        at_ms: i64,
        pid: u32,
        session: Option<u64>,
        workspace: Option<&'a str>,
        actor: &'a str,
        action: &'a str,
        object: Option<&'a str>,
        count: Option<u64>,
        outcome: &'a str,
        prev_hash: String,
        hash: String,
    }
    let e = &row.event;
    let line = Line {
        seq: row.seq,
        at_ms: row.at_ms,
        pid: row.pid,
        session: e.session,
        workspace: e.workspace.as_deref(),
        actor: &e.actor,
        action: &e.action,
        object: e.object.as_deref(),
        count: e.count,
        outcome: &e.outcome,
        prev_hash: hex::encode(&row.prev_hash),
        hash: hex::encode(&row.hash),
    };
    // Strings, numbers and options only: serializing cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::AuditEvent;

    fn row(at_ms: i64, object: Option<&str>) -> AuditRow {
        AuditRow {
            seq: 1,
            at_ms,
            pid: 9,
            event: AuditEvent::ok("ws", "user", "C_WrapKey", object.map(str::to_string)).in_session(Some(4)),
            prev_hash: vec![0; 2],
            hash: vec![1; 2],
            format: crate::store::audit::FORMAT,
        }
    }

    #[test]
    fn a_line_has_stable_fields_and_escapes_strings() {
        let line = json_line(&row(5, Some("key \"a\"\n")));
        assert_eq!(
            line,
            r#"{"seq":1,"at_ms":5,"pid":9,"session":4,"workspace":"ws","actor":"user","action":"C_WrapKey","object":"key \"a\"\n","count":null,"outcome":"CKR_OK","prev_hash":"0000","hash":"0101"}"#
        );
    }

    #[test]
    fn filters_select_by_time_and_key() {
        let f = Filter { since_ms: Some(10), until_ms: Some(20), key: Some("wmk v2".into()) };
        assert!(f.accepts(&row(10, Some("dek under wmk v2"))));
        assert!(!f.accepts(&row(20, Some("dek under wmk v2"))));
        assert!(!f.accepts(&row(15, Some("dek under wmk v1"))));
        assert!(!f.accepts(&row(15, None)));
    }
}
