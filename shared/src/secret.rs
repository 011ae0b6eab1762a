//! Secret values (provider API keys) that must never reach a log, a response or a panic message.

use std::fmt;

/// A secret string. `Debug` and `Display` print only the masked form; the value leaves this type
/// only through [`SecretString::expose`], which call sites use right where the wire needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The form shown to humans: `sk-…abcd`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretString({})", self.masked())
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Masks a key as `<prefix>…<last 4>`: the prefix up to and including the first `-` (at most 8
/// characters, so `sk-ant-` style prefixes survive), never more than 4 trailing characters, and
/// nothing at all for values too short to hide anything.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return format!("…{}", "*".repeat(chars.len().min(4)));
    }
    let prefix_len = chars.iter().take(8).position(|c| *c == '-').map(|i| i + 1).unwrap_or(0);
    let prefix: String = chars[..prefix_len].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_prefix_and_last_four() {
        assert_eq!(mask("sk-proj-abcdefghijklmnop1234"), "sk-…1234");
        assert_eq!(mask("sk-ant-api03-xxxxxxxxxxxxwxyz"), "sk-…wxyz");
        assert_eq!(mask("abcdefghijklmnopqrstuvwx"), "…uvwx");
        assert_eq!(mask("short"), "…****");
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::new("sk-live-supersecretvalue9876");
        assert!(!format!("{s:?}").contains("supersecret"));
        assert!(!format!("{s}").contains("supersecret"));
        assert_eq!(s.expose(), "sk-live-supersecretvalue9876");
    }
}
