//! Cleaning text at the edge, before anything stores or reads it: control characters (a NUL byte
//! is refused by PostgreSQL and would make a message impossible to store), escape sequences that
//! would reach a staff member's terminal, and a length cap.

use std::borrow::Cow;

/// The text without C0/C1 control characters and DEL, newlines and tabs kept (a carriage return
/// becomes a newline). Returns the text itself when there is nothing to remove.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    let bad = |c: char| (c.is_control() && c != '\n' && c != '\t') || c == '\u{7f}';
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let cleaned = text.replace("\r\n", "\n");
    Cow::Owned(
        cleaned
            .chars()
            .filter_map(|c| match c {
                '\r' => Some('\n'),
                c if bad(c) => None,
                c => Some(c),
            })
            .collect(),
    )
}

/// `text` cut to at most `max_bytes` bytes on a character boundary, and whether it was cut.
pub fn cap(text: &str, max_bytes: usize) -> (&str, bool) {
    if text.len() <= max_bytes {
        return (text, false);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

/// Control characters made visible for a terminal: `\x1b[31m` shows as `␛[31m`, never as
/// an escape sequence the terminal would obey.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\n' => '\n',
                '\t' => ' ',
                '\u{1b}' => '␛',
                c if (c as u32) < 0x20 => char::from_u32(0x2400 + c as u32).unwrap_or('�'),
                '\u{7f}' => '␡',
                c if c.is_control() => '�',
                c => c,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_go_and_text_stays() {
        assert_eq!(sanitize("提币\0失败\u{7}了\n\t好"), "提币失败了\n\t好");
        assert_eq!(sanitize("a\r\nb\rc"), "a\nb\nc");
        assert_eq!(sanitize("\u{1b}[2Jclear"), "[2Jclear");
        assert!(matches!(sanitize("plain 文本"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_cap_cuts_on_a_character_boundary() {
        assert_eq!(cap("提币失败", 7), ("提币", true));
        assert_eq!(cap("abc", 3), ("abc", false));
        assert_eq!(cap("", 0), ("", false));
    }

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        assert_eq!(visible("\u{1b}[31mred"), "␛[31mred");
        assert_eq!(visible("a\u{0}b\nc"), "a␀b\nc");
        assert!(matches!(visible("fine\n"), Cow::Borrowed(_)));
    }
}
