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

/// Read from configuration as a plain string, kept masked from then on.
impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretString::new)
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

/// The shortest run of a secret's characters that counts as a leak: shorter runs are shared
/// with public prefixes (`sk-proj-`) and mean nothing; 12 characters of a key are a real part.
const MIN_LEAKED_CHARS: usize = 12;

/// `text` with every part of `secret` that appears in it redacted: the whole secret, any run of
/// at least [`MIN_LEAKED_CHARS`] of its characters (an echo cut short, or the head of the key),
/// and the same in the forms an upstream may echo it in: percent-encoded (upper or lower case
/// hex, every byte or only the reserved ones) and JSON-escaped. A redacted run reads `[redacted]`.
pub fn redact(text: &str, secret: &str) -> String {
    let secret = secret.trim();
    if secret.chars().count() < MIN_LEAKED_CHARS {
        // Too short to find fragments of; only the whole value.
        return if secret.is_empty() { text.to_string() } else { text.replace(secret, REDACTED) };
    }
    let mut marked = vec![false; text.len()];
    for (form, window) in encoded_forms(secret) {
        mark_runs(text.as_bytes(), form.as_bytes(), window, &mut marked);
    }
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for (i, c) in text.char_indices() {
        if marked[i..i + c.len_utf8()].iter().any(|m| *m) {
            if !in_run {
                out.push_str(REDACTED);
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

/// What stands in for a secret that was taken out of a text.
pub const REDACTED: &str = "[redacted]";

/// Beginnings of API keys (providers' and Maestro's own `mk-`): a word starting with one and
/// longer than it by at least [`MIN_KEY_BODY_CHARS`] reads as a key.
const KEY_PREFIXES: &[&str] = &["sk-", "sk_", "mk-", "pk-", "rk-", "gsk_", "xai-", "AIza", "ghp_"];
const MIN_KEY_BODY_CHARS: usize = 8;
/// A word this long mixing upper case, lower case and digits reads as a random key or token
/// (hex ids and UUIDs, lower case only, stay).
const MIN_OPAQUE_TOKEN_CHARS: usize = 32;
/// The shortest word after `Bearer` / `Basic` taken for a credential (shorter is prose: "a Bearer
/// token").
const MIN_SCHEME_TOKEN_CHARS: usize = 8;

/// `text` with whatever reads as a credential replaced by [`REDACTED`], whoever's it is: the
/// token after `Bearer` or `Basic` (any case), a word that starts like an API key (`sk-…`,
/// `mk-…`, …), and a long opaque word mixing upper case, lower case and digits. For texts from
/// elsewhere (a provider's error message) that may echo a key other than the one Maestro knows
/// it sent ([`redact`] finds that one in every form).
pub fn scrub_credentials(text: &str) -> String {
    /// Where the scan is with respect to an authorization scheme's word.
    #[derive(PartialEq, Eq)]
    enum Scheme {
        None,
        /// Just after `Bearer` or `Basic`.
        Named,
        /// After it and the spaces that follow: the credential comes next.
        Spaced,
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || "-_+/=".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut scheme = Scheme::None;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if scheme == Scheme::Spaced && !c.is_whitespace() {
            // The credential itself: everything up to a space or a closing mark (a JWT has dots).
            let end = rest.find(|c: char| c.is_whitespace() || "\"'`,;)]}>".contains(c)).unwrap_or(rest.len());
            let token = &rest[..end];
            let credential = token.chars().count() >= MIN_SCHEME_TOKEN_CHARS || looks_like_key(token);
            out.push_str(if credential { REDACTED } else { token });
            scheme = Scheme::None;
            rest = &rest[end..];
        } else if is_word(c) {
            let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
            let word = &rest[..end];
            out.push_str(if looks_like_key(word) { REDACTED } else { word });
            let named = word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("basic");
            scheme = if named { Scheme::Named } else { Scheme::None };
            rest = &rest[end..];
        } else {
            out.push(c);
            scheme = if c.is_whitespace() && scheme != Scheme::None { Scheme::Spaced } else { Scheme::None };
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Whether a word (ASCII letters, digits, `-_+/=`) reads as an API key or a random token.
fn looks_like_key(word: &str) -> bool {
    let prefixed = KEY_PREFIXES.iter().any(|p| word.starts_with(p) && word.len() >= p.len() + MIN_KEY_BODY_CHARS);
    let opaque = word.len() >= MIN_OPAQUE_TOKEN_CHARS
        && word.bytes().any(|b| b.is_ascii_uppercase())
        && word.bytes().any(|b| b.is_ascii_lowercase())
        && word.bytes().any(|b| b.is_ascii_digit());
    prefixed || opaque
}

/// The forms a secret may be echoed in, each with the window (in bytes) that stands for
/// [`MIN_LEAKED_CHARS`] characters of it.
fn encoded_forms(secret: &str) -> Vec<(String, usize)> {
    let every_byte = |hex: fn(u8) -> String| secret.bytes().map(hex).collect::<String>();
    let reserved_only = |hex: fn(u8) -> String| {
        secret
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { hex(b) })
            .collect::<String>()
    };
    let upper: fn(u8) -> String = |b| format!("%{b:02X}");
    let lower: fn(u8) -> String = |b| format!("%{b:02x}");
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    vec![
        (secret.to_string(), MIN_LEAKED_CHARS),
        (reserved_only(upper), MIN_LEAKED_CHARS),
        (reserved_only(lower), MIN_LEAKED_CHARS),
        (every_byte(upper), 3 * MIN_LEAKED_CHARS),
        (every_byte(lower), 3 * MIN_LEAKED_CHARS),
        (json, MIN_LEAKED_CHARS),
    ]
}

/// Marks every byte of `text` covered by a `window`-byte slice that also occurs in `form`.
fn mark_runs(text: &[u8], form: &[u8], window: usize, marked: &mut [bool]) {
    if form.len() < window || text.len() < window {
        return;
    }
    let pieces: std::collections::HashSet<&[u8]> = form.windows(window).collect();
    for (i, piece) in text.windows(window).enumerate() {
        if pieces.contains(piece) {
            marked[i..i + window].iter_mut().for_each(|m| *m = true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_finds_the_key_whole_cut_short_and_encoded() {
        let key = "sk-proj-Ab+cd/ef=0123456789ghijKLMN";
        let whole = redact(&format!("Incorrect API key provided: {key}."), key);
        assert_eq!(whole, "Incorrect API key provided: [redacted].");
        let truncated = redact("key sk-proj-Ab+cd/ef=01234… is invalid", key);
        assert!(!truncated.contains("Ab+cd/ef=0123"), "{truncated}");
        let tail = redact("ends with 0123456789ghijKLMN", key);
        assert_eq!(tail, "ends with [redacted]");
        let encoded = redact("url: https://x/?key=sk-proj-Ab%2Bcd%2Fef%3D0123456789ghij", key);
        assert!(!encoded.contains("0123456789"), "{encoded}");
        let lower = redact("key=sk-proj-Ab%2bcd%2fef%3d0123456789ghij", key);
        assert!(!lower.contains("0123456789"), "{lower}");
        let all: String = key.bytes().take(20).map(|b| format!("%{b:02X}")).collect();
        assert!(!redact(&format!("raw {all}"), key).contains("%30%31%32"), "every byte encoded");
        // A key with a backslash, echoed inside JSON (where the backslash is doubled).
        let escaped = redact(r#"{"key":"sk-proj-Ab\\cd0123456789"}"#, "sk-proj-Ab\\cd0123456789");
        assert!(!escaped.contains("0123456789"), "{escaped}");
        // What OpenAI itself shows (prefix, stars, last four) and public prefixes stay.
        let masked = redact("Incorrect API key provided: sk-proj-****KLMN. See sk-proj- keys.", key);
        assert_eq!(masked, "Incorrect API key provided: sk-proj-****KLMN. See sk-proj- keys.");
        assert_eq!(redact("nothing here", key), "nothing here");
    }

    #[test]
    fn credentials_of_anyone_are_scrubbed_and_prose_ids_and_masks_stay() {
        let text = "Key sk-ant-api03-Zx9Qw8Er7Ty6 was refused; header `Authorization: Bearer gw.tok3n-ABCDEFGH`, \
                    basic dXNlcjpwYXNzd29yZA==, caller mk-Ab12Cd34Ef56Gh78, token Q2xhdWRlQXV0aDEyMzQ1Njc4OTBhYmNkZWZn.";
        assert_eq!(
            scrub_credentials(text),
            "Key [redacted] was refused; header `Authorization: Bearer [redacted]`, basic [redacted], \
             caller [redacted], token [redacted]."
        );
        let kept = "request req_0193f1c2a7b84e5f9d3c2b1a0f9e8d7c (id 0193f1c2-a7b8-4e5f-9d3c-2b1a0f9e8d7c) needs \
                    a Bearer token; see sk-proj- keys, sk-proj-****KLMN, /v1/chat/completions.";
        assert_eq!(scrub_credentials(kept), kept);
        assert_eq!(scrub_credentials("Bearer   abcdefgh1234 and bearer\nxyz"), "Bearer   [redacted] and bearer\nxyz");
        assert_eq!(scrub_credentials("模型过载 sk-abcdefgh12345678，请稍后"), "模型过载 [redacted]，请稍后");
    }

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
