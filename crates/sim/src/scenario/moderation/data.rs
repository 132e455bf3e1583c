//! The moderation demo's data: the tweets (read and checked) and the order the stream
//! brings them in, the held-out family last.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{LABELS, TERM_FAMILY};
use crate::Error;
use crate::rng::Rng;

/// One tweet (`{id, text, label, votes}` per JSON line).
#[derive(Debug, Clone, Deserialize)]
pub struct Tweet {
    pub id: String,
    pub text: String,
    pub label: String,
    /// Crowd votes per label.
    pub votes: BTreeMap<String, u32>,
}

/// The tweets, read and checked; only the first `limit` with one.
pub fn read_tweets(path: &Path, limit: Option<usize>) -> Result<Vec<Tweet>, Error> {
    crate::scenario::read_jsonl(
        path,
        limit,
        "a tweet record {id, text, label, votes}",
        "tweets",
        |t: &Tweet| {
            if !LABELS.contains(&t.label.as_str()) {
                return Err(format!("label '{}' is not one of {}", t.label, LABELS.join(", ")));
            }
            if let Some(l) = t.votes.keys().find(|l| !LABELS.contains(&l.as_str())) {
                return Err(format!("a vote for '{l}', not a label"));
            }
            if t.votes.values().sum::<u32>() == 0 {
                return Err("no votes".to_string());
            }
            Ok(())
        },
    )
}

/// Whether a tweet belongs to the held-out family: a word (a run of letters) starting
/// with [`TERM_FAMILY`].
pub fn in_family(text: &str) -> bool {
    text.split(|c: char| !c.is_alphabetic()).any(|w| {
        w.get(..TERM_FAMILY.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(TERM_FAMILY))
    })
}

/// Whether every voter gave the tweet its label.
pub(super) fn unanimous(t: &Tweet) -> bool {
    t.votes.values().filter(|v| **v > 0).count() == 1
}

/// The order of the stream: the tweets outside the family shuffled, the first half of
/// the stream from them alone, then the family's tweets (shuffled) as one in three of the
/// tweets that follow, until they are spent.
pub fn stream_order(tweets: &[Tweet], seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed ^ 0x005E_ED0F_0DE5);
    let shuffle = |mut v: Vec<usize>, rng: &mut Rng| {
        for i in (1..v.len()).rev() {
            v.swap(i, rng.below(i + 1));
        }
        v
    };
    let (family, regular): (Vec<usize>, Vec<usize>) = (0..tweets.len()).partition(|&i| in_family(&tweets[i].text));
    let regular = shuffle(regular, &mut rng);
    let family = shuffle(family, &mut rng);
    let half = (tweets.len() / 2).min(regular.len());
    let mut order = regular[..half].to_vec();
    let (mut r, mut f) = (regular[half..].iter(), family.iter());
    loop {
        let mut any = false;
        for _ in 0..2 {
            if let Some(&i) = r.next() {
                order.push(i);
                any = true;
            }
        }
        if let Some(&i) = f.next() {
            order.push(i);
            any = true;
        }
        if !any {
            return order;
        }
    }
}

/// A tweet for tests, its votes in [`LABELS`] order.
#[cfg(test)]
pub(super) fn tweet(id: &str, text: &str, label: &str, votes: [u32; 3]) -> Tweet {
    Tweet {
        id: id.into(),
        text: text.into(),
        label: label.into(),
        votes: LABELS.iter().map(|l| l.to_string()).zip(votes).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_is_words_starting_with_the_prefix() {
        assert!(in_family("you FAGGOT"));
        assert!(in_family("fags."));
        assert!(!in_family("leafage and befag"));
        assert!(!in_family("fa g"));
        assert!(!in_family("fäg é"), "a prefix cut inside a character is no match");
    }

    #[test]
    fn the_family_arrives_after_the_middle_one_in_three() {
        let tweets: Vec<Tweet> = (0..30)
            .map(|i| {
                let text = if i % 5 == 0 {
                    format!("fagx {i}")
                } else {
                    format!("t {i}")
                };
                tweet(&format!("{i}"), &text, "neither", [0, 0, 3])
            })
            .collect();
        let order = stream_order(&tweets, 7);
        assert_eq!(order, stream_order(&tweets, 7), "seeded");
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..30).collect::<Vec<_>>(), "every tweet once");
        let family: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, i)| *i % 5 == 0)
            .map(|(p, _)| p)
            .collect();
        // Fifteen regular tweets, then two regular to one of the family's until both run out.
        assert_eq!(family, vec![17, 20, 23, 26, 28, 29]);
    }
}
