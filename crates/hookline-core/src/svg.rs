//! Charts as SVG text, drawn by hand (no plotting dependency): the bench's charts and the portal's draw with the
//! same panels, ticks and escaping.

use std::fmt::Write;

/// A plotting area: data coordinates in, pixels out. Axes, labels and legends sit outside it, so a caller leaves
/// room around it.
#[derive(Clone, Copy, Debug)]
pub struct Panel {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
}

impl Panel {
    pub fn right(&self) -> f64 {
        self.left + self.width
    }

    pub fn bottom(&self) -> f64 {
        self.top + self.height
    }

    pub fn x(&self, value: f64) -> f64 {
        let (low, high) = self.x_range;
        self.left + (value - low) / (high - low).max(f64::MIN_POSITIVE) * self.width
    }

    pub fn y(&self, value: f64) -> f64 {
        let (low, high) = self.y_range;
        self.bottom() - (value - low) / (high - low).max(f64::MIN_POSITIVE) * self.height
    }

    /// Frame, grid, tick labels, title (above) and axis label (below). Ticks are (data value, label); an empty
    /// title or label draws none.
    pub fn axes(
        &self,
        svg: &mut String,
        title: &str,
        x_label: &str,
        x_ticks: &[(f64, String)],
        y_ticks: &[(f64, String)],
    ) {
        let (left, top, bottom, right) = (self.left, self.top, self.bottom(), self.right());
        if !title.is_empty() {
            let _ = writeln!(
                svg,
                r#"<text x="{left:.1}" y="{:.1}" font-size="14" font-weight="bold">{}</text>"#,
                top - 12.0,
                escape(title)
            );
        }
        for (value, label) in y_ticks {
            let y = self.y(*value);
            let _ =
                writeln!(svg, r##"<line x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#e5e7eb"/>"##);
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 6.0,
                y + 4.0,
                escape(label)
            );
        }
        for (value, label) in x_ticks {
            let x = self.x(*value);
            let _ =
                writeln!(svg, r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#f3f4f6"/>"##);
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                bottom + 16.0,
                escape(label)
            );
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#6b7280"/>"##,
            self.width, self.height
        );
        if !x_label.is_empty() {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#374151">{}</text>"##,
                left + self.width / 2.0,
                bottom + 34.0,
                escape(x_label)
            );
        }
    }

    /// A line through `points`, its `class` naming the series.
    pub fn polyline(&self, svg: &mut String, points: impl Iterator<Item = (f64, f64)>, colour: &str, class: &str) {
        let mut coordinates = String::new();
        for (x, y) in points {
            let _ = write!(coordinates, "{:.1},{:.1} ", self.x(x), self.y(y));
        }
        let _ = writeln!(
            svg,
            r#"<polyline class="{}" fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            escape(class),
            coordinates.trim_end()
        );
    }

    /// A bar from `x.0` to `x.1` and `y.0` up to `y.1` (data coordinates), with a tooltip; nothing when it has no
    /// height.
    pub fn bar(&self, svg: &mut String, x: (f64, f64), y: (f64, f64), colour: &str, class: &str, tooltip: &str) {
        let (left, right) = (self.x(x.0), self.x(x.1));
        let (low, high) = (self.y(y.0), self.y(y.1));
        if low - high <= 0.0 {
            return;
        }
        let _ = writeln!(
            svg,
            r#"<rect class="{}" x="{left:.1}" y="{high:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}</title></rect>"#,
            escape(class),
            (right - left).max(0.5),
            low - high,
            escape(tooltip)
        );
    }
}

/// A legend in a row that ends at `right`, at height `top`: a swatch and a label per entry (colour, label).
pub fn legend(svg: &mut String, right: f64, top: f64, entries: &[(&str, &str)]) {
    let mut x = right - 10.0;
    for (colour, label) in entries.iter().rev() {
        x -= 7.0 * label.chars().count() as f64 + 30.0;
        let _ = writeln!(svg, r#"<rect x="{x:.1}" y="{:.1}" width="14" height="4" fill="{colour}"/>"#, top + 10.0);
        let _ = writeln!(svg, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, x + 18.0, top + 15.0, escape(label));
    }
}

/// Round tick values from 0 to at least `highest`: steps of 1, 2 or 5 times a power of ten, about five of them.
pub fn nice_ticks(highest: f64) -> Vec<f64> {
    if highest <= 0.0 || !highest.is_finite() {
        return vec![0.0, 1.0];
    }
    let rough = highest / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power);
    let count = (highest / step).ceil() as usize;
    (0..=count).map(|index| index as f64 * step).map(|value| (value * 1e6).round() / 1e6).collect()
}

/// Text made safe for SVG (and HTML) content and attribute values.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(9.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks(1234.0), vec![0.0, 500.0, 1000.0, 1500.0]);
        assert_eq!(nice_ticks(0.3), vec![0.0, 0.1, 0.2, 0.3]);
        assert_eq!(nice_ticks(0.0), vec![0.0, 1.0]);
    }

    #[test]
    fn a_panel_maps_data_to_pixels_upwards() {
        let panel =
            Panel { left: 10.0, top: 5.0, width: 100.0, height: 50.0, x_range: (0.0, 10.0), y_range: (0.0, 1.0) };
        assert_eq!((panel.x(0.0), panel.x(10.0)), (10.0, 110.0));
        assert_eq!((panel.y(0.0), panel.y(1.0)), (55.0, 5.0));
    }

    #[test]
    fn bars_escape_their_text_and_skip_empty_ones() {
        let panel = Panel { left: 0.0, top: 0.0, width: 10.0, height: 10.0, x_range: (0.0, 1.0), y_range: (0.0, 1.0) };
        let mut svg = String::new();
        panel.bar(&mut svg, (0.0, 1.0), (0.0, 0.0), "red", "none", "empty");
        assert!(svg.is_empty());
        panel.bar(&mut svg, (0.0, 1.0), (0.0, 0.5), "red", "ok", "<b>&\"");
        assert!(svg.contains("<title>&lt;b&gt;&amp;&quot;</title>"), "{svg}");
        assert!(svg.contains(r#"height="5.0""#), "{svg}");
    }
}
