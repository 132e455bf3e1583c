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

/// A number as an axis shows it: whole numbers without decimals.
fn round(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        format!("{v:.2}")
    }
}

/// A chart of `series` over x in `[x0, x1]` and y in `[lo, hi]`, with a legend.
pub fn line_chart(
    title: &str,
    x_label: &str,
    series: &[Series<'_>],
    (x0, x1): (f64, f64),
    (lo, hi): (f64, f64),
) -> String {
    let (w, h, pad) = (520.0, 220.0, 40.0);
    let span = (x1 - x0).max(1e-9);
    let sx = |v: f64| pad + (v - x0) / span * (w - 2.0 * pad);
    let sy = |v: f64| h - pad - ((v - lo) / (hi - lo).max(1e-9)).clamp(0.0, 1.0) * (h - 2.0 * pad);
    let title = escape(title);
    let mut svg = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\"><title>{title}</title>\
<text x=\"{pad}\" y=\"18\" font-size=\"13\">{title}</text>\
<line x1=\"{pad}\" y1=\"{yb}\" x2=\"{xr}\" y2=\"{yb}\" stroke=\"#999\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{yb}\" stroke=\"#999\"/>\
<text x=\"4\" y=\"{yt}\" font-size=\"11\">{hi}</text><text x=\"4\" y=\"{yb}\" font-size=\"11\">{lo}</text>\
<text x=\"{pad}\" y=\"{xl}\" font-size=\"11\">{x0}</text>\
<text x=\"{xr}\" y=\"{xl}\" font-size=\"11\" text-anchor=\"end\">{x_label}: {x1}</text>",
        yb = h - pad,
        xr = w - pad,
        yt = pad + 4.0,
        xl = h - 8.0,
        x_label = escape(x_label),
        x0 = round(x0),
        x1 = round(x1),
    );
    // The legend: one row under the title, left to right.
    let mut legend_x = pad;
    for s in series.iter() {
        let points: Vec<String> = s
            .points
            .iter()
            .filter_map(|(x, y)| y.map(|y| format!("{:.1},{:.1}", sx(*x), sy(y))))
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
        assert!(svg.contains("points=\"40.0,180.0 480.0,40.0\""), "{svg}");
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
