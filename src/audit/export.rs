//! Export for SIEMs: one JSON object per line with stable field names, filtered by time
//! and object. Never key bytes, PINs or plaintext: entries hold none to begin with.

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

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One entry as a JSON line (no trailing newline).
pub fn json_line(row: &AuditRow) -> String {
    let e = &row.event;
    let opt = |v: &Option<String>| v.as_deref().map_or("null".to_string(), json_string);
    let num = |v: Option<u64>| v.map_or("null".to_string(), |n| n.to_string());
    format!(
        "{{\"seq\":{},\"at_ms\":{},\"pid\":{},\"session\":{},\"workspace\":{},\"actor\":{},\"action\":{},\"object\":{},\"count\":{},\"outcome\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\"}}",
        row.seq,
        row.at_ms,
        row.pid,
        num(e.session),
        opt(&e.workspace),
        json_string(&e.actor),
        json_string(&e.action),
        opt(&e.object),
        num(e.count),
        json_string(&e.outcome),
        hex(&row.prev_hash),
        hex(&row.hash)
    )
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
            r#"{"seq":1,"at_ms":5,"pid":9,"session":4,"workspace":"ws","actor":"user","action":"C_WrapKey","object":"key \"a\"\u000a","count":null,"outcome":"CKR_OK","prev_hash":"0000","hash":"0101"}"#
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
