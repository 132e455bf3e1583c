//! A seeded stream of card transactions, with fraud in named patterns.
//!
//! **The population.** [`Spec::cards`] cards, each with its own habits drawn once from the
//! seed: a home country (and its currency), a typical amount (log-normal, median ~$30,
//! some cards spend far more), three favourite merchant categories, a share of online
//! purchases, whether its owner shops at night, how often it is used, how old it is, and
//! how likely its owner is to travel. A travelling card spends abroad for a day or two,
//! in the local currency, at travel-like merchants (a fifth of them hotel bills and tours
//! of four to twelve times the usual amount) — a legitimate country mismatch. Few owners
//! travel in the history (3%); the stream is the **holiday season**, in which a quarter
//! do: the rules' country mismatch fires on honest purchases the history's model has
//! rarely seen, the false positives investigators' findings must clear.
//! Legitimate purchases follow the day: few at night, most in the afternoon. About one in
//! a hundred is a big-ticket buy (five to twenty times the card's usual amount), and one in
//! seventy comes from a new phone or browser: the honest sources of false alarms.
//!
//! **The attributes** a fraud team reads, computed in time order per card so that the
//! velocity and distance are what a real scorer would see: `amount`, `currency`, `mcc`
//! (merchant category), `channel` (`pos` or `online`), `country`, `home_country`,
//! `country_mismatch`, `hour` (0–23), `card_age_days`, `tx_last_hour` and `tx_last_day`
//! (earlier transactions of the card), `new_device`, `distance_km` (from the card's last
//! transaction, on a flat map of the countries).
//!
//! **Fraud**, ~1% of transactions before the drift, in named patterns ([`Pattern`]):
//! - `card_testing`: a burst of three to eight tiny online charges (0.50–4.99) at
//!   digital-goods merchants a minute apart, mostly from a new device — velocity;
//! - `account_takeover`: a new device far from the card's last place buys electronics or
//!   jewellery online for eight to twenty-five times the card's usual amount;
//! - `cross_border`: a cloned card used in person abroad (ATM, electronics, jewellery) for
//!   five to fifteen times the usual amount, while its owner is at home.
//!
//! **The drift.** From [`Spec::drift_hour`] a new pattern, `gift_card_drain`, adds ~0.7%
//! of transactions: a fraudster inside the owner's own session (a known device, at home,
//! no country mismatch) buys gift cards online in round amounts of 150–450 — under the
//! amount, velocity and country rules, and at a merchant category the history has seen
//! only rarely (honest gift cards: small, in person). Neither the rules nor the model
//! trained on the history have seen it.
//!
//! Everything is a function of the [`Spec`]: the same spec gives the same transactions,
//! in the same order, with the same ids.

use std::collections::VecDeque;

use serde_json::{Value, json};

use crate::rng::Rng;

/// How a fraudulent transaction was made; `None` on a [`Transaction`] is legitimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pattern {
    CardTesting,
    AccountTakeover,
    CrossBorder,
    /// The pattern that starts at the drift.
    GiftCardDrain,
}

impl Pattern {
    /// The patterns the history (and so the rules and the model) know.
    pub const KNOWN: [Pattern; 3] = [Pattern::CardTesting, Pattern::AccountTakeover, Pattern::CrossBorder];

    pub fn name(self) -> &'static str {
        match self {
            Pattern::CardTesting => "card_testing",
            Pattern::AccountTakeover => "account_takeover",
            Pattern::CrossBorder => "cross_border",
            Pattern::GiftCardDrain => "gift_card_drain",
        }
    }

    /// Whether this is the pattern nobody has seen before the drift.
    pub fn is_new(self) -> bool {
        self == Pattern::GiftCardDrain
    }
}

/// The stream's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub seed: u64,
    pub cards: usize,
    /// Hours of labelled history before the stream (known patterns only).
    pub history_hours: u32,
    /// Hours of the stream.
    pub hours: u32,
    /// Transactions per hour on average (the day's shape moves it ±70%).
    pub per_hour: u32,
    /// The stream's hour (from 0) at whose start the new pattern begins.
    pub drift_hour: u32,
    /// The share of transactions that start a known-pattern fraud episode.
    pub fraud_rate: f64,
    /// The share of transactions, from the drift on, that are the new pattern.
    pub new_pattern_rate: f64,
}

impl Spec {
    /// The demo's stream: a day of history, then twelve hours with the drift at hour 4.
    pub fn demo(seed: u64) -> Self {
        Self {
            seed,
            cards: 4_000,
            history_hours: 24,
            hours: 12,
            per_hour: 1_500,
            drift_hour: 4,
            fraud_rate: 0.005,
            new_pattern_rate: 0.007,
        }
    }
}

/// One transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// `tx-<n>`, in time order from 0 (history first).
    pub id: String,
    /// Milliseconds since the start of the history.
    pub at_ms: i64,
    pub card: u32,
    /// What the fraud team's systems see (a JSON object; see the module's list).
    pub attributes: Value,
    /// The truth: how it was made, if it is fraud.
    pub fraud: Option<Pattern>,
}

impl Transaction {
    /// A line for an investigator (and words for the model's text features).
    pub fn text(&self) -> String {
        let a = &self.attributes;
        format!(
            "{} {} {:.2} {} in {}",
            a["channel"].as_str().unwrap_or(""),
            a["mcc"].as_str().unwrap_or(""),
            a["amount"].as_f64().unwrap_or(0.0),
            a["currency"].as_str().unwrap_or(""),
            a["country"].as_str().unwrap_or("")
        )
    }

    /// Hours since the start of the stream (negative in the history).
    pub fn stream_hour(&self, spec: &Spec) -> i64 {
        self.at_ms.div_euclid(HOUR_MS) - i64::from(spec.history_hours)
    }
}

pub const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The history starts at this hour of the day (so that the stream starts at 08:00).
const START_HOUR: i64 = 8;

/// Countries: code, currency, position on a flat map (km), and the chance a card is issued
/// there.
const COUNTRIES: [(&str, &str, f64, f64, f64); 9] = [
    ("US", "USD", 0.0, 0.0, 0.62),
    ("CA", "CAD", 300.0, 1_200.0, 0.10),
    ("GB", "GBP", 5_600.0, 900.0, 0.12),
    ("DE", "EUR", 6_400.0, 700.0, 0.10),
    ("FR", "EUR", 6_100.0, 400.0, 0.06),
    ("MX", "MXN", -1_500.0, -1_600.0, 0.0),
    ("BR", "BRL", 2_500.0, -6_500.0, 0.0),
    ("RO", "RON", 7_600.0, 300.0, 0.0),
    ("NG", "NGN", 7_000.0, -3_800.0, 0.0),
];

/// Merchant categories of everyday spending.
const EVERYDAY: [&str; 8] = [
    "grocery",
    "restaurant",
    "fuel",
    "pharmacy",
    "clothing",
    "online_retail",
    "entertainment",
    "utilities",
];
/// Where travellers spend.
const TRAVEL: [&str; 4] = ["hotel", "restaurant", "transport", "travel_agency"];
/// Big-ticket categories.
const BIG: [&str; 4] = ["electronics", "jewelry", "travel_agency", "furniture"];

/// The relative volume of legitimate transactions by hour of the day.
const DAY_SHAPE: [f64; 24] = [
    0.25, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 1.0, 1.2, 1.3, 1.4, 1.6, 1.5, 1.4, 1.4, 1.5, 1.6, 1.7, 1.6, 1.4, 1.1,
    0.8, 0.5,
];

#[derive(Debug, Clone)]
struct Card {
    home: usize,
    /// Median amount, in the home currency.
    typical: f64,
    favourites: [&'static str; 3],
    online_share: f64,
    night_owl: bool,
    /// Relative use.
    weight: f64,
    age_days: i64,
    travel: f64,
    /// The chance of starting a trip at a purchase in the holiday season (the stream).
    season_travel: f64,
    /// Where the owner is: abroad until this time, in this country.
    trip: Option<(i64, usize)>,
}

/// A transaction before its card's history is known.
#[derive(Debug, Clone)]
struct Raw {
    at_ms: i64,
    card: u32,
    amount: f64,
    mcc: &'static str,
    online: bool,
    /// Where it happened (country index) and where on the map.
    country: usize,
    place: (f64, f64),
    new_device: bool,
    fraud: Option<Pattern>,
}

fn normal(rng: &mut Rng) -> f64 {
    // Box–Muller; `1 - unit` is in (0, 1].
    let (u, v) = (1.0 - rng.unit(), rng.unit());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len())]
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn population(spec: &Spec, rng: &mut Rng) -> Vec<Card> {
    let mut cards = Vec::with_capacity(spec.cards);
    for _ in 0..spec.cards {
        let mut r = rng.unit();
        let mut home = 0;
        for (i, c) in COUNTRIES.iter().enumerate() {
            if r < c.4 {
                home = i;
                break;
            }
            r -= c.4;
        }
        let mut favourites = [""; 3];
        for f in &mut favourites {
            *f = pick(rng, &EVERYDAY);
        }
        let new = rng.chance(0.06);
        cards.push(Card {
            home,
            typical: (3.2 + 0.7 * normal(rng)).exp().clamp(3.0, 2_000.0),
            favourites,
            online_share: 0.1 + 0.4 * rng.unit(),
            night_owl: rng.chance(0.08),
            weight: (0.8 * normal(rng)).exp(),
            age_days: if new {
                1 + rng.below(45) as i64
            } else {
                60 + rng.below(3_600) as i64
            },
            travel: if rng.chance(0.03) {
                0.02 + 0.05 * rng.unit()
            } else {
                0.0
            },
            season_travel: if rng.chance(0.25) {
                0.02 + 0.05 * rng.unit()
            } else {
                0.0
            },
            trip: None,
        });
    }
    cards
}

/// Picks a card by its weight (cumulative weights, binary search).
fn weighted_card(cum: &[f64], rng: &mut Rng) -> usize {
    let total = *cum.last().expect("cards");
    let x = rng.unit() * total;
    cum.partition_point(|&c| c <= x).min(cum.len() - 1)
}

fn home_place(c: &Card, rng: &mut Rng) -> (f64, f64) {
    let h = COUNTRIES[c.home];
    (h.2 + 15.0 * normal(rng), h.3 + 15.0 * normal(rng))
}

fn abroad_place(country: usize, rng: &mut Rng) -> (f64, f64) {
    let h = COUNTRIES[country];
    (h.2 + 30.0 * normal(rng), h.3 + 30.0 * normal(rng))
}

fn foreign(home: usize, rng: &mut Rng) -> usize {
    loop {
        let c = rng.below(COUNTRIES.len());
        if c != home {
            return c;
        }
    }
}

/// The whole stream, history first, in time order. Deterministic per spec.
pub fn generate(spec: &Spec) -> Vec<Transaction> {
    let mut rng = Rng::new(spec.seed ^ 0xF4A0_D000_0000_0001);
    let mut cards = population(spec, &mut rng);
    let mut cum = Vec::with_capacity(cards.len());
    let mut acc = 0.0;
    for c in &cards {
        acc += c.weight;
        cum.push(acc);
    }
    let hours = i64::from(spec.history_hours + spec.hours);
    let mean_shape = DAY_SHAPE.iter().sum::<f64>() / 24.0;
    let mut raw: Vec<Raw> = Vec::new();
    for h in 0..hours {
        let hour_of_day = ((START_HOUR + h) % 24) as usize;
        let n = (f64::from(spec.per_hour) * DAY_SHAPE[hour_of_day] / mean_shape).round() as usize;
        let after_drift = h >= i64::from(spec.history_hours + spec.drift_hour);
        for _ in 0..n {
            let at_ms = h * HOUR_MS + rng.below(HOUR_MS as usize) as i64;
            if rng.chance(spec.fraud_rate) {
                let card = weighted_card(&cum, &mut rng) as u32;
                let pattern = Pattern::KNOWN[rng.below(3)];
                fraud(&cards[card as usize], card, pattern, at_ms, &mut rng, &mut raw);
                continue;
            }
            if after_drift && rng.chance(spec.new_pattern_rate) {
                let card = weighted_card(&cum, &mut rng) as u32;
                fraud(
                    &cards[card as usize],
                    card,
                    Pattern::GiftCardDrain,
                    at_ms,
                    &mut rng,
                    &mut raw,
                );
                continue;
            }
            let card = weighted_card(&cum, &mut rng);
            // Night owls shop at night; everybody else mostly does not.
            let night = hour_of_day < 6;
            if night && !cards[card].night_owl && rng.chance(0.5) {
                continue;
            }
            let season = h >= i64::from(spec.history_hours);
            raw.push(legit(&mut cards[card], card as u32, at_ms, season, &mut rng));
        }
    }
    // A burst drawn late in the last hour may run past the end.
    raw.retain(|r| r.at_ms < hours * HOUR_MS);
    raw.sort_by_key(|r| (r.at_ms, r.card));
    describe(&cards, raw)
}

fn legit(c: &mut Card, card: u32, at_ms: i64, season: bool, rng: &mut Rng) -> Raw {
    if let Some((until, _)) = c.trip
        && until <= at_ms
    {
        c.trip = None;
    }
    let travel = if season {
        c.travel.max(c.season_travel)
    } else {
        c.travel
    };
    if c.trip.is_none() && rng.chance(travel) {
        c.trip = Some((
            at_ms + DAY_MS / 2 + rng.below(DAY_MS as usize * 2) as i64,
            foreign(c.home, rng),
        ));
    }
    let mut amount = c.typical * (0.6 * normal(rng)).exp();
    let (mut mcc, mut online) = (pick(rng, &c.favourites), rng.chance(c.online_share));
    if rng.chance(0.01) {
        amount = c.typical * (5.0 + 15.0 * rng.unit());
        mcc = pick(rng, &BIG);
    } else if rng.chance(0.006) {
        // Honest gift cards: small, bought in person by day.
        amount = [25.0, 50.0, 75.0, 100.0][rng.below(4)];
        mcc = "gift_cards";
        online = false;
    }
    let (country, place) = match c.trip {
        Some((_, abroad)) => {
            online = false;
            if mcc != "gift_cards" && rng.chance(0.7) {
                mcc = pick(rng, &TRAVEL);
                if rng.chance(0.2) {
                    // The hotel bill, the rental car, the tour.
                    amount = c.typical * (4.0 + 8.0 * rng.unit());
                }
            }
            (abroad, abroad_place(abroad, rng))
        }
        None => (c.home, home_place(c, rng)),
    };
    Raw {
        at_ms,
        card,
        amount: cents(amount.max(1.0)),
        mcc,
        online,
        country,
        place,
        new_device: online && rng.chance(0.05),
        fraud: None,
    }
}

fn fraud(c: &Card, card: u32, pattern: Pattern, at_ms: i64, rng: &mut Rng, out: &mut Vec<Raw>) {
    match pattern {
        Pattern::CardTesting => {
            let n = 3 + rng.below(6);
            let far = rng.chance(0.5);
            let country = if far { foreign(c.home, rng) } else { c.home };
            let new_device = rng.chance(0.7);
            let mut t = at_ms;
            for _ in 0..n {
                out.push(Raw {
                    at_ms: t,
                    card,
                    amount: cents(0.5 + 4.49 * rng.unit()),
                    mcc: "digital_goods",
                    online: true,
                    country,
                    place: abroad_place(country, rng),
                    new_device,
                    fraud: Some(pattern),
                });
                t += 30_000 + rng.below(60_000) as i64;
            }
        }
        Pattern::AccountTakeover => {
            let country = if rng.chance(0.3) { foreign(c.home, rng) } else { c.home };
            let h = COUNTRIES[country];
            let d = 300.0 + 2_700.0 * rng.unit();
            let angle = std::f64::consts::TAU * rng.unit();
            out.push(Raw {
                at_ms,
                card,
                amount: cents((c.typical * (8.0 + 17.0 * rng.unit())).max(120.0)),
                mcc: pick(rng, &["electronics", "jewelry", "online_retail"]),
                online: true,
                country,
                place: (h.2 + d * angle.cos(), h.3 + d * angle.sin()),
                new_device: true,
                fraud: Some(pattern),
            });
        }
        Pattern::CrossBorder => {
            let country = foreign(c.home, rng);
            out.push(Raw {
                at_ms,
                card,
                amount: cents((c.typical * (5.0 + 10.0 * rng.unit())).max(80.0)),
                mcc: pick(rng, &["atm", "electronics", "jewelry"]),
                online: false,
                country,
                place: abroad_place(country, rng),
                new_device: false,
                fraud: Some(pattern),
            });
        }
        Pattern::GiftCardDrain => {
            out.push(Raw {
                at_ms,
                card,
                amount: f64::from(150 + 50 * rng.below(7) as u32),
                mcc: "gift_cards",
                online: true,
                country: c.home,
                place: home_place(c, rng),
                new_device: false,
                fraud: Some(pattern),
            });
        }
    }
}

/// Per-card velocity and distance, in time order, and the attributes.
fn describe(cards: &[Card], raw: Vec<Raw>) -> Vec<Transaction> {
    let mut recent: Vec<VecDeque<i64>> = vec![VecDeque::new(); cards.len()];
    let mut last_place: Vec<Option<(f64, f64)>> = vec![None; cards.len()];
    raw.into_iter()
        .enumerate()
        .map(|(n, r)| {
            let c = &cards[r.card as usize];
            let seen = &mut recent[r.card as usize];
            while seen.front().is_some_and(|&t| t <= r.at_ms - DAY_MS) {
                seen.pop_front();
            }
            let last_day = seen.len();
            let last_hour = seen.iter().filter(|&&t| t > r.at_ms - HOUR_MS).count();
            seen.push_back(r.at_ms);
            let place = if r.online && r.fraud.is_none() {
                home_place_fixed(c)
            } else {
                r.place
            };
            let distance = last_place[r.card as usize]
                .map_or(0.0, |(x, y)| ((place.0 - x).powi(2) + (place.1 - y).powi(2)).sqrt());
            last_place[r.card as usize] = Some(place);
            let hour = ((r.at_ms.div_euclid(HOUR_MS) + START_HOUR) % 24) as u32;
            let (code, currency, ..) = COUNTRIES[r.country];
            let home = COUNTRIES[c.home].0;
            Transaction {
                id: format!("tx-{n}"),
                at_ms: r.at_ms,
                card: r.card,
                attributes: json!({
                    "amount": r.amount,
                    "currency": currency,
                    "mcc": r.mcc,
                    "channel": if r.online { "online" } else { "pos" },
                    "country": code,
                    "home_country": home,
                    "country_mismatch": code != home,
                    "hour": hour,
                    "card_age_days": c.age_days + r.at_ms / DAY_MS,
                    "tx_last_hour": last_hour,
                    "tx_last_day": last_day,
                    "new_device": r.new_device,
                    "distance_km": (distance * 10.0).round() / 10.0,
                }),
                fraud: r.fraud,
            }
        })
        .collect()
}

/// Where an honest online purchase happens: the owner's home (the centre of the home
/// country on the map; the noise of a place is for purchases in person).
fn home_place_fixed(c: &Card) -> (f64, f64) {
    let h = COUNTRIES[c.home];
    (h.2, h.3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> Spec {
        Spec {
            seed,
            cards: 500,
            history_hours: 6,
            hours: 6,
            per_hour: 400,
            drift_hour: 2,
            fraud_rate: 0.005,
            new_pattern_rate: 0.007,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let (a, b, c) = (generate(&small(1)), generate(&small(1)), generate(&small(2)));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn the_stream_is_in_time_order_with_fraud_in_its_patterns_and_the_new_one_only_after_the_drift() {
        let spec = small(3);
        let txs = generate(&spec);
        assert!(txs.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(txs.iter().enumerate().all(|(i, t)| t.id == format!("tx-{i}")));
        let fraud = txs.iter().filter(|t| t.fraud.is_some()).count() as f64 / txs.len() as f64;
        assert!((0.005..0.03).contains(&fraud), "{fraud}");
        for t in &txs {
            if t.fraud == Some(Pattern::GiftCardDrain) {
                assert!(t.stream_hour(&spec) >= i64::from(spec.drift_hour), "{t:?}");
                assert_eq!(t.attributes["mcc"], "gift_cards");
                assert_eq!(t.attributes["country_mismatch"], false);
            }
        }
        for p in [
            Pattern::CardTesting,
            Pattern::AccountTakeover,
            Pattern::CrossBorder,
            Pattern::GiftCardDrain,
        ] {
            assert!(txs.iter().any(|t| t.fraud == Some(p)), "{p:?}");
        }
    }

    #[test]
    fn velocity_counts_the_cards_earlier_transactions() {
        let txs = generate(&small(4));
        // A card-testing burst: each charge after the first sees the earlier ones.
        let burst: Vec<&Transaction> = txs.iter().filter(|t| t.fraud == Some(Pattern::CardTesting)).collect();
        let first = burst[0];
        let same: Vec<&&Transaction> = burst.iter().filter(|t| t.card == first.card).collect();
        let hours: Vec<u64> = same
            .iter()
            .map(|t| t.attributes["tx_last_hour"].as_u64().unwrap())
            .collect();
        assert!(hours.windows(2).all(|w| w[1] > w[0]), "{hours:?}");
        for t in &txs {
            let a = &t.attributes;
            assert!(a["tx_last_hour"].as_u64() <= a["tx_last_day"].as_u64());
            assert_eq!(
                a["country_mismatch"].as_bool().unwrap(),
                a["country"] != a["home_country"]
            );
        }
    }
}
