//! Novelty: how far an item lies from what the built-in model was trained on, in [0, 1].
//!
//! The method: the share of the item's hashed feature vector that falls on slots training
//! never touched. The featurizer L2-normalises an item's features, so `Σ v² = 1`, and
//! novelty is `Σ v²` over the untouched slots — each feature weighted as the model weighs
//! it when it scores the item. A text made only of words and character n-grams the model
//! has learned from scores 0; a text of nothing but new words scores near 1 (its shape
//! features — length, digits, case — are seldom new).
//!
//! Why this and not a distance to the training data: it needs nothing beyond what the
//! model already keeps (a slot is "touched" when its AdaGrad accumulators are non-zero,
//! [`OnlineModel::trained`]), so it costs one look-up per feature, is exact rather than a
//! sample of the data, and survives snapshots without a new format. It is blind to what a
//! hash collision hides (a new n-gram on a slot a different one trained); with the
//! default 2^18 slots and tweet-length texts that understates novelty a little, never
//! overstates it. What it says is "the model has no evidence about these words", which is
//! exactly when its confidence means least — a new kind of content can be scored
//! confidently on the strength of the few familiar words it carries.
//!
//! A model that has learned from fewer than [`MIN_EXAMPLES`] examples reports none: to it
//! everything is new, and routing on that would send the whole cold start to experts.

use crate::learn::OnlineModel;

/// The examples a model must have learned from before it reports novelty.
pub const MIN_EXAMPLES: u64 = 500;

/// The novelty of an item with `features` (from the model's featurizer) to `model`, or
/// `None` while the model has learned from fewer than [`MIN_EXAMPLES`] examples.
pub fn of(model: &OnlineModel, features: &[(u32, f32)]) -> Option<f64> {
    (model.examples_seen() >= MIN_EXAMPLES).then(|| share_untrained(model, features))
}

/// The share of `features`' squared norm on slots `model` was never trained on (0 for no
/// features). Deterministic: a pure function of the model and the features.
pub fn share_untrained(model: &OnlineModel, features: &[(u32, f32)]) -> f64 {
    let (mut total, mut new) = (0.0f64, 0.0f64);
    for &(slot, v) in features {
        let w = f64::from(v) * f64::from(v);
        total += w;
        if !model.trained(slot) {
            new += w;
        }
    }
    if total > 0.0 {
        (new / total).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::Featurizer;
    use serde_json::json;

    fn features(f: &Featurizer, text: &str) -> Vec<(u32, f32)> {
        f.features(&json!({ "text": text }), &json!({}))
    }

    fn trained(f: &Featurizer, texts: &[&str]) -> OnlineModel {
        let mut m = OnlineModel::new(vec!["a".into(), "b".into()], f.bits);
        for (i, t) in texts.iter().enumerate() {
            m.update(&features(f, t), i % 2);
        }
        m
    }

    const SEEN: &[&str] = &[
        "the cat sat on the mat",
        "a dog barked at the postman",
        "we went to the market on sunday",
        "the weather is lovely today",
    ];

    #[test]
    fn unseen_text_is_more_novel_than_seen_text() {
        let f = Featurizer::new(20);
        let m = trained(&f, SEEN);
        let seen = share_untrained(&m, &features(&f, SEEN[0]));
        let near = share_untrained(&m, &features(&f, "the cat sat on the dog"));
        let unseen = share_untrained(&m, &features(&f, "quantum chromodynamics xylophone zeppelin"));
        assert_eq!(seen, 0.0, "every feature of a trained text was trained");
        assert!(near > seen && near < unseen, "{seen} < {near} < {unseen}");
        assert!(unseen > 0.8, "{unseen}");
        // An untrained model has seen nothing.
        let cold = OnlineModel::new(vec!["a".into(), "b".into()], 20);
        assert_eq!(share_untrained(&cold, &features(&f, SEEN[0])), 1.0);
        assert_eq!(share_untrained(&m, &[]), 0.0);
    }

    #[test]
    fn deterministic_and_kept_by_snapshots() {
        let f = Featurizer::new(18);
        let a = trained(&f, SEEN);
        let b = trained(&f, SEEN);
        let reloaded = OnlineModel::from_bytes(&a.to_bytes()).unwrap();
        for text in ["the cat barked", "zebras juggle", SEEN[2]] {
            let x = features(&f, text);
            let n = share_untrained(&a, &x);
            assert_eq!(n.to_bits(), share_untrained(&b, &x).to_bits());
            assert_eq!(n.to_bits(), share_untrained(&reloaded, &x).to_bits());
            assert!((0.0..=1.0).contains(&n));
        }
    }

    #[test]
    fn works_for_one_vs_rest_models() {
        use crate::learn::Output;
        let f = Featurizer::new(18);
        let mut m = OnlineModel::with_output(vec!["a".into(), "b".into()], f.bits, Output::OneVsRest);
        for (i, t) in SEEN.iter().enumerate() {
            // Sets of any size, the empty one included.
            let set: &[usize] = [&[0usize][..], &[0, 1], &[], &[1]][i % 4];
            m.update_set(&features(&f, t), set);
        }
        assert_eq!(share_untrained(&m, &features(&f, SEEN[3])), 0.0);
        let unseen = share_untrained(&m, &features(&f, "quantum chromodynamics xylophone zeppelin"));
        assert!(unseen > 0.8, "{unseen}");
        let reloaded = OnlineModel::from_bytes(&m.to_bytes()).unwrap();
        let x = features(&f, "the cat barked");
        assert_eq!(
            share_untrained(&m, &x).to_bits(),
            share_untrained(&reloaded, &x).to_bits()
        );
    }

    #[test]
    fn none_before_enough_examples() {
        let f = Featurizer::new(16);
        let x = features(&f, "hello there");
        let mut m = OnlineModel::new(vec!["a".into(), "b".into()], 16);
        assert_eq!(of(&m, &x), None);
        for i in 0..MIN_EXAMPLES {
            m.update(&x, (i % 2) as usize);
        }
        assert_eq!(of(&m, &x), Some(0.0));
    }
}
