//! Terminal escape sequences, removed from tool output before it is read.

use std::borrow::Cow;

/// Removes terminal escape sequences: CSI (colours, `ESC [ … m`), OSC (hyperlinks,
/// `ESC ] … BEL` or `ESC ] … ESC \`) and short escapes (`ESC ( B`, `ESC =`).
pub(crate) fn strip_ansi(line: &str) -> Cow<'_, str> {
    if !line.contains('\x1b') {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(n) = chars.next() {
                    if n == '\x07' {
                        break;
                    }
                    if n == '\x1b' {
                        if chars.peek() == Some(&'\\') {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            Some(c) if (' '..='/').contains(&c) => {
                chars.next();
            }
            _ => {}
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_hyperlinks_and_two_character_escapes_are_removed() {
        assert!(matches!(strip_ansi("plain"), Cow::Borrowed("plain")));
        assert_eq!(strip_ansi("\x1b[1;31merror\x1b[0m: x"), "error: x");
        assert_eq!(
            strip_ansi("\x1b]8;;file:///a.rs\x1b\\a.rs\x1b]8;;\x1b\\ and \x1b]0;title\x07done"),
            "a.rs and done"
        );
        assert_eq!(strip_ansi("a\x1b(Bb\x1b"), "ab");
    }
}
