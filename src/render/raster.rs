//! SVG to PNG with resvg, with the shipped fonts only (the font database is
//! built once from the bytes in the binary; the system's fonts are never read).

use std::sync::{Arc, LazyLock};

use resvg::{tiny_skia, usvg};

use super::{RenderError, text};

/// Charts are drawn at twice their SVG size (sharp on phones; 1600 × 720 px).
pub const CHART_SCALE: f32 = 2.0;

static FONTS: LazyLock<Arc<usvg::fontdb::Database>> = LazyLock::new(|| {
    let mut db = usvg::fontdb::Database::new();
    db.load_font_data(text::REGULAR.to_vec());
    db.load_font_data(text::BOLD.to_vec());
    Arc::new(db)
});

/// usvg's options: our fonts, our family as the default.
pub fn options() -> usvg::Options<'static> {
    usvg::Options { fontdb: FONTS.clone(), font_family: text::FAMILY.to_string(), ..Default::default() }
}

pub fn tree(svg: &str) -> Result<usvg::Tree, RenderError> {
    usvg::Tree::from_str(svg, &options()).map_err(|e| RenderError(format!("svg: {e}")))
}

pub fn png(svg: &str, scale: f32) -> Result<Vec<u8>, RenderError> {
    let tree = tree(svg)?;
    let size = tree.size().to_int_size().scale_by(scale).ok_or_else(|| RenderError("empty chart".into()))?;
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| RenderError("empty chart".into()))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| RenderError(format!("png: {e}")))
}
