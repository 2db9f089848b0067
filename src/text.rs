//! What counts as acceptable, visible text in names, topics, profiles and messages.
//!
//! Two questions, asked by every validated text type (`DisplayName`, `RoomName`,
//! `MessageBody`, …):
//! - `has_forbidden`: does the text hold control characters or the invisible characters used
//!   to spoof text — bidirectional embeddings, overrides and isolates ("Trojan Source"), the
//!   zero-width space, word joiner and invisible operators, the BOM, interlinear annotation
//!   marks? The zero-width (non-)joiner and the left-to-right / right-to-left marks stay
//!   allowed: emoji sequences (👨‍👩‍👧), Persian and Indic scripts and mixed-direction text need them.
//! - `is_blank`: does the text show nothing at all — only whitespace and characters that render
//!   as nothing (Hangul fillers, the braille blank, variation selectors, joiners, tags…)? A name
//!   or message made only of those would look empty or impersonate an empty one.

/// Control characters (newline, carriage return and tab only when `allow_newline`), the
/// Unicode line and paragraph separators (likewise), and invisible characters that can make
/// text read differently from what it is.
pub fn has_forbidden(s: &str, allow_newline: bool) -> bool {
    s.chars().any(|c| {
        if matches!(c, '\u{2028}' | '\u{2029}') {
            return !allow_newline;
        }
        let spoofing = matches!(
            c,
            '\u{200B}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        );
        spoofing || (c.is_control() && !(allow_newline && matches!(c, '\n' | '\r' | '\t')))
    })
}

/// True when no character of `s` would show: whitespace and characters that render as nothing.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || renders_as_nothing(c))
}

/// `s` without the characters that render as nothing (joiners, direction marks, variation
/// selectors, fillers…): what a reader sees, for comparing names that must look different.
pub fn visible_only(s: &str) -> String {
    s.chars().filter(|c| !renders_as_nothing(*c)).collect()
}

/// Default-ignorable code points and the "filler" letters that display as blank space.
fn renders_as_nothing(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofing_and_control_characters_are_forbidden() {
        for bad in [
            "a\u{202E}b",
            "a\u{2066}b",
            "a\u{200B}b",
            "\u{FEFF}a",
            "a\u{0007}",
            "a\u{0085}",
        ] {
            assert!(has_forbidden(bad, true), "{bad:?}");
        }
        assert!(has_forbidden("a\nb", false));
        assert!(has_forbidden("a\u{2028}b", false) && has_forbidden("a\u{2029}b", false));
        assert!(!has_forbidden("a\u{2028}b", true));
        assert!(!has_forbidden("a\nb\tc", true));
    }

    #[test]
    fn joiners_and_direction_marks_stay_allowed() {
        for good in [
            "👨\u{200D}👩\u{200D}👧",
            "می\u{200C}خواهم",
            "abc \u{200F}שלום",
            "❤\u{FE0F}",
        ] {
            assert!(!has_forbidden(good, false), "{good:?}");
            assert!(!is_blank(good), "{good:?}");
        }
    }

    #[test]
    fn text_that_shows_nothing_is_blank() {
        for blank in [
            "",
            "   ",
            "\u{3164}",
            "\u{3164}\u{3164}",
            "\u{115F}\u{1160}",
            "\u{2800}",
            " \u{FE0F} ",
            "\u{200D}",
        ] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for shown in ["a", " x ", "\u{3164}a", "🙂"] {
            assert!(!is_blank(shown), "{shown:?}");
        }
        assert_eq!(visible_only("gen\u{200C}er\u{200E}al\u{FE0F}"), "general");
    }
}
