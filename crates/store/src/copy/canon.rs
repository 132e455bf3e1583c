//! One value, two renderings: the text `COPY … FROM STDIN` reads, and the canonical form
//! the checksum hashes, computed the same way from a SQLite value and from what
//! PostgreSQL gives back as `column::text`.
//!
//! Canonical forms: integers and text as they are; booleans `true`/`false` (SQLite's 1/0);
//! bytes as `\x` and lowercase hex (PostgreSQL's `bytea` output); floats as Rust prints the
//! `f64` they parse to; JSON re-rendered with object keys sorted, no whitespace, and
//! integral numbers without a fraction (exact up to 2^53, as an `f64` beyond) — `jsonb` reorders keys and drops whitespace, and
//! writes `1e17` as `100000000000000000`, so neither side's text is compared as it is.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::CopyError;

/// What a PostgreSQL column's type makes of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ColumnType {
    Integer,
    Text,
    Json,
    Bool,
    Bytea,
    Float,
}

impl ColumnType {
    /// From `information_schema.columns.data_type`.
    pub(super) fn of(data_type: &str, table: &str, column: &str) -> Result<Self, CopyError> {
        Ok(match data_type {
            "bigint" | "integer" | "smallint" => Self::Integer,
            "text" | "character varying" => Self::Text,
            "jsonb" | "json" => Self::Json,
            "boolean" => Self::Bool,
            "bytea" => Self::Bytea,
            "double precision" | "real" => Self::Float,
            other => {
                return Err(CopyError::Schema(format!(
                    "column {table}.{column} has type {other}, which the copy does not know"
                )));
            }
        })
    }
}

/// Appends `value` (`None`: NULL) to `buf` as one field of COPY's text format, and its
/// canonical form to `hash`.
pub(super) fn write_field(
    buf: &mut Vec<u8>,
    hash: &mut Sha256,
    ty: ColumnType,
    value: Option<&str>,
) -> Result<(), String> {
    let Some(v) = value else {
        buf.extend_from_slice(b"\\N");
        hash.update(b"N");
        return Ok(());
    };
    for &b in v.as_bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => buf.push(b),
        }
    }
    let canonical = match ty {
        ColumnType::Json => std::borrow::Cow::Owned(canonical_json(v).map_err(|e| format!("not JSON: {e}"))?),
        ColumnType::Float => {
            let f: f64 = v.parse().map_err(|_| format!("not a number: {v}"))?;
            std::borrow::Cow::Owned(format!("{f:?}"))
        }
        _ => std::borrow::Cow::Borrowed(v),
    };
    hash.update(b"V");
    hash.update((canonical.len() as u64).to_le_bytes());
    hash.update(canonical.as_bytes());
    Ok(())
}

/// `text` parsed as JSON and rendered canonically: keys sorted, no whitespace, integral
/// numbers as integers.
pub fn canonical_json(text: &str) -> Result<String, serde_json::Error> {
    let v: Value = serde_json::from_str(text)?;
    let mut out = String::with_capacity(text.len());
    render(&v, &mut out);
    Ok(out)
}

fn render(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            // Exact up to 2^53; beyond, the f64 both texts parse to (jsonb writes `1e17` out
            // in full, and 17 significant digits padded with zeros parse to the same f64).
            const EXACT: f64 = 9_007_199_254_740_992.0;
            match n.as_i64() {
                Some(i) if (i as f64).abs() <= EXACT => {
                    let _ = write!(out, "{i}");
                }
                _ => {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    if f.fract() == 0.0 && f.abs() <= EXACT {
                        let _ = write!(out, "{}", f as i64);
                    } else {
                        let _ = write!(out, "{f:?}");
                    }
                }
            }
        }
        Value::String(s) => out.push_str(&quoted(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quoted(k));
                out.push(':');
                render(&fields[k], out);
            }
            out.push('}');
        }
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}
