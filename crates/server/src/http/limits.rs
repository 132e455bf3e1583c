//! Limits per item of a request's `items` array (items, gold, predictions), checked on the
//! raw bytes before anything is parsed, so that one item cannot make the server build a
//! huge value (a 60 MB array of 30 million numbers once took 2.7 GB): an item has at most
//! [`MAX_ITEM_BYTES`] bytes of JSON (413 `payload_too_large`), nests at most
//! [`MAX_ITEM_DEPTH`] deep and holds at most [`MAX_ITEM_ELEMENTS`] values (422 `invalid`).
//! Each error names the item and its member where the limit was crossed
//! (`items[3].payload`). The scan is one pass that tracks only strings and nesting.

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
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut string_start = 0usize;
    // The last string that ended at the top level, and at an item's top level.
    let mut root_key: &[u8] = b"";
    let mut member: &[u8] = b"";
    let mut in_items = false;
    // The item being scanned: its index, first byte and values so far.
    let mut item: Option<(usize, usize, usize)> = None;
    let mut next_index = 0usize;
    let field = |i: usize, member: &[u8]| {
        if member.is_empty() {
            format!("items[{i}]")
        } else {
            format!("items[{i}].{}", String::from_utf8_lossy(member))
        }
    };
    for (at, &b) in body.iter().enumerate() {
        if let Some((i, start, _)) = item
            && at - start >= limits.bytes
        {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("an item has at most {} bytes of JSON", limits.bytes),
            )
            .with_field(field(i, member)));
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                let s = &body[string_start..at];
                match depth {
                    1 => root_key = s,
                    3 if item.is_some() => member = s,
                    _ => {}
                }
            }
            continue;
        }
        // A value starts here when inside the items array at the item level.
        if in_items && depth == 2 && item.is_none() && !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | b']') {
            item = Some((next_index, at, 0));
            next_index += 1;
            member = b"";
        }
        match b {
            b'"' => {
                in_string = true;
                string_start = at + 1;
            }
            b'{' | b'[' => {
                if depth == 1 && b == b'[' && root_key == b"items" {
                    in_items = true;
                }
                depth += 1;
                if let Some((i, start, n)) = item {
                    if depth - 2 > limits.depth {
                        return Err(ApiError::invalid(
                            field(i, member),
                            format!("an item nests at most {} levels deep", limits.depth),
                        ));
                    }
                    item = Some((i, start, n + 1));
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 1 && in_items {
                    in_items = false;
                    item = None;
                }
            }
            b',' => {
                if depth == 2 && in_items {
                    item = None;
                } else if let Some((i, start, n)) = item {
                    item = Some((i, start, n + 1));
                }
            }
            _ => {}
        }
        if let Some((i, _, n)) = item
            && n >= limits.elements
        {
            return Err(ApiError::invalid(
                field(i, member),
                format!("an item holds at most {} values", limits.elements),
            ));
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
}
