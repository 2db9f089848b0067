//! Validated account fields. Parse, don't validate: holding a `Username` means it is valid.
//!
//! Limits (documented in README.md):
//! - username: 3–32 of `[a-z0-9_.-]`; ASCII input is lower-cased first, so `Alice` is `alice`.
//! - password: 8–128 characters.
//! - display name: 1–64 characters, no control characters (empty clears it).
//! - bio: up to 500 characters, no control characters other than newlines.
//! - avatar URL: an `http`/`https` URL without credentials, up to 2048 characters once normalised.
//! - display names and bios refuse control and spoofing characters (`crate::text`); a display
//!   name made only of characters that show nothing (e.g. Hangul fillers) is refused.

use std::fmt;

use crate::error::Error;
use crate::text::{has_forbidden, is_blank};

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const DISPLAY_NAME_MAX: usize = 64;
pub const BIO_MAX: usize = 500;
pub const AVATAR_URL_MAX: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, Error> {
        // ASCII-only before lower-casing: Unicode lower-casing maps some non-ASCII letters onto
        // ASCII ones (the Kelvin sign K becomes `k`), which would let a look-alike name in.
        let name = input.to_ascii_lowercase();
        let len = name.chars().count();
        let charset_ok = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) || !charset_ok {
            return Err(Error::invalid(
                "invalid_username",
                format!("username must be {USERNAME_MIN}-{USERNAME_MAX} characters of a-z, 0-9, '_', '.', '-'"),
            ));
        }
        Ok(Self(name))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(input: String) -> Result<Self, Error> {
        let len = input.chars().count();
        if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
            return Err(Error::invalid(
                "invalid_password",
                format!("password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters"),
            ));
        }
        Ok(Self(input))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// `None` means "cleared": an empty (or all-blank) display name removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(Option<String>);

impl DisplayName {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim();
        let blank = !trimmed.is_empty() && is_blank(trimmed);
        if trimmed.chars().count() > DISPLAY_NAME_MAX || blank || has_forbidden(trimmed, false) {
            return Err(Error::invalid(
                "invalid_display_name",
                format!(
                    "display_name must be at most {DISPLAY_NAME_MAX} visible characters without control or invisible characters"
                ),
            ));
        }
        Ok(Self((!trimmed.is_empty()).then(|| trimmed.to_string())))
    }
    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bio(Option<String>);

impl Bio {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim();
        if trimmed.chars().count() > BIO_MAX || has_forbidden(trimmed, true) {
            return Err(Error::invalid(
                "invalid_bio",
                format!("bio must be at most {BIO_MAX} characters without control characters"),
            ));
        }
        Ok(Self((!trimmed.is_empty()).then(|| trimmed.to_string())))
    }
    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarUrl(Option<String>);

impl AvatarUrl {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Ok(Self(None));
        }
        let bad = || {
            Error::invalid(
                "invalid_avatar_url",
                format!("avatar_url must be an http or https URL of at most {AVATAR_URL_MAX} characters"),
            )
        };
        let url = url::Url::parse(trimmed).map_err(|_| bad())?;
        // Credentials in a public URL are a leak waiting to happen.
        let has_credentials = !url.username().is_empty() || url.password().is_some();
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || has_credentials {
            return Err(bad());
        }
        // The limit applies to what is stored: the normalised (percent-encoded) form.
        let normalised = url.to_string();
        if normalised.len() > AVATAR_URL_MAX {
            return Err(bad());
        }
        Ok(Self(Some(normalised)))
    }
    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_bounded() {
        assert_eq!(Username::parse("Alice_1.x-y").unwrap().as_str(), "alice_1.x-y");
        // The Kelvin sign lower-cases to an ASCII `k` under Unicode rules; it must not pass.
        for bad in [
            "ab",
            &"a".repeat(33),
            "al ice",
            "al!ce",
            "",
            "élan",
            "\u{212A}elvin",
            "\u{130}van",
        ] {
            assert_eq!(Username::parse(bad).unwrap_err().code(), "invalid_username", "{bad}");
        }
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn passwords_count_characters_and_hide_in_debug() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("ééééééééé".into()).is_ok());
        assert!(Password::parse("x".repeat(129)).is_err());
        let p = Password::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn profile_fields() {
        assert_eq!(DisplayName::parse("  ").unwrap().into_inner(), None);
        assert!(DisplayName::parse(&"x".repeat(65)).is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(Bio::parse("line one\nline two").is_ok());
        assert!(AvatarUrl::parse("javascript:alert(1)").is_err());
        assert!(AvatarUrl::parse("https://example.com/a.png").is_ok());
        assert!(AvatarUrl::parse("https://user:pw@example.com/a.png").is_err());
        let long_unicode = format!("https://e.com/{}", "é".repeat(400));
        assert!(
            AvatarUrl::parse(&long_unicode).is_err(),
            "6 bytes each once percent-encoded"
        );
        assert!(DisplayName::parse("evil\u{202E}gnp.exe").is_err());
        assert!(DisplayName::parse("zero\u{200B}width").is_err());
        assert!(
            DisplayName::parse("\u{3164}\u{3164}").is_err(),
            "Hangul fillers show nothing"
        );
        assert!(
            DisplayName::parse("Ana \u{1F469}\u{200D}\u{1F4BB}").is_ok(),
            "emoji ZWJ sequence"
        );
    }
}
