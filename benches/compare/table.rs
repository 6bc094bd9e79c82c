//! The table: a [`Row`] holds each contender's figure in a fixed column (this module,
//! SoftHSM2, the raw crates, Kryoptic, this module's `rustcrypto` build), [`measure_row`]
//! measures a row's batches into those columns, and [`print_row`] prints it and keeps it
//! for the report. The Kryoptic and rustcrypto columns are printed only when the run has
//! that module.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{err, measure, Batch, Res, Stats};

/// What a row's figures are.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Unit {
    /// Operations per second (higher is better).
    Rate,
    /// Milliseconds per operation (lower is better).
    Ms,
    /// Mebibytes of resident memory (lower is better).
    Mib,
}

/// The raw crates' column in [`Row::vals`] (0 is this module, 1 SoftHSM2).
pub(super) const RAW: usize = 2;
/// Kryoptic's column in [`Row::vals`]: after the raw one, so rows without it keep their indices.
pub(super) const KY: usize = 3;
/// The `rustcrypto` build of this module (the pure-Rust backend) in [`Row::vals`]: last.
pub(super) const RC: usize = 4;
/// How many columns a [`Row`] has.
pub(super) const COLUMNS: usize = 5;

/// Whether this run has Kryoptic (its library was built and opened): the table shows
/// its columns only then.
pub(super) static KRYOPTIC_COLUMN: AtomicBool = AtomicBool::new(false);

/// Whether this run has the module's `rustcrypto` build beside the default one.
pub(super) static RUSTCRYPTO_COLUMN: AtomicBool = AtomicBool::new(false);

pub(super) fn kryoptic_column() -> bool {
    KRYOPTIC_COLUMN.load(Ordering::Relaxed)
}

pub(super) fn rustcrypto_column() -> bool {
    RUSTCRYPTO_COLUMN.load(Ordering::Relaxed)
}

/// The column of each PKCS#11 module in peer order (the order of `tokens` and `clients`
/// in every row: this module, SoftHSM2, then Kryoptic and the rustcrypto build when the
/// run has them).
pub(super) fn peer_columns() -> Vec<usize> {
    let mut cols = vec![0, 1];
    if kryoptic_column() {
        cols.push(KY);
    }
    if rustcrypto_column() {
        cols.push(RC);
    }
    cols
}

/// One line of the table: collabvault, SoftHSM2, raw crates, Kryoptic, the rustcrypto build.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub(super) name: String,
    pub(super) unit: Unit,
    pub(super) vals: [Option<Stats>; COLUMNS],
    /// What an empty cell says ("not offered", "not run", "n/a", "-").
    pub(super) missing: [&'static str; COLUMNS],
}

impl Row {
    /// A rate row from figures by column ([`RAW`], [`KY`], [`RC`]; missing ones `None`).
    pub(super) fn rates(name: impl Into<String>, rates: &[Option<Stats>]) -> Row {
        let at = |i: usize| rates.get(i).copied().flatten();
        Row {
            name: name.into(),
            unit: Unit::Rate,
            vals: [at(0), at(1), at(RAW), at(KY), at(RC)],
            missing: ["not offered", "not offered", "-", "n/a", "-"],
        }
    }

    /// How many times better the module is than column `other` (>1: the module wins).
    pub(super) fn ratio(&self, other: usize) -> Option<f64> {
        self.ratio_of(0, other)
    }

    /// How many times better column `col` is than column `other` (>1: `col` wins).
    pub(super) fn ratio_of(&self, col: usize, other: usize) -> Option<f64> {
        let (a, b) = (self.vals[col]?.median, self.vals[other]?.median);
        match self.unit {
            Unit::Rate => Some(a / b),
            Unit::Ms | Unit::Mib => Some(b / a),
        }
    }
}

/// Three significant digits, with k/M suffixes for rates.
pub(super) fn compact(v: f64) -> String {
    let (v, suffix) = if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if v >= 100.0 {
        format!("{v:.0}{suffix}")
    } else if v >= 10.0 {
        format!("{v:.1}{suffix}")
    } else {
        format!("{v:.2}{suffix}")
    }
}

pub(super) fn fmt_cell(row: &Row, i: usize) -> String {
    match row.vals[i] {
        None => row.missing[i].to_string(),
        Some(s) => format!("{} [{}–{}]", compact(s.median), compact(s.min), compact(s.max)),
    }
}

pub(super) fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| if r >= 100.0 { format!("{r:.0}x") } else { format!("{r:.2}x") })
}

/// The module's time per operation, for rate rows.
pub(super) fn fmt_per_op(row: &Row) -> String {
    match (row.unit, row.vals[0]) {
        (Unit::Rate, Some(s)) => {
            let us = 1e6 / s.median;
            if us >= 1000.0 {
                format!("{:.2} ms", us / 1000.0)
            } else {
                format!("{us:.2} µs")
            }
        }
        _ => "".into(),
    }
}

pub(super) fn unit_name(u: Unit) -> &'static str {
    match u {
        Unit::Rate => "ops/s",
        Unit::Ms => "ms",
        Unit::Mib => "MiB",
    }
}

pub(super) static ROWS: std::sync::Mutex<Vec<Row>> = std::sync::Mutex::new(Vec::new());

/// The table's line for `cells`: (operation, unit, collabvault, softhsm2, raw, cv/sh,
/// cv/raw, cv per op, kryoptic, cv/ky, rustcrypto, rc/sh); kryoptic and cv/ky only when
/// the run has Kryoptic, rustcrypto and rc/sh only when it has the rustcrypto build.
pub(super) fn table_line(c: [&str; 12]) -> String {
    let mut line =
        format!("{:<54} {:>5} {:>24} {:>24} {:>24} {:>9} {:>8} {:>10}", c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
    if kryoptic_column() {
        line.push_str(&format!(" {:>24} {:>9}", c[8], c[9]));
    }
    if rustcrypto_column() {
        line.push_str(&format!(" {:>24} {:>9}", c[10], c[11]));
    }
    line
}

pub(super) fn print_header() {
    println!(
        "{}",
        table_line([
            "operation",
            "unit",
            "collabvault",
            "softhsm2",
            "raw",
            "cv/sh",
            "cv/raw",
            "cv per op",
            "kryoptic",
            "cv/ky",
            "rustcrypto",
            "rc/sh"
        ])
    );
}

/// Prints a row and keeps it for the report.
pub(super) fn print_row(row: &Row) {
    let cells = [
        row.name.clone(),
        unit_name(row.unit).to_string(),
        fmt_cell(row, 0),
        fmt_cell(row, 1),
        fmt_cell(row, RAW),
        fmt_ratio(row.ratio(1)),
        fmt_ratio(row.ratio(RAW)),
        fmt_per_op(row),
        fmt_cell(row, KY),
        fmt_ratio(row.ratio(KY)),
        fmt_cell(row, RC),
        fmt_ratio(row.ratio_of(RC, 1)),
    ];
    println!("{}", table_line(cells.each_ref().map(String::as_str)));
    ROWS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(row.clone());
}

/// Measures a row whose contenders are the PKCS#11 modules' batches in peer order
/// ([`peer_columns`]; a row may give fewer, the rest are not measured) followed by the
/// raw one, and prints it with each figure in its column.
pub(super) fn measure_row(name: &str, mut contenders: Vec<Option<Batch<'_>>>) -> Res<()> {
    let raw = contenders.pop().flatten();
    contenders.push(raw);
    let rates = measure(&mut contenders).map_err(|e| err(format!("{name}: {e}")))?;
    let (raw, peers) = rates.split_last().ok_or_else(|| err(format!("{name}: no contenders")))?;
    print_row(&Row::rates(name, &by_column(peers, *raw)));
    Ok(())
}

/// Figures in peer order (and the raw one) placed in their columns.
pub(super) fn by_column(peers: &[Option<Stats>], raw: Option<Stats>) -> [Option<Stats>; COLUMNS] {
    let mut cells = [None; COLUMNS];
    for (col, s) in peer_columns().into_iter().zip(peers) {
        cells[col] = *s;
    }
    cells[RAW] = raw;
    cells
}
