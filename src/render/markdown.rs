//! The LLM summary is Markdown; a report shows it as plain blocks: headings,
//! bullet points and paragraphs, with emphasis markers dropped. No HTML from
//! the model ever reaches a page (every block is escaped where it is written).

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(String),
    Bullet(String),
    Paragraph(String),
}

pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = vec![];
    let mut paragraph: Vec<&str> = vec![];
    let flush = |paragraph: &mut Vec<&str>, out: &mut Vec<Block>| {
        if !paragraph.is_empty() {
            out.push(Block::Paragraph(plain(&paragraph.join(" "))));
            paragraph.clear();
        }
    };
    for line in markdown.lines().map(str::trim) {
        if line.is_empty() {
            flush(&mut paragraph, &mut out);
        } else if let Some(h) = line.strip_prefix('#') {
            flush(&mut paragraph, &mut out);
            out.push(Block::Heading(plain(h.trim_start_matches('#').trim())));
        } else if let Some(b) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            flush(&mut paragraph, &mut out);
            out.push(Block::Bullet(plain(b.trim())));
        } else {
            paragraph.push(line);
        }
    }
    flush(&mut paragraph, &mut out);
    out
}

/// Drops `**`, `__` and backticks.
fn plain(s: &str) -> String {
    s.replace("**", "").replace("__", "").replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_bullets_and_paragraphs() {
        let b = blocks("# Week\n\nSpend **rose**\nsteadily.\n\n- one\n* two\n");
        assert_eq!(
            b,
            [
                Block::Heading("Week".into()),
                Block::Paragraph("Spend rose steadily.".into()),
                Block::Bullet("one".into()),
                Block::Bullet("two".into())
            ]
        );
    }
}
