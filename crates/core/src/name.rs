//! Names people read: reviewers' names and labels. A name is stored in Unicode NFKC form
//! (so `ｒ１` and `r1` are one name) and may not hold an invisible character — a format
//! control (general category Cf: zero-width spaces and joiners, bidi embeddings,
//! overrides and isolates, the BOM) or another default-ignorable code point (variation
//! selectors, Hangul fillers) — so two names that look alike are one name or refused.

use unicode_normalization::UnicodeNormalization;

use crate::ValidationError;

/// Whether `c` is invisible: Unicode's `Default_Ignorable_Code_Point`, or a format
/// control (Cf) that shows nothing on its own.
pub fn invisible(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// `s` in NFKC form, or an error naming `field` when it holds an invisible or bidi
/// control character (the error says which, as `U+XXXX`).
pub fn normalise(field: &str, s: &str) -> Result<String, ValidationError> {
    if let Some(c) = s.chars().find(|c| invisible(*c)) {
        return Err(ValidationError::new(
            field,
            format!(
                "{field} holds an invisible or bidi control character (U+{:04X}); names are written in visible characters only",
                c as u32
            ),
        ));
    }
    let n: String = s.nfkc().collect();
    // NFKC of a visible character is visible, but check what is stored, not what was sent.
    if let Some(c) = n.chars().find(|c| invisible(*c)) {
        return Err(ValidationError::new(
            field,
            format!("{field} normalises to an invisible character (U+{:04X})", c as u32),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_are_one_name_or_refused() {
        assert_eq!(normalise("name", "r1").unwrap(), "r1");
        assert_eq!(normalise("name", "ｒ１").unwrap(), "r1", "fullwidth folds to ASCII");
        assert_eq!(normalise("name", "ﬁne").unwrap(), "fine");
        assert_eq!(normalise("name", "Zoë").unwrap(), "Zoë");
        for bad in [
            "r1\u{200b}",
            "\u{202e}r1",
            "a\u{2066}b\u{2069}",
            "\u{feff}x",
            "x\u{fe0f}",
            "\u{e0041}",
        ] {
            let e = normalise("labels[0]", bad).unwrap_err();
            assert_eq!(e.field, "labels[0]");
            assert!(e.message.contains("U+"), "{}", e.message);
        }
    }
}
