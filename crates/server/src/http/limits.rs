//! Limits per item of a request's `items` array (items, gold, predictions), checked on the
//! raw bytes before anything is parsed, so that one item cannot make the server build a
//! huge value (a 60 MB array of 30 million numbers once took 2.7 GB): an item has at most
//! [`MAX_ITEM_BYTES`] bytes of JSON (413 `payload_too_large`), nests at most
//! [`MAX_ITEM_DEPTH`] deep and holds at most [`MAX_ITEM_ELEMENTS`] values (422 `invalid`).
//! Each error names the item and its member where the limit was crossed
//! (`items[3].payload`). The scan is one pass that tracks only strings and nesting.
//! The rows of an imported file are held to the same limits ([`check_rows`]), named by
//! their line (`line 7: payload`).

use axum::http::StatusCode;

use crate::error::ApiError;

/// Bytes of JSON in one item (its payload, attributes and prediction together).
pub const MAX_ITEM_BYTES: usize = 1024 * 1024;
/// Nesting of one item: the item object is 1, its payload 2, an object in that 3, …
pub const MAX_ITEM_DEPTH: usize = 32;
/// Values in one item (every number, string, array and object in it).
pub const MAX_ITEM_ELEMENTS: usize = 100_000;

/// The limits [`check_items`] applies.
#[derive(Debug, Clone, Copy)]
pub struct ItemLimits {
    pub bytes: usize,
    pub depth: usize,
    pub elements: usize,
}

pub const ITEM_LIMITS: ItemLimits = ItemLimits {
    bytes: MAX_ITEM_BYTES,
    depth: MAX_ITEM_DEPTH,
    elements: MAX_ITEM_ELEMENTS,
};

/// Checks each element of the `items` array of the body's top-level object against
/// `limits`. A body without one, or JSON that is malformed, passes: the parser reports it.
pub fn check_items(body: &[u8], limits: ItemLimits) -> Result<(), ApiError> {
    scan(body, limits, Rows::Items)
}

/// Checks each row of an imported file — an element of a top-level JSON array (a Label
/// Studio export) or a value of JSON lines — against `limits`, before any row is parsed;
/// the error names the row's line and member (`line 7: data`).
pub fn check_rows(body: &[u8], limits: ItemLimits) -> Result<(), ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    scan(
        body,
        limits,
        if first == Some(&b'[') { Rows::Array } else { Rows::Lines },
    )
}

/// Where a body's rows (the values each held to the limits) are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// The elements of the top-level object's `items` array (depth 2).
    Items,
    /// The elements of the top-level array (depth 1).
    Array,
    /// The top-level values, one per line (depth 0).
    Lines,
}

impl Rows {
    fn depth(self) -> usize {
        match self {
            Rows::Items => 2,
            Rows::Array => 1,
            Rows::Lines => 0,
        }
    }

    /// `e`, naming the field a limit crossed in row `r` at `member` (and, for a file's
    /// row, its line).
    fn refuse(self, e: ApiError, r: &Row, member: &[u8]) -> ApiError {
        let member = String::from_utf8_lossy(member);
        let (index, line) = (r.index, r.line);
        match (self, member.is_empty()) {
            (Rows::Items, true) => e.with_field(format!("items[{index}]")),
            (Rows::Items, false) => e.with_field(format!("items[{index}].{member}")),
            (_, true) => ApiError { line: Some(line), ..e }.with_field(format!("line {line}")),
            (_, false) => ApiError { line: Some(line), ..e }.with_field(format!("line {line}: {member}")),
        }
    }
}

/// The row being scanned.
#[derive(Clone, Copy)]
struct Row {
    index: usize,
    line: usize,
    start: usize,
    values: usize,
}

/// One pass over `body` that tracks only strings, nesting and lines, holding each row of
/// `rows` to `limits`.
fn scan(body: &[u8], limits: ItemLimits, rows: Rows) -> Result<(), ApiError> {
    let row_depth = rows.depth();
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut string_start = 0usize;
    // The last string that ended at the top level, and at a row's top level.
    let mut root_key: &[u8] = b"";
    let mut member: &[u8] = b"";
    // Whether the scan is inside the container whose elements are the rows.
    let mut in_rows = rows == Rows::Lines;
    let mut row: Option<Row> = None;
    let mut next_index = 0usize;
    for (at, &b) in body.iter().enumerate() {
        if let Some(r) = row
            && at - r.start >= limits.bytes
        {
            let e = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("an item has at most {} bytes of JSON", limits.bytes),
            );
            return Err(rows.refuse(e, &r, member));
        }
        if b == b'\n' {
            line += 1;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                let s = &body[string_start..at];
                if depth == 1 {
                    root_key = s;
                }
                if depth == row_depth + 1 && row.is_some() {
                    member = s;
                }
            }
            continue;
        }
        // A row starts here when inside the rows' container at the rows' level.
        if in_rows && depth == row_depth && row.is_none() && !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | b']') {
            row = Some(Row {
                index: next_index,
                line,
                start: at,
                values: 0,
            });
            next_index += 1;
            member = b"";
        }
        match b {
            b'"' => {
                in_string = true;
                string_start = at + 1;
            }
            b'{' | b'[' => {
                let opens_rows = match rows {
                    Rows::Items => depth == 1 && b == b'[' && root_key == b"items",
                    Rows::Array => depth == 0 && b == b'[',
                    Rows::Lines => false,
                };
                in_rows |= opens_rows;
                depth += 1;
                if let Some(r) = &mut row {
                    if depth - row_depth > limits.depth {
                        let e = ApiError::invalid("", format!("an item nests at most {} levels deep", limits.depth));
                        return Err(rows.refuse(e, r, member));
                    }
                    r.values += 1;
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if rows != Rows::Lines && depth + 1 == row_depth && in_rows {
                    // The rows' container closed.
                    in_rows = false;
                    row = None;
                } else if rows == Rows::Lines && depth == 0 {
                    row = None;
                }
            }
            b',' => {
                if depth == row_depth && in_rows {
                    row = None;
                } else if let Some(r) = &mut row {
                    r.values += 1;
                }
            }
            b'\n' if rows == Rows::Lines && depth == 0 => row = None,
            _ => {}
        }
        if let Some(r) = row
            && r.values >= limits.elements
        {
            let e = ApiError::invalid("", format!("an item holds at most {} values", limits.elements));
            return Err(rows.refuse(e, &r, member));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SMALL: ItemLimits = ItemLimits {
        bytes: 200,
        depth: 4,
        elements: 20,
    };

    fn verdict(body: serde_json::Value) -> Result<(), (u16, String)> {
        check_items(body.to_string().as_bytes(), SMALL).map_err(|e| (e.status.as_u16(), e.field.unwrap_or_default()))
    }

    #[test]
    fn each_item_is_held_to_the_limits_and_named() {
        let ok = json!({"external_id": "a", "payload": {"text": "hi, \"you\" [x]", "n": [1, 2]}});
        assert_eq!(verdict(json!({"items": [ok.clone(), ok.clone()]})), Ok(()));
        let long = json!({"external_id": "b", "payload": {"text": "x".repeat(300)}});
        assert_eq!(
            verdict(json!({"items": [ok.clone(), long]})),
            Err((413, "items[1].payload".into()))
        );
        let deep = json!({"external_id": "c", "payload": {"a": {"b": {"c": {"d": 1}}}}});
        assert_eq!(
            verdict(json!({"items": [ok.clone(), ok.clone(), deep]})),
            Err((422, "items[2].payload".into()))
        );
        let many = json!({"external_id": "d", "attributes": {"xs": (0..30).collect::<Vec<_>>()}, "payload": {}});
        assert_eq!(
            verdict(json!({"items": [many]})),
            Err((422, "items[0].attributes".into()))
        );
        // The limits are per item: many small items pass.
        let items: Vec<_> = (0..50).map(|_| ok.clone()).collect();
        assert_eq!(verdict(json!({"items": items})), Ok(()));
        // Elsewhere in the body, and bodies without items, are not this check's.
        assert_eq!(verdict(json!({"other": [[[[[[1]]]]]], "items": []})), Ok(()));
        assert_eq!(verdict(json!({"rules": "x".repeat(500)})), Ok(()));
        assert!(
            check_items(b"{\"items\": [{\"a\": ", SMALL).is_ok(),
            "malformed: the parser's to report"
        );
    }

    #[test]
    fn each_imported_row_is_held_to_the_limits_and_named_by_line() {
        let rows = |body: &str| {
            check_rows(body.as_bytes(), SMALL).map_err(|e| (e.status.as_u16(), e.field.unwrap_or_default()))
        };
        let ok = r#"{"external_id": "a", "payload": {"text": "hi, \"you\" [x]\n", "n": [1, 2]}}"#;
        let many = r#"{"external_id": "d", "payload": {"xs": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}}"#;
        let deep = r#"{"external_id": "c", "data": {"a": {"b": {"c": {"d": 1}}}}}"#;
        let long = format!(
            r#"{{"external_id": "b", "payload": {{"text": "{}"}}}}"#,
            "x".repeat(300)
        );
        // JSON lines: one row a line, named by it.
        assert_eq!(rows(&format!("{ok}\n{ok}\n")), Ok(()));
        assert_eq!(rows(&format!("{ok}\n\n{many}\n")), Err((422, "line 3: payload".into())));
        assert_eq!(rows(&format!("{ok}\n{long}\n")), Err((413, "line 2: payload".into())));
        // A Label Studio array: each element a row, named by the line it starts on.
        assert_eq!(rows(&format!("[\n{ok},\n{ok}\n]")), Ok(()));
        assert_eq!(rows(&format!("[\n{ok},\n{deep}\n]")), Err((422, "line 3: data".into())));
        // Many small rows pass: the limits are per row.
        let file: String = (0..50).map(|_| format!("{ok}\n")).collect();
        assert_eq!(rows(&file), Ok(()));
    }
}
