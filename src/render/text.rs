//! The shipped font (DejaVu Sans, `assets/fonts/`, licence beside it): the
//! only font rendering uses, and its glyph advances for wrapping text.

use std::sync::LazyLock;

pub const FAMILY: &str = "DejaVu Sans";
pub static REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub static BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

static FACES: LazyLock<[ttf_parser::Face<'static>; 2]> = LazyLock::new(|| {
    [
        ttf_parser::Face::parse(REGULAR, 0).expect("the shipped regular font parses"),
        ttf_parser::Face::parse(BOLD, 0).expect("the shipped bold font parses"),
    ]
});

/// Width of `s` at `size` (same unit as `size`).
pub fn width(s: &str, size: f32, bold: bool) -> f32 {
    let face = &FACES[usize::from(bold)];
    let units: u32 =
        s.chars().map(|c| face.glyph_index(c).and_then(|g| face.glyph_hor_advance(g)).map_or(600, u32::from)).sum();
    units as f32 * size / f32::from(face.units_per_em())
}

/// `s` in lines no wider than `max` (a word longer than a line is cut).
pub fn wrap(s: &str, size: f32, bold: bool, max: f32) -> Vec<String> {
    let mut lines = vec![];
    let mut line = String::new();
    for word in s.split_whitespace() {
        let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
        if width(&candidate, size, bold) <= max {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        let mut word = word.to_string();
        while width(&word, size, bold) > max && word.chars().count() > 1 {
            let mut cut = word.chars().count() - 1;
            while cut > 1 && width(&word.chars().take(cut).collect::<String>(), size, bold) > max {
                cut -= 1;
            }
            lines.push(word.chars().take(cut).collect());
            word = word.chars().skip(cut).collect();
        }
        line = word;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_within_the_width() {
        let lines = wrap(&"word ".repeat(40), 10.0, false, 100.0);
        assert!(lines.len() > 3);
        assert!(lines.iter().all(|l| width(l, 10.0, false) <= 100.0));
        assert_eq!(wrap(&"x".repeat(200), 10.0, false, 100.0).concat(), "x".repeat(200));
    }
}
