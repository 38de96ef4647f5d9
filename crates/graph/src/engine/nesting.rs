//! A bound on how deeply a workflow document nests flow collections (`[…]`, `{…}`), checked
//! before the YAML parser sees the text.
//!
//! The parser's time grows steeply with flow nesting (tens of thousands of levels in a few
//! kilobytes take minutes), while its own recursion limit only applies after that work. This
//! scan is linear: it follows quotes, comments and block scalars well enough to count the
//! brackets that open collections, and refuses a document nested deeper than
//! [`MAX_FLOW_DEPTH`]. It never accepts anything the parser would not also see; it only stops
//! the pathological cases early.

/// The deepest nesting of flow collections a workflow document may use.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Where the document first nests deeper than [`MAX_FLOW_DEPTH`]: (line, column), 1-based.
pub fn too_deep(src: &str) -> Option<(usize, usize)> {
    #[derive(PartialEq)]
    enum Mode {
        /// Between tokens, or in a flow collection.
        Structure,
        /// A plain scalar in block context: text to the end of the line or to `: `.
        PlainText,
        Single,
        Double {
            escaped: bool,
        },
    }
    let mut mode = Mode::Structure;
    let mut depth = 0usize;
    // A block scalar (`|`, `>`) holds text, not structure: lines indented deeper than the line
    // that introduced it are skipped.
    let mut block_parent: Option<usize> = None;
    for (line_no, line) in src.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(parent) = block_parent {
            if line.trim().is_empty() || indent > parent {
                continue;
            }
            block_parent = None;
        }
        if mode == Mode::PlainText {
            mode = Mode::Structure;
        }
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        let mut prev: Option<char> = None;
        for (i, &(col, c)) in chars.iter().enumerate() {
            let next = chars.get(i + 1).map(|&(_, n)| n);
            let separated = prev.is_none_or(char::is_whitespace);
            let token_start = prev.is_none_or(|p| {
                p.is_whitespace() || matches!(p, '[' | '{' | ',' | ':' | '?' | '-')
            });
            match mode {
                Mode::Single => {
                    if c == '\'' {
                        mode = Mode::Structure;
                    }
                }
                Mode::Double { escaped } => {
                    mode = match (escaped, c) {
                        (true, _) => Mode::Double { escaped: false },
                        (false, '\\') => Mode::Double { escaped: true },
                        (false, '"') => Mode::Structure,
                        _ => Mode::Double { escaped: false },
                    };
                }
                Mode::PlainText => {
                    if c == '#' && separated {
                        break;
                    }
                    if c == ':' && next.is_none_or(char::is_whitespace) {
                        mode = Mode::Structure;
                    }
                }
                Mode::Structure => match c {
                    '#' if separated => break,
                    // A quote opens a quoted scalar only where a token starts; elsewhere it is
                    // part of a plain scalar (`don't`).
                    '\'' if token_start => mode = Mode::Single,
                    '"' if token_start => mode = Mode::Double { escaped: false },
                    '[' | '{' => {
                        depth += 1;
                        if depth > MAX_FLOW_DEPTH {
                            return Some((line_no + 1, col + 1));
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    '|' | '>' if depth == 0 => {
                        let rest = line[col + c.len_utf8()..]
                            .trim_start_matches(|ch: char| {
                                ch == '+' || ch == '-' || ch.is_ascii_digit()
                            })
                            .trim();
                        if rest.is_empty() || rest.starts_with('#') {
                            block_parent = Some(indent);
                            break;
                        }
                        mode = Mode::PlainText;
                    }
                    c if c.is_whitespace()
                        || matches!(c, ',' | ':' | '-' | '?' | '&' | '*' | '!') => {}
                    // A plain scalar: in block context it is text to the end of the line; in a
                    // flow collection it ends at the next indicator, so stay in structure.
                    _ if depth == 0 => mode = Mode::PlainText,
                    _ => {}
                },
            }
            prev = Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_brackets_that_open_collections() {
        let deep = format!("a: {}{}\n", "[".repeat(65), "]".repeat(65));
        assert_eq!(too_deep(&deep), Some((1, 68)));
        let fine = format!("a: {}{}\n", "[".repeat(64), "]".repeat(64));
        assert_eq!(too_deep(&fine), None);
        // Brackets in quotes, comments, plain scalars and block scalars are text.
        let text = format!(
            "a: '{0}'\nb: \"{0}\\\"{0}\"\nc: x{0}\n# {0}\nd: |\n  {0}\n  {0}\ne: ok\n",
            "[".repeat(100)
        );
        assert_eq!(too_deep(&text), None, "{text}");
        // A quote inside a plain scalar opens nothing.
        let inner = format!("a: [x' {}\n", "[".repeat(65));
        assert_eq!(too_deep(&inner), Some((1, 71)));
        // After a block scalar ends, brackets count again.
        let after = format!("d: >-\n  text\ne: {}\n", "{".repeat(65));
        assert_eq!(too_deep(&after), Some((3, 68)));
    }
}
