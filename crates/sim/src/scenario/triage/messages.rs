//! Synthetic patient messages for the triage scenario. No real patient data may be used,
//! so every message is written here from templates, with a seeded [`Rng`].
//!
//! A message is what a patient types into a portal, with what the portal knows about them
//! (`age`) and, when they sent readings from a home device, their vital signs
//! (`heart_rate`, `temp_c`, `spo2`, `systolic_bp`). Its class — `self_care`,
//! `appointment`, `urgent` or `emergency` — is the truth a nurse practitioner would reach;
//! the scenario knows it, the server never sees it.
//!
//! What makes the stream realistic enough to exercise the safety net:
//!
//! - **Varied vocabulary**: each symptom is a concept with several ways patients say it
//!   ("can't breathe", "struggling to breathe", "gasping for air"), put in one of several
//!   openings, durations and closings.
//! - **Negation**: benign messages often rule things out ("no chest pain", "not short of
//!   breath"), so a keyword alone is not a diagnosis.
//! - **Typos**: a share of messages have letters dropped, doubled or swapped.
//! - **Vital signs** agree with the class (an emergency is often tachycardic or hypoxic;
//!   a cold is not), with noise; some messages carry none.
//! - **Hard cases**, each tagged with the failure category a nurse would record if the
//!   model got it wrong ([`Hazard`]): a benign message that mentions a danger word under
//!   negation (`symptom_misinterpretation`), a message too short to judge and without
//!   readings (`missing_context`), a hedged, vague message (`ambiguous_wording`), an
//!   emergency described without its textbook words (`atypical_presentation`), and a danger
//!   word misspelt (`misspelling`).

use serde_json::{Value, json};

use crate::rng::Rng;

/// The classes, least urgent first: a class's index is its acuity.
pub const CLASSES: [&str; 4] = ["self_care", "appointment", "urgent", "emergency"];

/// The failure categories a nurse practitioner records when the model was wrong: one per
/// [`Hazard`], and `other` for a plain mistake.
pub const FAILURE_CATEGORIES: [&str; 6] = [
    "symptom_misinterpretation",
    "missing_context",
    "ambiguous_wording",
    "atypical_presentation",
    "misspelling",
    "other",
];

/// What makes a message hard, named by the failure category it causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hazard {
    SymptomMisinterpretation,
    MissingContext,
    AmbiguousWording,
    AtypicalPresentation,
    Misspelling,
}

impl Hazard {
    pub fn category(self) -> &'static str {
        match self {
            Self::SymptomMisinterpretation => "symptom_misinterpretation",
            Self::MissingContext => "missing_context",
            Self::AmbiguousWording => "ambiguous_wording",
            Self::AtypicalPresentation => "atypical_presentation",
            Self::Misspelling => "misspelling",
        }
    }
}

/// One patient message, with the truth the scenario scores against.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: String,
    pub text: String,
    /// `age`, and the vital signs when the patient sent them.
    pub attributes: Value,
    /// Index into [`CLASSES`].
    pub class: usize,
    pub hazard: Option<Hazard>,
}

impl Message {
    pub fn label(&self) -> &'static str {
        CLASSES[self.class]
    }
}

/// Symptoms by class: each entry is one concept in the ways patients put it.
const SELF_CARE: &[&[&str]] = &[
    &["a runny nose", "a stuffy nose", "a blocked nose and sneezing"],
    &[
        "a sore throat",
        "a scratchy throat",
        "a throat that hurts a bit when I swallow",
    ],
    &["a mild headache", "a dull headache", "a tension headache"],
    &["a small cut on my finger", "a scraped knee", "a paper cut that stings"],
    &["mild sunburn", "a bit of sunburn on my shoulders"],
    &["a dry cough", "a tickly cough", "a bit of a cough"],
    &[
        "itchy eyes from hay fever",
        "seasonal allergies",
        "sneezing from pollen",
    ],
    &[
        "an upset stomach after a big meal",
        "mild indigestion",
        "some heartburn after dinner",
    ],
    &["a stiff neck from sleeping badly", "sore muscles after the gym"],
    &["a cold sore", "chapped lips"],
];
const APPOINTMENT: &[&[&str]] = &[
    &[
        "a rash that won't go away",
        "an itchy rash on my arm for weeks",
        "patches of dry red skin",
    ],
    &["knee pain when I run", "a sore knee going up stairs", "an aching hip"],
    &[
        "an earache on and off",
        "ringing in my ears",
        "muffled hearing in one ear",
    ],
    &["a mole that has changed shape", "a new dark spot on my back"],
    &["trouble sleeping", "insomnia most nights"],
    &["back pain that keeps coming back", "a sore lower back"],
    &[
        "a repeat prescription for my blood pressure tablets",
        "a refill of my inhaler",
    ],
    &["questions about my blood test results", "a follow-up on my cholesterol"],
    &["heavy periods", "irregular periods"],
    &["feeling low for a few weeks", "feeling anxious a lot lately"],
];
const URGENT: &[&[&str]] = &[
    &["a high fever", "a temperature of 39.5", "a fever that won't come down"],
    &[
        "vomiting all day",
        "been throwing up since last night",
        "can't keep fluids down",
    ],
    &["burning when I pee and a fever", "painful urination and back pain"],
    &["a deep cut that needs stitches", "a cut that keeps reopening"],
    &["severe ear pain with discharge", "pus coming out of my ear"],
    &["my asthma getting worse", "needing my inhaler every hour"],
    &["a swollen painful calf", "one leg red, hot and swollen"],
    &["a bad migraine with vomiting", "the worst migraine I've had in years"],
    &["a wound that looks infected", "red streaks spreading from a wound"],
    &["blood in my urine", "dark blood in my stool"],
];
const EMERGENCY: &[&[&str]] = &[
    &[
        "chest pain",
        "crushing chest pain",
        "tightness in my chest spreading to my arm",
    ],
    &[
        "can't breathe",
        "struggling to breathe",
        "gasping for air",
        "shortness of breath at rest",
    ],
    &["my face is drooping", "slurred speech", "sudden weakness on one side"],
    &[
        "thoughts of suicide",
        "wanting to kill myself",
        "thinking about ending my life",
    ],
    &["took an overdose", "swallowed a whole bottle of pills"],
    &["a seizure", "a fit that lasted minutes"],
    &["bleeding that won't stop", "coughing up blood", "vomiting blood"],
    &[
        "my throat swelling after a bee sting",
        "lips swelling and hives after peanuts",
    ],
    &["passed out and can't wake properly", "fainted and hit my head"],
];
/// Emergencies in other words: no textbook danger word, but an emergency all the same.
const ATYPICAL: &[&str] = &[
    "my jaw aches and I feel sick and sweaty, not really pain just pressure",
    "I am suddenly really confused and my words come out wrong",
    "my heart is racing and pounding and I feel like I'm going to faint",
    "I feel very cold and clammy and my lips look blue",
    "I don't see the point anymore and have been giving my things away",
    "my arm went numb and heavy for a few minutes and my vision went blurry",
];
/// Danger words a benign message rules out.
const NEGATED: &[&str] = &[
    "no chest pain",
    "not short of breath",
    "no trouble breathing",
    "no thoughts of harming myself",
    "no bleeding",
    "no chest pain or shortness of breath",
    "never had a seizure",
];
const VAGUE: &[&str] = &[
    "I just feel really off and weird since yesterday, not sure if it's serious or not",
    "something isn't right with my body, hard to describe, maybe it's nothing",
    "feeling strange, kind of dizzy sometimes? might be stress",
    "not myself today, tired and achy and a bit funny, should I worry",
];
const SHORT: &[&str] = &[
    "pain again",
    "same problem as before",
    "it's back",
    "worse today",
    "help with my symptoms",
];
const OPENINGS: &[&str] = &[
    "Hi,",
    "Hello,",
    "Hi there.",
    "Good morning,",
    "",
    "Hey,",
    "Sorry to bother you,",
];
const DURATIONS: &[&str] = &[
    "since this morning",
    "for two days",
    "for about a week",
    "since last night",
    "for a few hours",
    "on and off for a month",
];
const CLOSINGS: &[&str] = &[
    "What should I do?",
    "Is this something to worry about?",
    "Can someone advise?",
    "Thanks.",
    "Do I need to be seen?",
    "",
];

/// Writes `n` messages from `seed`: the same seed gives the same messages.
pub fn generate(seed: u64, n: usize) -> Vec<Message> {
    let mut rng = Rng::new(seed ^ 0x7412_a6e5_0b1d_c3f9);
    (0..n).map(|i| message(&mut rng, i)).collect()
}

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len())]
}

fn symptom(rng: &mut Rng, concepts: &[&[&str]]) -> String {
    let concept = concepts[rng.below(concepts.len())];
    pick(rng, concept).to_string()
}

/// One message: its class (self-care 40%, appointment 30%, urgent 22%, emergency 8%), then
/// perhaps a hazard, the text, typos and the attributes.
fn message(rng: &mut Rng, i: usize) -> Message {
    let u = rng.unit();
    let class = if u < 0.40 {
        0
    } else if u < 0.70 {
        1
    } else if u < 0.92 {
        2
    } else {
        3
    };
    let h = rng.unit();
    let hazard = match class {
        0 | 1 if h < 0.12 => Some(Hazard::SymptomMisinterpretation),
        3 if h < 0.15 => Some(Hazard::AtypicalPresentation),
        3 if h < 0.25 => Some(Hazard::Misspelling),
        _ if h > 0.95 => Some(Hazard::MissingContext),
        1 | 2 if h > 0.88 => Some(Hazard::AmbiguousWording),
        _ => None,
    };
    let concepts = [SELF_CARE, APPOINTMENT, URGENT, EMERGENCY][class];
    let body = match hazard {
        Some(Hazard::MissingContext) => pick(rng, SHORT).to_string(),
        Some(Hazard::AmbiguousWording) => pick(rng, VAGUE).to_string(),
        Some(Hazard::AtypicalPresentation) => pick(rng, ATYPICAL).to_string(),
        Some(Hazard::SymptomMisinterpretation) => format!(
            "I have {} {}, {}",
            symptom(rng, concepts),
            pick(rng, DURATIONS),
            pick(rng, NEGATED)
        ),
        Some(Hazard::Misspelling) => {
            let s = symptom(rng, concepts);
            format!("I have {} {}", misspell(rng, &s), pick(rng, DURATIONS))
        }
        None => {
            let mut s = match rng.below(4) {
                0 => format!("I have {} {}.", symptom(rng, concepts), pick(rng, DURATIONS)),
                1 => format!("I've had {} {}.", symptom(rng, concepts), pick(rng, DURATIONS)),
                2 => format!(
                    "My problem is {}, started {}.",
                    symptom(rng, concepts),
                    pick(rng, DURATIONS)
                ),
                _ => format!("Writing about {}.", symptom(rng, concepts)),
            };
            if rng.chance(0.3) {
                s.push_str(&format!(" Also {}.", symptom(rng, concepts)));
            }
            // Benign messages often rule the worst out.
            if class < 2 && rng.chance(0.15) {
                s.push_str(&format!(" {}.", capitalise(pick(rng, NEGATED))));
            }
            s
        }
    };
    let mut text = [pick(rng, OPENINGS), &body, pick(rng, CLOSINGS)]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if hazard != Some(Hazard::Misspelling) && rng.chance(0.2) {
        text = typos(rng, &text, 0.06);
    }
    let attributes = attributes(rng, class, hazard);
    Message {
        id: format!("msg-{i:06}"),
        text,
        attributes,
        class,
        hazard,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// One typo in each word of `s`.
fn misspell(rng: &mut Rng, s: &str) -> String {
    s.split(' ').map(|w| typo(rng, w)).collect::<Vec<_>>().join(" ")
}

/// Typos in a share `p` of the words of `s`.
fn typos(rng: &mut Rng, s: &str, p: f64) -> String {
    s.split(' ')
        .map(|w| if rng.chance(p) { typo(rng, w) } else { w.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A letter dropped, doubled, or two swapped (words of four letters or more).
fn typo(rng: &mut Rng, w: &str) -> String {
    let mut c: Vec<char> = w.chars().collect();
    if c.len() < 4 || !c.iter().all(|x| x.is_alphabetic()) {
        return w.to_string();
    }
    let i = 1 + rng.below(c.len() - 2);
    match rng.below(3) {
        0 => {
            c.remove(i);
        }
        1 => c.insert(i, c[i]),
        _ => c.swap(i, i + 1),
    }
    c.into_iter().collect()
}

/// Age and vital signs. Vitals come with 70% of messages, none with `missing_context`;
/// their means move with acuity, an emergency's toward danger (an atypical one always has
/// a reading out of range: that is how it gets caught).
fn attributes(rng: &mut Rng, class: usize, hazard: Option<Hazard>) -> Value {
    let age = match class {
        3 => 35 + rng.below(55),
        _ => 2 + rng.below(85),
    };
    let mut a = json!({ "age": age });
    let atypical = hazard == Some(Hazard::AtypicalPresentation);
    if hazard == Some(Hazard::MissingContext) || (!atypical && !rng.chance(0.7)) {
        return a;
    }
    let noise = |rng: &mut Rng, sd: f64| (rng.unit() + rng.unit() + rng.unit() - 1.5) * 2.0 * sd;
    let (hr, temp, spo2, bp) = match class {
        0 => (75.0, 36.8, 98.0, 122.0),
        1 => (78.0, 36.9, 97.5, 126.0),
        2 => (96.0, 38.4, 96.0, 124.0),
        _ => (118.0, 37.4, 92.0, 112.0),
    };
    let mut heart_rate = (hr + noise(rng, 9.0)).round();
    let mut spo2 = (spo2 + noise(rng, 1.5)).round().min(100.0);
    if atypical {
        // Tachycardic or hypoxic, past the vital-sign rule's line.
        if rng.chance(0.5) {
            heart_rate = 132.0 + rng.below(25) as f64;
        } else {
            spo2 = 86.0 + rng.below(4) as f64;
        }
    }
    a["heart_rate"] = json!(heart_rate);
    a["temp_c"] = json!(((temp + noise(rng, 0.4)) * 10.0_f64).round() / 10.0);
    a["spo2"] = json!(spo2);
    a["systolic_bp"] = json!((bp + noise(rng, 12.0)).round());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_writes_the_same_messages() {
        let a = generate(7, 500);
        assert_eq!(a, generate(7, 500));
        assert_ne!(a, generate(8, 500));
        assert_eq!(a[..100], generate(7, 100)[..], "a prefix does not depend on the count");
    }

    #[test]
    fn the_stream_has_every_class_hazard_and_some_variety() {
        let ms = generate(1, 4000);
        for c in 0..4 {
            let share = ms.iter().filter(|m| m.class == c).count() as f64 / ms.len() as f64;
            assert!(share > 0.05, "class {c}: {share}");
        }
        for h in [
            Hazard::SymptomMisinterpretation,
            Hazard::MissingContext,
            Hazard::AmbiguousWording,
            Hazard::AtypicalPresentation,
            Hazard::Misspelling,
        ] {
            assert!(ms.iter().any(|m| m.hazard == Some(h)), "{h:?}");
            assert!(FAILURE_CATEGORIES.contains(&h.category()));
        }
        let distinct: std::collections::HashSet<&str> = ms.iter().map(|m| m.text.as_str()).collect();
        assert!(distinct.len() > 2000, "{} distinct texts", distinct.len());
        assert!(ms.iter().any(|m| m.text.contains("no chest pain")));
        assert!(ms.iter().any(|m| m.attributes.get("heart_rate").is_none()));
        // An atypical emergency always carries a reading out of range.
        for m in ms.iter().filter(|m| m.hazard == Some(Hazard::AtypicalPresentation)) {
            let hr = m.attributes["heart_rate"].as_f64().unwrap();
            let spo2 = m.attributes["spo2"].as_f64().unwrap();
            assert!(hr > 130.0 || spo2 < 90.0, "{m:?}");
        }
    }
}
