//! Finds where a key path (`nodes.fan.set.count`, `edges[2].to`) stands in YAML source text.
//!
//! serde gives positions only for errors it raises itself; the compiler's errors (an unknown
//! node in an edge, an expression that does not compile) are found afterwards on plain data.
//! This module recovers their line and column from the text by following indentation, which
//! covers block-style YAML and one-line flow mappings (`{from: a, to: b}`). When a path cannot
//! be followed to the end, the position of the deepest part found is returned: an error then
//! points at the enclosing entry rather than nowhere.

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

struct Line<'a> {
    indent: usize,
    text: &'a str,
}

fn lines(src: &str) -> Vec<Option<Line<'_>>> {
    src.lines()
        .map(|raw| {
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
                None
            } else {
                Some(Line {
                    indent: raw.len() - trimmed.len(),
                    text: trimmed,
                })
            }
        })
        .collect()
}

/// Does `text` begin with the mapping key `key`, quoted or not?
fn starts_with_key(text: &str, key: &str) -> bool {
    for (open, close) in [("", ""), ("\"", "\""), ("'", "'")] {
        let quoted = format!("{open}{key}{close}");
        if let Some(rest) = text.strip_prefix(quoted.as_str()) {
            let rest = rest.trim_start();
            if rest.starts_with(':') {
                return true;
            }
        }
    }
    false
}

/// Finds `key:` inside a flow mapping on one line, from byte `from` on.
fn find_flow_key(text: &str, key: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut search = from;
    while let Some(off) = text.get(search..).and_then(|t| t.find(key)) {
        let at = search + off;
        let before_ok = at == 0 || matches!(bytes[at - 1], b'{' | b',' | b' ' | b'"' | b'\'');
        let after = text[at + key.len()..].trim_start_matches(['"', '\'']);
        if before_ok && after.trim_start().starts_with(':') {
            return Some(at);
        }
        search = at + key.len();
    }
    None
}

/// The position of `path` in `src`, or of the deepest prefix of it that could be found.
pub fn locate(src: &str, path: &[Seg]) -> Option<Pos> {
    let lines = lines(src);
    // The block being searched: lines [start, end), whose entries are indented more than
    // `parent_indent` (None at the top level).
    let mut start = 0usize;
    let mut end = lines.len();
    let mut parent_indent: Option<usize> = None;
    let mut found: Option<Pos> = None;
    // Inside a one-line flow mapping: the line index and the byte offset to search from.
    let mut flow: Option<(usize, usize)> = None;

    for seg in path {
        if let Some((line_idx, from)) = flow {
            let Some(Line { indent, text }) = &lines[line_idx] else {
                break;
            };
            match seg {
                Seg::Key(key) => match find_flow_key(text, key, from) {
                    Some(at) => {
                        found = Some(Pos {
                            line: line_idx + 1,
                            col: indent + at + 1,
                        });
                        flow = Some((line_idx, at));
                    }
                    None => break,
                },
                Seg::Index(_) => break,
            }
            continue;
        }

        let mut hit: Option<(usize, usize, usize)> = None; // (line, column offset, indent)
        let mut seen_items = 0usize;
        for (i, line) in lines.iter().enumerate().take(end).skip(start) {
            let Some(line) = line else { continue };
            if let Some(p) = parent_indent
                && line.indent <= p
                && !(line.text.starts_with("- ") && line.indent == p)
            {
                continue;
            }
            match seg {
                Seg::Key(key) => {
                    let (text, extra) = match line.text.strip_prefix("- ") {
                        Some(rest) => {
                            (rest.trim_start(), line.text.len() - rest.trim_start().len())
                        }
                        None => (line.text, 0),
                    };
                    if starts_with_key(text, key) {
                        hit = Some((i, extra, line.indent + extra));
                        break;
                    }
                }
                Seg::Index(n) => {
                    if line.text == "-" || line.text.starts_with("- ") {
                        if seen_items == *n {
                            hit = Some((i, 0, line.indent));
                            break;
                        }
                        seen_items += 1;
                    }
                }
            }
        }
        let Some((line_idx, extra, indent)) = hit else {
            break;
        };
        let Some(line) = &lines[line_idx] else { break };
        found = Some(Pos {
            line: line_idx + 1,
            col: line.indent + extra + 1,
        });
        // What follows the key or dash on the same line: a flow mapping continues on it.
        let rest = match seg {
            Seg::Key(_) => line.text[extra..]
                .split_once(':')
                .map(|(_, r)| r.trim_start()),
            Seg::Index(_) => line.text.strip_prefix('-').map(str::trim_start),
        };
        if let Some(rest) = rest
            && rest.starts_with('{')
        {
            let offset = line.text.len() - rest.len();
            flow = Some((line_idx, offset));
            continue;
        }
        // The block of this entry: following lines indented more than it.
        let mut block_end = lines.len();
        for (j, l) in lines.iter().enumerate().skip(line_idx + 1) {
            if let Some(l) = l {
                let is_sibling_item = matches!(seg, Seg::Index(_))
                    && l.indent == indent
                    && (l.text == "-" || l.text.starts_with("- "));
                if l.indent < indent
                    || (l.indent == indent && (is_sibling_item || matches!(seg, Seg::Key(_))))
                {
                    block_end = j;
                    break;
                }
            }
        }
        match seg {
            Seg::Index(_) => {
                // The item's own keys start on the dash line, two columns in.
                start = line_idx;
                end = block_end;
                parent_indent = Some(indent);
                // Let the dash line itself be searched as a key line.
            }
            Seg::Key(_) => {
                start = line_idx + 1;
                end = block_end;
                parent_indent = Some(indent);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Seg {
        Seg::Key(s.to_string())
    }

    const SRC: &str = "\
name: demo
nodes:
  start:
    kind: transform
    set: {count: \"input.n\", seen: \"['a']\"}
  ask:
    kind: interrupt
    prompt: hi
edges:
  - {from: START, to: start}
  - from: start
    when:
      - {if: \"state.x\", to: ask}
      - else: END
";

    #[test]
    fn finds_block_keys() {
        assert_eq!(
            locate(SRC, &[k("nodes"), k("ask"), k("prompt")]),
            Some(Pos { line: 8, col: 5 })
        );
        assert_eq!(
            locate(SRC, &[k("nodes"), k("start")]),
            Some(Pos { line: 3, col: 3 })
        );
    }

    #[test]
    fn finds_keys_in_flow_mappings() {
        let p = locate(SRC, &[k("nodes"), k("start"), k("set"), k("seen")]).unwrap();
        assert_eq!(p.line, 5);
        assert_eq!(&SRC.lines().nth(4).unwrap()[p.col - 1..p.col + 3], "seen");
        let p = locate(SRC, &[k("edges"), Seg::Index(0), k("to")]).unwrap();
        assert_eq!(p.line, 10);
        assert_eq!(&SRC.lines().nth(9).unwrap()[p.col - 1..p.col + 1], "to");
    }

    #[test]
    fn finds_list_items_and_nested_keys() {
        assert_eq!(
            locate(SRC, &[k("edges"), Seg::Index(1)]),
            Some(Pos { line: 11, col: 3 })
        );
        assert_eq!(
            locate(SRC, &[k("edges"), Seg::Index(1), k("when")]),
            Some(Pos { line: 12, col: 5 })
        );
        let p = locate(
            SRC,
            &[
                k("edges"),
                Seg::Index(1),
                k("when"),
                Seg::Index(1),
                k("else"),
            ],
        )
        .unwrap();
        assert_eq!(p.line, 14);
        let p = locate(
            SRC,
            &[k("edges"), Seg::Index(1), k("when"), Seg::Index(0), k("if")],
        )
        .unwrap();
        assert_eq!(p.line, 13);
    }

    #[test]
    fn falls_back_to_the_deepest_known_part() {
        assert_eq!(
            locate(SRC, &[k("nodes"), k("ask"), k("missing")]),
            Some(Pos { line: 6, col: 3 })
        );
        assert_eq!(locate(SRC, &[k("nope")]), None);
    }
}
