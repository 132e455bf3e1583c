//! Line charts and grouped bar charts as inline SVG, drawn on the server: no script, no
//! CDN, readable offline. Every piece of text is escaped.

use std::fmt::Write;

/// One line of a chart: `(x, y)` points, `None` where there is no value.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, Option<f64>)>,
}

/// Escapes text for HTML and SVG.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number as an axis shows it: whole numbers without decimals, others with at most
/// three significant decimals (no 17-digit floats).
pub fn round(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The plot's frame: the SVG's size and the margins around the plot area. The left margin
/// holds the y-axis numbers (right-aligned against the axis), the bottom one the x-axis
/// ticks and caption, the top one the title and legend.
const W: f64 = 520.0;
const H: f64 = 220.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 36.0;

/// Where a value lands in the plot area: x in `[LEFT, W - RIGHT]`, y in `[TOP, H - BOTTOM]`.
/// Values outside the axes' ranges are drawn on the nearest edge, never outside the
/// axes (over their numbers).
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn sx(&self, v: f64) -> f64 {
        let span = (self.x.1 - self.x.0).max(1e-9);
        LEFT + ((v - self.x.0) / span).clamp(0.0, 1.0) * (W - LEFT - RIGHT)
    }

    fn sy(&self, v: f64) -> f64 {
        let span = (self.y.1 - self.y.0).max(1e-9);
        H - BOTTOM - ((v - self.y.0) / span).clamp(0.0, 1.0) * (H - TOP - BOTTOM)
    }
}

/// A chart of `series` over x in `[x0, x1]` and y in `[lo, hi]`, with a legend; the x axis
/// is numbered (`x_label` says in what).
pub fn line_chart(
    title: &str,
    x_label: &str,
    series: &[Series<'_>],
    (x0, x1): (f64, f64),
    (lo, hi): (f64, f64),
) -> String {
    let ticks = (0..=4)
        .map(|i| {
            let v = x0 + (x1 - x0) * f64::from(i) / 4.0;
            (v, round(v))
        })
        .collect();
    draw(title, x_label, ticks, series, (x0, x1), (lo, hi))
}

/// A chart over time: x values are Unix milliseconds in `[t0, t1]`, ticked with clock
/// times (`14:30`, UTC) over a day or less and dates (`12-04 14:30`) over longer.
pub fn time_chart(title: &str, series: &[Series<'_>], (t0, t1): (i64, i64), (lo, hi): (f64, f64)) -> String {
    let t1 = t1.max(t0 + 60_000);
    let long = t1 - t0 > 86_400_000;
    let ticks = (0..=4)
        .map(|i| {
            let t = t0 + (t1 - t0) * i / 4;
            (t as f64, clock(t, long))
        })
        .collect();
    draw(title, "time (UTC)", ticks, series, (t0 as f64, t1 as f64), (lo, hi))
}

/// `HH:MM` (UTC) of Unix milliseconds `t`, with the date (`MM-DD HH:MM`) when `dated`.
pub fn clock(t: i64, dated: bool) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(t.div_euclid(1000)) else {
        return String::new();
    };
    if dated {
        format!(
            "{:02}-{:02} {:02}:{:02}",
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        )
    } else {
        format!("{:02}:{:02}", at.hour(), at.minute())
    }
}

fn draw(
    title: &str,
    x_caption: &str,
    x_ticks: Vec<(f64, String)>,
    series: &[Series<'_>],
    x: (f64, f64),
    y: (f64, f64),
) -> String {
    let f = Frame { x, y };
    let (xl, xr, yt, yb) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let title = escape(title);
    let mut svg = format!(
        "<svg class=\"chart\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\"><title>{title}</title>\
<text x=\"{xl}\" y=\"16\" font-size=\"13\">{title}</text>\
<line class=\"axis\" x1=\"{xl}\" y1=\"{yb}\" x2=\"{xr}\" y2=\"{yb}\" stroke=\"#999\"/>\
<line class=\"axis\" x1=\"{xl}\" y1=\"{yt}\" x2=\"{xl}\" y2=\"{yb}\" stroke=\"#999\"/>"
    );
    // y: the bottom, middle and top values, right-aligned left of the axis, with a faint
    // grid line across the plot.
    for i in 0..=2 {
        let v = y.0 + (y.1 - y.0) * f64::from(i) / 2.0;
        let py = f.sy(v);
        let _ = write!(
            svg,
            "<text class=\"ytick\" x=\"{tx}\" y=\"{ty:.1}\" font-size=\"11\" text-anchor=\"end\">{label}</text>",
            tx = xl - 4.0,
            ty = py + 4.0,
            label = escape(&round(v)),
        );
        if i > 0 {
            let _ = write!(
                svg,
                "<line x1=\"{xl}\" y1=\"{py:.1}\" x2=\"{xr}\" y2=\"{py:.1}\" stroke=\"#ddd\" stroke-dasharray=\"2,3\"/>"
            );
        }
    }
    // x: ticks under the axis (the first left-aligned, the last right-aligned, so that
    // neither leaves the picture), and the caption under them.
    let n = x_ticks.len();
    for (i, (v, label)) in x_ticks.iter().enumerate() {
        let px = f.sx(*v);
        let anchor = match i {
            0 => "start",
            i if i + 1 == n => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{yb}\" x2=\"{px:.1}\" y2=\"{t}\" stroke=\"#999\"/>\
<text class=\"xtick\" x=\"{px:.1}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"{anchor}\">{label}</text>",
            t = yb + 4.0,
            ty = yb + 15.0,
            label = escape(label),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{xr}\" y=\"{ty}\" font-size=\"10\" fill=\"#666\" text-anchor=\"end\">{}</text>",
        escape(x_caption),
        ty = H - 4.0,
    );
    // The legend: one row under the title, left to right.
    let mut legend_x = xl;
    for s in series.iter() {
        let points: Vec<String> = s
            .points
            .iter()
            .filter_map(|(x, y)| {
                y.filter(|y| y.is_finite())
                    .map(|y| format!("{:.1},{:.1}", f.sx(*x), f.sy(y)))
            })
            .collect();
        let color = escape(s.color);
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\
<text x=\"{legend_x}\" y=\"32\" font-size=\"11\" fill=\"{color}\">{name}</text>",
            points.join(" "),
            name = escape(s.name),
        );
        legend_x += 7.0 * s.name.chars().count() as f64 + 16.0;
        if points.len() == 1 {
            // A single point draws no line: mark it.
            let (x, y) = points[0].split_once(',').unwrap_or(("0", "0"));
            let _ = write!(svg, "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{color}\"/>");
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A grouped bar chart: for each group (`groups[g]`, named under its bars) one bar per
/// series (`series[k]`: a name and a colour, with its value `values[g][k]`, none: no
/// bar), y in `[lo, hi]`, each bar labelled with its value.
pub fn bar_chart(
    title: &str,
    groups: &[&str],
    series: &[(&str, &str)],
    values: &[Vec<Option<f64>>],
    (lo, hi): (f64, f64),
) -> String {
    let (w, h, pad) = (520.0, 240.0, 40.0);
    let sy = |v: f64| h - pad - ((v - lo) / (hi - lo).max(1e-9)).clamp(0.0, 1.0) * (h - 2.0 * pad);
    let title = escape(title);
    let mut svg = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\"><title>{title}</title>\
<text x=\"{pad}\" y=\"18\" font-size=\"13\">{title}</text>\
<line x1=\"{pad}\" y1=\"{yb}\" x2=\"{xr}\" y2=\"{yb}\" stroke=\"#999\"/>\
<text x=\"4\" y=\"{yt}\" font-size=\"11\">{hi}</text><text x=\"4\" y=\"{yb}\" font-size=\"11\">{lo}</text>",
        yb = h - pad,
        xr = w - pad,
        yt = pad + 4.0,
        hi = round(hi),
        lo = round(lo),
    );
    let mut legend_x = pad;
    for (name, color) in series {
        let _ = write!(
            svg,
            "<text x=\"{legend_x}\" y=\"32\" font-size=\"11\" fill=\"{}\">{}</text>",
            escape(color),
            escape(name)
        );
        legend_x += 7.0 * name.chars().count() as f64 + 16.0;
    }
    let group_w = (w - 2.0 * pad) / groups.len().max(1) as f64;
    let bar_w = (group_w * 0.8) / series.len().max(1) as f64;
    for (g, group) in groups.iter().enumerate() {
        let gx = pad + g as f64 * group_w + group_w * 0.1;
        for (k, (_, color)) in series.iter().enumerate() {
            let Some(v) = values.get(g).and_then(|r| r.get(k)).copied().flatten() else {
                continue;
            };
            let (x, y) = (gx + k as f64 * bar_w, sy(v));
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{c}\"/>\
<text x=\"{tx:.1}\" y=\"{ty:.1}\" font-size=\"10\" text-anchor=\"middle\">{v}</text>",
                bw = (bar_w - 2.0).max(1.0),
                bh = (h - pad - y).max(0.0),
                c = escape(color),
                tx = x + bar_w / 2.0,
                ty = y - 3.0,
                v = round(v),
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            gx + group_w * 0.4,
            h - pad + 14.0,
            escape(group)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_points_are_scaled() {
        let svg = line_chart(
            "<script>x</script>",
            "time",
            &[Series {
                name: "a&b",
                color: "#123",
                points: vec![(0.0, Some(0.0)), (1.0, Some(1.0)), (2.0, None)],
            }],
            (0.0, 1.0),
            (0.0, 1.0),
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;") && svg.contains("a&amp;b"));
        assert!(svg.contains("points=\"48.0,184.0 504.0,40.0\""), "{svg}");
    }

    /// The `points` of every polyline in `svg`, as numbers.
    fn points(svg: &str) -> Vec<(f64, f64)> {
        svg.split("points=\"")
            .skip(1)
            .flat_map(|rest| rest.split('"').next().unwrap_or("").split_whitespace())
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    /// The text of every element of class `class`.
    fn texts(svg: &str, class: &str) -> Vec<String> {
        svg.split(&format!("class=\"{class}\""))
            .skip(1)
            .map(|rest| {
                rest.split('>')
                    .nth(1)
                    .unwrap_or("")
                    .split('<')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn lines_stay_inside_the_axes_even_when_their_points_do_not() {
        // A new project: the first slice starts before the window (x < x0), a value above
        // the top and one below the bottom.
        let svg = time_chart(
            "load",
            &[Series {
                name: "to review",
                color: "#d1242f",
                points: vec![
                    (-90_000.0, Some(3.0)),
                    (0.0, Some(-1.0)),
                    (30_000.0, Some(9.0)),
                    (200_000.0, Some(1.0)),
                ],
            }],
            (0, 120_000),
            (0.0, 4.0),
        );
        let ps = points(&svg);
        assert_eq!(ps.len(), 4);
        for (x, y) in ps {
            assert!((LEFT..=W - RIGHT).contains(&x), "x {x} outside the plot: {svg}");
            assert!((TOP..=H - BOTTOM).contains(&y), "y {y} outside the plot: {svg}");
        }
        // The y numbers sit left of the axis, right-aligned to it.
        assert!(svg.contains(&format!("x=\"{}\"", LEFT - 4.0)) && svg.contains("text-anchor=\"end\">4<"));
    }

    #[test]
    fn tick_labels_are_clock_times_and_short_numbers() {
        // 2026-12-04T22:20:17Z, for two hours.
        let t0 = 1_796_422_817_000;
        let svg = time_chart("rate", &[], (t0, t0 + 7_200_000), (0.0, 1.0));
        assert_eq!(texts(&svg, "xtick"), ["22:20", "22:50", "23:20", "23:50", "00:20"]);
        assert_eq!(texts(&svg, "ytick"), ["0", "0.5", "1"]);
        assert!(!svg.contains("since"), "{svg}");
        // Over more than a day the date is shown too.
        let svg = time_chart("rate", &[], (t0, t0 + 7 * 86_400_000), (0.0, 1.0));
        assert_eq!(texts(&svg, "xtick")[0], "12-04 22:20");
        // Numbers never come out with 17 digits.
        assert_eq!(round(2.0 / 3.0), "0.67");
        assert_eq!(round(0.1 + 0.2), "0.3");
        assert_eq!(round(123.456_789), "123.5");
        assert_eq!(round(3.0), "3");
        let svg = line_chart("x", "items", &[], (0.0, 1.0 / 3.0), (0.0, 0.7));
        assert!(texts(&svg, "xtick").iter().all(|t| t.len() <= 4), "{svg}");
        assert_eq!(texts(&svg, "ytick"), ["0", "0.35", "0.7"]);
    }

    #[test]
    fn bars_are_scaled_and_labelled() {
        let svg = bar_chart(
            "<b>",
            &["x<y", "z"],
            &[("before", "#111"), ("after", "#222")],
            &[vec![Some(0.5), None], vec![Some(1.0), Some(0.0)]],
            (0.0, 1.0),
        );
        assert!(svg.contains("&lt;b&gt;") && svg.contains("x&lt;y"));
        assert_eq!(svg.matches("<rect").count(), 3, "no bar for a missing value");
        // Half of the 160-pixel plot height, from the axis at 200.
        assert!(svg.contains("y=\"120.0\" width=\"86.0\" height=\"80.0\""), "{svg}");
    }
}
