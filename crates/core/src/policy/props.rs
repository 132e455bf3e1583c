//! Property tests of a policy from JSON to decisions: arbitrary rules (names, CEL `when`
//! strings from a small grammar and from arbitrary text, actions, labels, routes, numbers)
//! are either compiled or refused with a [`ValidationError`] naming a field — never a
//! panic — and a compiled policy decides arbitrary items (payloads, attributes,
//! predictions) without panicking, with an outcome the project can hold.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{ItemView, Outcome, Policy};
use crate::{LabelSet, Prediction};

fn labels() -> LabelSet {
    LabelSet::parse(&["ham".into(), "spam".into()]).unwrap()
}

const KEYS: &[&str] = &["text", "n", "vip", "tags", "spam"];

/// Any JSON value, a few levels deep.
fn json_value() -> BoxedStrategy<Value> {
    crate::arbitrary::json_value(3, 32, KEYS)
}

fn key() -> BoxedStrategy<String> {
    crate::arbitrary::key(KEYS)
}

/// A CEL expression from a small grammar over the policy's variables: well-typed or not,
/// the checker and the evaluator must cope.
fn cel() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        prop_oneof![
            Just("confidence"),
            Just("margin"),
            Just("entropy"),
            Just("novelty"),
            Just("has_prediction"),
            Just("label"),
            Just("model"),
            Just("payload"),
            Just("payload.text"),
            Just("payload.n"),
            Just("payload.tags"),
            Just("attributes.vip"),
            Just("scores.spam"),
            Just("scores['ham']"),
            Just("thresholds.spam"),
            Just("true"),
            Just("false"),
            Just("null"),
            Just("[]"),
            Just("{}"),
            Just("undefined_name"),
        ]
        .prop_map(String::from),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[a-z ]{0,6}".prop_map(|s| format!("'{s}'")),
        proptest::collection::vec(-3i64..100, 0..4)
            .prop_map(|v| format!("[{}]", v.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))),
    ];
    atom.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), binary_op(), inner.clone()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("!{a}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.clone().prop_map(|a| format!("size({a})")),
            inner.clone().prop_map(|a| format!("int({a})")),
            inner.clone().prop_map(|a| format!("string({a})")),
            inner.clone().prop_map(|a| format!("double({a})")),
            inner.clone().prop_map(|a| format!("{a}.matches('(?i)x+')")),
            inner.clone().prop_map(|a| format!("{a}.contains('a')")),
            inner.clone().prop_map(|a| format!("has({a}.vip)")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| format!("{a} ? {b} : {c}")),
            (inner.clone(), comprehension(), inner.clone())
                .prop_map(|(range, f, body)| format!("{range}.{f}(x, {body})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}[{b}]")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a} in {b}")),
        ]
    })
}

fn binary_op() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("&&"),
        Just("||"),
        Just("=="),
        Just("!="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">="),
        Just("+"),
        Just("-"),
        Just("*"),
        Just("/"),
        Just("%"),
    ]
}

fn comprehension() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("all"),
        Just("exists"),
        Just("exists_one"),
        Just("map"),
        Just("filter")
    ]
}

/// A `when`: from the grammar, or arbitrary text (most of which does not parse).
fn when() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => cel(),
        1 => ".{0,40}",
        1 => "[a-z_ .()&|!<>=0-9'\\[\\],+*/%-]{0,40}",
    ]
}

/// A name: mostly the shapes the server's names take, sometimes anything.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-z][a-z0-9_-]{0,12}", 1 => ".{0,20}"]
}

/// A small integer or any JSON number (out-of-range tiers, priorities and overlaps too).
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (-2i64..12).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        1 => ".{0,4}".prop_map(Value::from),
    ]
}

fn rule() -> impl Strategy<Value = Value> {
    let action = prop_oneof![
        4 => Just(json!("review")),
        4 => Just(json!("auto")),
        1 => json_value(),
    ];
    let label = proptest::option::of(prop_oneof![
        3 => prop_oneof![Just("ham"), Just("spam")].prop_map(Value::from),
        1 => json_value(),
    ]);
    let queue = proptest::option::of(name().prop_map(Value::from));
    let route = (
        proptest::option::of(number()),
        proptest::option::of(number()),
        proptest::option::of(number()),
        proptest::option::of(number()),
    );
    (
        name(),
        when(),
        action,
        label,
        queue,
        route,
        proptest::option::of((key(), json_value())),
    )
        .prop_map(
            |(name, when, action, label, queue, (tier, priority, overlap, sla), extra)| {
                let mut r = json!({"name": name, "when": when, "action": action});
                let fields = [
                    ("label", label),
                    ("queue", queue),
                    ("tier", tier),
                    ("priority", priority),
                    ("overlap", overlap),
                    ("sla_seconds", sla),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        r[k] = v;
                    }
                }
                if let Some((k, v)) = extra {
                    r[k] = v;
                }
                r
            },
        )
}

fn policy() -> impl Strategy<Value = Value> {
    let top = (
        proptest::option::of(prop_oneof![(0.0f64..=1.0).prop_map(Value::from), number()]),
        proptest::option::of(number()),
        proptest::option::of(json_value()),
        proptest::option::of((key(), json_value())),
    );
    prop_oneof![
        12 => (proptest::collection::vec(rule(), 0..5), top).prop_map(|(rules, (audit_rate, lease, suggestion, extra))| {
            let mut p = json!({"rules": rules});
            if let Some(v) = audit_rate {
                p["audit_rate"] = v;
            }
            if let Some(v) = lease {
                p["lease_seconds"] = v;
            }
            if let Some(v) = suggestion {
                p["show_suggestion"] = v;
            }
            if let Some((k, v)) = extra {
                p[k] = v;
            }
            p
        }),
        1 => json_value(),
    ]
}

fn prediction() -> impl Strategy<Value = Option<Prediction>> {
    proptest::option::of(
        (0.0f64..=1.0, proptest::option::of(0.0f64..=1.0)).prop_map(|(spam, novelty)| Prediction {
            model: "m".into(),
            version: None,
            scores: vec![("ham".into(), 1.0 - spam), ("spam".into(), spam)],
            novelty,
        }),
    )
}

/// A policy whose every rule has a `when` from the grammar and a valid route, so most
/// compile and the decisions are exercised.
fn compiling_policy() -> impl Strategy<Value = Value> {
    let rule = (
        "[a-z][a-z0-9_]{0,8}",
        cel(),
        any::<bool>(),
        proptest::option::of(prop_oneof![Just("ham"), Just("spam")]),
        1u8..=9,
    )
        .prop_map(|(name, when, auto, label, tier)| {
            if auto {
                match label {
                    Some(l) => json!({"name": name, "when": when, "action": "auto", "label": l}),
                    None => json!({"name": name, "when": when, "action": "auto"}),
                }
            } else {
                json!({"name": name, "when": when, "action": "review", "queue": "q", "tier": tier})
            }
        });
    (proptest::collection::vec(rule, 1..5), 0.0f64..=1.0)
        .prop_map(|(rules, audit_rate)| json!({"rules": rules, "audit_rate": audit_rate}))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_policy_compiles_or_is_refused_naming_a_field(p in policy()) {
        if let Err(e) = Policy::from_json(&p, &labels()) {
            // A policy that is not an object is refused whole: the empty field, which the
            // request names (`policy`). Any other refusal names a field within it.
            prop_assert!(!e.field.is_empty() || !p.is_object(), "refusal without a field: {e:?} for {p}");
            prop_assert_eq!(e.clone().within("policy").field.is_empty(), false);
            prop_assert!(!e.message.is_empty(), "refusal without a message: {e:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_compiled_policy_decides_any_item(
        p in compiling_policy(),
        payload in json_value(),
        attributes in json_value(),
        prediction in prediction(),
        draw in 0.0f64..1.0,
    ) {
        let labels = labels();
        match Policy::from_json(&p, &labels) {
            Err(e) => prop_assert!(!e.field.is_empty(), "refusal without a field: {e:?} for {p}"),
            Ok(policy) => {
                let thresholds = std::collections::HashMap::from([("spam".to_string(), 0.9)]);
                let item = ItemView {
                    payload: &payload,
                    attributes: &attributes,
                    prediction: prediction.as_ref(),
                    thresholds: Some(&thresholds),
                };
                let d = policy.decide(&item, 7, draw);
                prop_assert_eq!(d.policy_version, 7);
                prop_assert!(!d.reasons.is_empty());
                match d.outcome {
                    Outcome::Auto { label } => prop_assert!(labels.contains(&label), "auto label {label} not a label"),
                    Outcome::Review { route } => prop_assert!((1..=9).contains(&route.tier)),
                }
            }
        }
    }
}
