//! Property-test strategies shared by the crates' tests (`proptest`, behind the
//! `proptest` feature for other crates' tests): arbitrary JSON, a few levels deep, whose
//! object keys are mostly names the code under test reads.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON value nesting at most `depth` levels, with about `size` values in all; object
/// keys are drawn mostly from `keys`, sometimes anything. Strings include JSON's
/// troublesome characters (quotes, backslashes, brackets).
pub fn json_value(depth: u32, size: u32, keys: &'static [&'static str]) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        ".{0,12}".prop_map(Value::from),
        Just(Value::from("a \" quote, a \\ backslash, [brackets] {braces}")),
    ];
    leaf.prop_recursive(depth, size, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(key(keys), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

/// An object key: mostly one of `keys`, sometimes anything.
pub fn key(keys: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(keys).prop_map(String::from),
        1 => ".{0,8}",
    ]
    .boxed()
}
