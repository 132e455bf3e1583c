//! Property tests of item decoding: arbitrary JSON bodies, item-shaped and not, whole and
//! cut short, through the per-item limits ([`limits::check_items`]), the body extractor
//! ([`ApiJson`]) and the checks every submitted item passes ([`item_parts`]). Never a
//! panic; every refusal is a 4xx JSON error, and every 413/422 names the field at fault.

use axum::extract::FromRequest;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::ApiJson;
use super::dto::SubmitItems;
use super::limits::{self, ItemLimits};
use crate::app::items::item_parts;
use flywheel_core::LabelSet;

const KEYS: &[&str] = &["text", "items", "payload", "n"];

fn json_value() -> BoxedStrategy<Value> {
    flywheel_core::arbitrary::json_value(6, 48, KEYS)
}

fn key() -> BoxedStrategy<String> {
    flywheel_core::arbitrary::key(KEYS)
}

/// An item: mostly the documented shape (with wrong types now and then), sometimes any value.
fn item() -> impl Strategy<Value = Value> {
    let scores = prop_oneof![
        3 => (0.0f64..=1.0).prop_map(|p| json!({"ham": 1.0 - p, "spam": p})),
        1 => json_value(),
    ];
    let prediction = (
        prop_oneof![3 => ".{0,6}".prop_map(Value::from), 1 => json_value()],
        scores,
        proptest::option::of(prop_oneof![(0.0f64..=1.0).prop_map(Value::from), json_value()]),
    )
        .prop_map(|(model, scores, novelty)| {
            let mut p = json!({"model": model, "scores": scores});
            if let Some(n) = novelty {
                p["novelty"] = n;
            }
            p
        });
    let shaped = (
        prop_oneof![4 => ".{0,10}".prop_map(Value::from), 1 => json_value()],
        json_value(),
        proptest::option::of(json_value()),
        proptest::option::of(prop_oneof![3 => prediction, 1 => json_value()]),
        proptest::option::of((key(), json_value())),
    )
        .prop_map(|(external_id, payload, attributes, prediction, extra)| {
            let mut it = json!({"external_id": external_id, "payload": payload});
            if let Some(a) = attributes {
                it["attributes"] = a;
            }
            if let Some(p) = prediction {
                it["prediction"] = p;
            }
            if let Some((k, v)) = extra {
                it[k] = v;
            }
            it
        });
    prop_oneof![6 => shaped, 1 => json_value()]
}

/// A body: `{"items": [...]}` (maybe with another member), or any JSON; serialised
/// compactly or pretty, and sometimes cut short or with a byte changed.
fn body() -> impl Strategy<Value = (Value, Vec<u8>)> {
    let value = prop_oneof![
        6 => (proptest::collection::vec(item(), 0..6), proptest::option::of((key(), json_value()))).prop_map(|(items, extra)| {
            let mut b = json!({"items": items});
            if let Some((k, v)) = extra {
                b[k] = v;
            }
            b
        }),
        1 => json_value(),
    ];
    (
        value,
        any::<bool>(),
        proptest::option::of((any::<prop::sample::Index>(), any::<u8>(), any::<bool>())),
    )
        .prop_map(|(v, pretty, damage)| {
            let mut bytes = if pretty {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            };
            if let Some((at, byte, cut)) = damage
                && !bytes.is_empty()
            {
                let at = at.index(bytes.len());
                if cut {
                    bytes.truncate(at);
                } else {
                    bytes[at] = byte;
                }
            }
            (v, bytes)
        })
}

/// How deep `v` nests: a scalar is 0, an empty object or array 1.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

const SMALL: ItemLimits = ItemLimits {
    bytes: 300,
    depth: 4,
    elements: 40,
};

fn labels() -> LabelSet {
    LabelSet::parse(&["ham".into(), "spam".into()]).unwrap()
}

async fn decode(bytes: Vec<u8>) -> Result<SubmitItems, crate::error::ApiError> {
    let req = axum::http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(bytes))
        .unwrap();
    ApiJson::<SubmitItems>::from_request(req, &()).await.map(|ApiJson(b)| b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The limits scan: any bytes, no panic; a refusal names `items[i]…` with 413 or 422;
    /// a pass of a whole compact body means every item is within the depth and byte limits,
    /// and an item nested too deep is always refused.
    #[test]
    fn the_item_limits_hold_and_name_the_item((v, bytes) in body()) {
        match limits::check_items(&bytes, SMALL) {
            Err(e) => {
                prop_assert!(matches!(e.status.as_u16(), 413 | 422), "status {}", e.status);
                let field = e.field.clone().unwrap_or_default();
                prop_assert!(field.starts_with("items["), "field {field:?} for {}", String::from_utf8_lossy(&bytes));
            }
            Ok(()) => {
                if bytes == serde_json::to_vec(&v).unwrap()
                    && let Some(items) = v.get("items").and_then(Value::as_array)
                {
                    for it in items {
                        prop_assert!(depth(it) <= SMALL.depth, "an item {} deep passed", depth(it));
                        prop_assert!(serde_json::to_vec(it).unwrap().len() <= SMALL.bytes);
                    }
                }
            }
        }
        if let Ok(parsed) = serde_json::from_slice::<Value>(&bytes)
            && let Some(items) = parsed.get("items").and_then(Value::as_array)
            && parsed.is_object()
            && items.iter().any(|it| depth(it) > SMALL.depth)
        {
            prop_assert!(limits::check_items(&bytes, SMALL).is_err(), "a deep item passed");
        }
    }

    /// The submission's decoding: any bytes through the extractor and the per-item checks,
    /// no panic; every refusal a 4xx JSON error, and a 422 names its field.
    #[test]
    fn decoding_a_submission_refuses_with_a_field((_, bytes) in body()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        match rt.block_on(decode(bytes)) {
            Err(e) => {
                prop_assert!(e.status.is_client_error(), "status {}", e.status);
                prop_assert!(!e.code.is_empty() && !e.message.is_empty());
                if e.status.as_u16() == 422 {
                    prop_assert!(e.field.as_deref().is_some_and(|f| !f.is_empty()), "422 without a field: {e:?}");
                }
            }
            Ok(body) => {
                let labels = labels();
                for (i, it) in body.items.into_iter().enumerate() {
                    if let Err(e) = item_parts(i, &it.external_id, &it.payload, it.attributes, it.prediction, &labels) {
                        let at = format!("items[{i}]");
                        prop_assert!(e.field.starts_with(&at), "field {:?} is not under {at}", e.field);
                        prop_assert!(!e.message.is_empty());
                    }
                }
            }
        }
    }
}
