//! The two table formats: CSV (RFC 4180: a header row, CRLF line ends,
//! fields with a comma, quote, CR or LF quoted and quotes doubled, null as
//! an empty field) and NDJSON (one JSON object per line, keys in column
//! order). Money and ratios are exact decimal strings in both, dates ISO
//! 8601, instants RFC 3339 in UTC.
use std::fmt::Write as _;

use crate::service::export::Cell;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8; header=present",
            Format::Ndjson => "application/x-ndjson; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }

    pub fn name(self) -> &'static str {
        self.extension()
    }

    /// The header: the CSV header row; nothing for NDJSON.
    pub fn header(self, out: &mut Vec<u8>, columns: &[&str]) {
        if self == Format::Csv {
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                csv_field(out, c);
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    /// One row.
    pub fn row(self, out: &mut Vec<u8>, columns: &[&str], row: &[Cell]) {
        match self {
            Format::Csv => {
                let mut text = String::new();
                for (i, cell) in row.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    text.clear();
                    match cell {
                        Cell::Null => {}
                        Cell::Text(s) => csv_field(out, s),
                        other => {
                            plain(&mut text, other);
                            csv_field(out, &text);
                        }
                    }
                }
                out.extend_from_slice(b"\r\n");
            }
            Format::Ndjson => {
                out.push(b'{');
                for (i, (name, cell)) in columns.iter().zip(row).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json_string(out, name);
                    out.push(b':');
                    json_value(out, cell);
                }
                out.extend_from_slice(b"}\n");
            }
        }
    }
}

/// A cell's text (not Null or Text).
fn plain(text: &mut String, cell: &Cell) {
    let _ = match cell {
        Cell::Null | Cell::Text(_) => Ok(()),
        Cell::Int(v) => write!(text, "{v}"),
        Cell::Float(v) => write!(text, "{v}"),
        Cell::Bool(v) => write!(text, "{v}"),
        Cell::Decimal(v) => write!(text, "{v}"),
        Cell::Date(d) => write!(text, "{}", d.format("%Y-%m-%d")),
        Cell::Timestamp(t) => write!(
            text,
            "{}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
    };
}

/// A CSV field, quoted when it must be (RFC 4180, 2.6 and 2.7).
pub fn csv_field(out: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\r', '\n']) {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // serde_json writes a &str as an escaped JSON string and cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn json_value(out: &mut Vec<u8>, cell: &Cell) {
    match cell {
        Cell::Null => out.extend_from_slice(b"null"),
        Cell::Int(v) => out.extend_from_slice(v.to_string().as_bytes()),
        Cell::Bool(v) => out.extend_from_slice(if *v { b"true" } else { b"false" }),
        Cell::Float(v) => {
            let _ = serde_json::to_writer(&mut *out, v);
        }
        Cell::Text(s) => json_string(out, s),
        other => {
            let mut text = String::new();
            plain(&mut text, other);
            json_string(out, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn csv_quotes_what_rfc_4180_requires() {
        let mut out = Vec::new();
        let cols = ["id", "name", "amount", "note"];
        Format::Csv.header(&mut out, &cols);
        Format::Csv.row(
            &mut out,
            &cols,
            &[
                Cell::Int(1),
                Cell::Text("Acme, \"Big\" deal\r\nline 2".into()),
                Cell::Decimal(Decimal::new(123450, 2)),
                Cell::Null,
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id,name,amount,note\r\n1,\"Acme, \"\"Big\"\" deal\r\nline 2\",1234.50,\r\n"
        );
    }

    #[test]
    fn ndjson_keeps_money_exact_and_nulls() {
        let mut out = Vec::new();
        let cols = ["id", "amount", "closed", "won"];
        Format::Ndjson.row(
            &mut out,
            &cols,
            &[
                Cell::Int(7),
                Cell::Decimal(Decimal::new(10, 2)),
                Cell::Null,
                Cell::Bool(true),
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":7,\"amount\":\"0.10\",\"closed\":null,\"won\":true}\n"
        );
    }
}
