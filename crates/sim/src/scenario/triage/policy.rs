//! The triage policy: prevent, detect, and the routes that let a nurse correct.
//!
//! Rules, first match wins:
//!
//! 1. `distress` — a distress keyword ([`DISTRESS`]) in the message, not negated: the
//!    `nurse` queue, top priority ([`DISTRESS_PRIORITY`]), a 5-minute SLA.
//! 2. `vitals_red` — a vital sign past a red line ([`VITALS_RED`]): the `nurse` queue, the
//!    same SLA, just below distress.
//! 3. `conflict` — the conflicting-outcomes check ([`conflict`]): the model, the keyword
//!    rules and the vital signs do not agree on whether the message is acute: review.
//! 4. `suggests_emergency` — the model gives `emergency` any real weight
//!    ([`EMERGENCY_SCORE`]) or its top label: the `nurse` queue. Nothing suggesting an
//!    emergency is ever automated (with rules 1 and 2).
//! 5. `calibrated` — auto, only for a non-emergency label at or above its threshold,
//!    calibrated to [`TARGET_PRECISION`].
//! 6. `review` — everything else to the `triage` queue, for two nurses (a split goes to a
//!    third, one tier up). Two answers are what lets calibration reach 0.995: a nurse right
//!    97% of the time mislabels 3% of messages, which no single-answer label can tell
//!    from a model error; the share of split pairs measures the nurses' error rate, and
//!    `account_for_label_noise` corrects the evidence for it.
//!
//! Keywords are matched with CEL's `matches` (RE2 syntax, no look-behind), so negation is a
//! second pattern: a keyword counts unless a negation ("no", "not", "never had",
//! "without", "denies") stands right before it, or before a short list joined by "or" /
//! "and" that ends in it ("no chest pain or shortness of breath"). "no fever but chest
//! pain" still escalates. Self-harm is never read as negated: "no thoughts of harming
//! myself" goes to a nurse, because a false alarm costs minutes and a miss a life.

use serde_json::{Value, json};

/// A distress keyword group: a name, its pattern, and whether a negation before it cancels it.
pub struct Keyword {
    pub name: &'static str,
    pub pattern: &'static str,
    pub negatable: bool,
}

/// The documented distress keywords: any of them, not negated, escalates at once.
pub const DISTRESS: &[Keyword] = &[
    Keyword {
        name: "chest pain",
        pattern: "chest pain|chest tightness|crushing chest|tightness in my chest|pressure in my chest",
        negatable: true,
    },
    Keyword {
        name: "breathing",
        pattern: "can'?t breathe|cannot breathe|struggling to breathe|gasping|short(ness)? of breath|trouble breathing",
        negatable: true,
    },
    Keyword {
        name: "stroke",
        pattern: "face (is )?drooping|slurred speech|weakness on one side",
        negatable: true,
    },
    Keyword {
        name: "self-harm",
        pattern: "suicid|kill myself|end(ing)? my life|harm(ing)? myself|self[- ]harm",
        negatable: false,
    },
    Keyword {
        name: "overdose",
        pattern: "overdose|bottle of pills",
        negatable: false,
    },
    Keyword {
        name: "seizure",
        pattern: "seizure|a fit that",
        negatable: true,
    },
    Keyword {
        name: "bleeding",
        pattern: "bleeding that won'?t stop|coughing up blood|vomiting blood",
        negatable: true,
    },
    Keyword {
        name: "anaphylaxis",
        pattern: "throat swelling|lips swelling|tongue swelling",
        negatable: true,
    },
    Keyword {
        name: "unconscious",
        pattern: "passed out|unconscious|can'?t wake",
        negatable: true,
    },
];

/// Words of acute but not emergency illness: the keyword rules' "acute" without distress.
pub const ACUTE: &str = "fever|temperature of|vomiting|throwing up|keep fluids down|stitches|pus |discharge|asthma|inhaler every|swollen|infected|red streaks|migraine|blood in|painful urination|burning when";

/// Red lines on vital signs: past one, a nurse sees the message at once.
pub const VITALS_RED: &str = "(has(attributes.heart_rate) && (attributes.heart_rate > 130 || attributes.heart_rate < 40)) \
|| (has(attributes.spo2) && attributes.spo2 < 90) || (has(attributes.systolic_bp) && attributes.systolic_bp < 90) \
|| (has(attributes.temp_c) && attributes.temp_c >= 40.0)";

/// Amber: vital signs of an acute illness (the second signal of the conflict check).
pub const VITALS_AMBER: &str =
    "attributes.heart_rate > 105 || attributes.spo2 < 94 || attributes.temp_c >= 38.0 || attributes.systolic_bp < 100";

/// Thresholds are calibrated to this precision for the non-emergency labels.
pub const TARGET_PRECISION: f64 = 0.995;
/// At or above this `emergency` score the model "suggests an emergency".
pub const EMERGENCY_SCORE: f64 = 0.05;
/// Distress escalations' priority and SLA.
pub const DISTRESS_PRIORITY: i32 = 100;
pub const DISTRESS_SLA_SECONDS: u32 = 300;

/// The negation that may stand before a keyword: a negation word, optionally "any", and
/// optionally one or two words followed by "or"/"and" (a list that ends in the keyword).
const NEGATION: &str = "(^|[^a-z])(no|not|never had|without|denies) (any )?(([a-z']+ ){1,2}(or|and) )?";

/// `s` as a CEL double-quoted string literal.
fn cel_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// CEL: keyword group `k` holds in the message.
fn keyword_cel(k: &Keyword) -> String {
    let hit = format!("payload.text.matches({})", cel_str(&format!("(?i)({})", k.pattern)));
    if k.negatable {
        let negated = format!(
            "payload.text.matches({})",
            cel_str(&format!("(?i){NEGATION}({})", k.pattern))
        );
        format!("({hit} && !{negated})")
    } else {
        hit
    }
}

/// CEL: some distress keyword holds.
pub fn distress_cel() -> String {
    DISTRESS.iter().map(keyword_cel).collect::<Vec<_>>().join(" || ")
}

/// The three signals of the conflict check, each "acute" or not. `vitals` is `None` when
/// the message came without readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signals {
    /// The model's top label is `urgent` or `emergency`.
    pub model: bool,
    /// A distress or acute keyword holds.
    pub keywords: bool,
    /// A vital sign is amber or red.
    pub vitals: Option<bool>,
}

/// The conflicting-outcomes check: the signals that are known do not all agree.
pub fn conflict(s: Signals) -> bool {
    s.model != s.keywords || s.vitals.is_some_and(|v| v != s.model)
}

/// CEL of [`conflict`], for the rule after `distress` and `vitals_red` (distress keywords
/// no longer hold there, so the keyword signal is the acute words).
pub fn conflict_cel() -> String {
    let model = "(label == 'urgent' || label == 'emergency')";
    let keywords = format!("payload.text.matches({})", cel_str(&format!("(?i)({ACUTE})")));
    let vitals = format!("({VITALS_AMBER})");
    format!("({model} != {keywords}) || (has(attributes.heart_rate) && {model} != {vitals})")
}

/// The triage policy.
pub fn policy() -> Value {
    json!({
        "rules": [
            {"name": "distress", "when": distress_cel(), "action": "review", "queue": "nurse",
             "priority": DISTRESS_PRIORITY, "sla_seconds": DISTRESS_SLA_SECONDS},
            {"name": "vitals_red", "when": VITALS_RED, "action": "review", "queue": "nurse",
             "priority": DISTRESS_PRIORITY - 10, "sla_seconds": DISTRESS_SLA_SECONDS},
            {"name": "conflict", "when": conflict_cel(), "action": "review", "queue": "triage", "priority": 20},
            {"name": "suggests_emergency",
             "when": format!("label == 'emergency' || scores['emergency'] >= {EMERGENCY_SCORE}"),
             "action": "review", "queue": "nurse", "priority": 50, "sla_seconds": 900},
            {"name": "calibrated",
             "when": "label != 'emergency' && label in thresholds && confidence >= thresholds[label]",
             "action": "auto"},
            {"name": "review", "when": "true", "action": "review", "queue": "triage", "overlap": 2}
        ],
        "lease_seconds": 900,
        "show_suggestion": true,
        "sla_seconds": {"triage": 14_400},
        "consensus": {"method": "majority", "max_overlap": 2},
        "model": {"enabled": true, "bits": 18, "retrain": "weekly"},
        "thresholds": {"target_precision": TARGET_PRECISION, "min_evidence": 200, "account_for_label_noise": true},
        "monitors": {"disagreement_rate": 0.3, "distress_rate": 0.12, "window": 200},
        "workbench": {"failure_categories": super::messages::FAILURE_CATEGORIES}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The conflict check on a hand-made table: (model, keywords, vitals) → conflict.
    #[test]
    fn conflict_on_a_table_of_cases() {
        let s = |model, keywords, vitals| Signals {
            model,
            keywords,
            vitals,
        };
        let table = [
            (s(false, false, None), false),
            (s(true, true, None), false),
            (s(false, false, Some(false)), false),
            (s(true, true, Some(true)), false),
            (s(true, false, None), true),
            (s(false, true, None), true),
            (s(false, false, Some(true)), true),
            (s(true, true, Some(false)), true),
            (s(true, false, Some(true)), true),
            (s(false, true, Some(false)), true),
        ];
        for (signals, want) in table {
            assert_eq!(conflict(signals), want, "{signals:?}");
        }
    }

    #[test]
    fn cel_strings_are_escaped() {
        assert_eq!(cel_str(r#"a"b\c"#), r#""a\"b\\c""#);
        assert!(distress_cel().contains("(?i)"));
    }
}
