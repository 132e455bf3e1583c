//! A rule's static cost: an upper estimate of the steps its `when` takes on one item, read
//! from the CEL syntax tree, so that a rule that would take seconds per item
//! (`[…100…].all(a, […100…].all(b, […100…].all(c, …)))`: 10⁸ steps, once 23 s an item)
//! is refused when the policy is checked or stored, not found out on live traffic.
//!
//! Each node costs 1; a comprehension (`all`, `exists`, `exists_one`, `map`, `filter`)
//! costs its range plus, per element, its condition and step. A range that is a list
//! literal has its length; any other (a list in the payload, a function's result) is
//! taken at [`UNKNOWN_RANGE`], the most values an item may hold. So one comprehension over
//! a payload list passes, two nested over payload lists do not.

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr};

/// The most steps a rule's `when` may cost on one item.
pub const MAX_RULE_COST: f64 = 1_000_000.0;

/// The assumed length of a list whose length the tree does not show: the most values one
/// item may hold (the server's per-item limit).
pub const UNKNOWN_RANGE: f64 = 100_000.0;

/// The estimated steps of `e` on one item.
pub fn cost(e: &IdedExpr) -> f64 {
    match &e.expr {
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => 1.0,
        Expr::Select(s) => 1.0 + cost(&s.operand),
        Expr::Call(c) => 1.0 + c.target.as_deref().map_or(0.0, cost) + c.args.iter().map(cost).sum::<f64>(),
        Expr::List(l) => 1.0 + l.elements.iter().map(cost).sum::<f64>(),
        Expr::Map(m) => 1.0 + m.entries.iter().map(|x| entry_cost(&x.expr)).sum::<f64>(),
        Expr::Struct(s) => 1.0 + s.entries.iter().map(|x| entry_cost(&x.expr)).sum::<f64>(),
        Expr::Comprehension(c) => {
            let n = match &c.iter_range.expr {
                Expr::List(l) => l.elements.len() as f64,
                _ => UNKNOWN_RANGE,
            };
            1.0 + cost(&c.iter_range)
                + cost(&c.accu_init)
                + n * (cost(&c.loop_cond) + cost(&c.loop_step))
                + cost(&c.result)
        }
    }
}

fn entry_cost(e: &EntryExpr) -> f64 {
    match e {
        EntryExpr::StructField(f) => cost(&f.value),
        EntryExpr::MapEntry(m) => cost(&m.key) + cost(&m.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(when: &str) -> f64 {
        cost(cel::Program::compile(when).unwrap().expression())
    }

    #[test]
    fn nested_comprehensions_multiply() {
        assert!(of("confidence >= 0.9 && label == 'spam'") < 20.0);
        let hundred = format!("[{}]", (0..100).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        let one = of(&format!("{hundred}.all(a, a >= 0)"));
        let four = of(&format!(
            "{hundred}.all(a, {hundred}.all(b, {hundred}.all(c, {hundred}.all(d, true))))"
        ));
        assert!(one < MAX_RULE_COST, "{one}");
        assert!(four > 1e8, "{four}");
        assert!(of("payload.tags.exists(t, t == 'x')") < MAX_RULE_COST);
        assert!(of("payload.a.exists(x, payload.b.exists(y, x == y))") > MAX_RULE_COST);
    }
}
