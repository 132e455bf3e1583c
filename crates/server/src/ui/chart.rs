//! Line charts as inline SVG, drawn on the server: no script, no CDN, readable offline.
//! Every piece of text is escaped.

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
}
