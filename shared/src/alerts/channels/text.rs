//! The words of a notification, shared by the formats: the headline, the reminder line, the
//! details and the closing facts, times for humans, and cutting text to a platform's limit on a
//! character boundary.

use chrono::{TimeZone, Utc};

use super::{Notification, NotificationState};

const MAX_TITLE_BYTES: usize = 256;
const MAX_LABEL_BYTES: usize = 64;
const MAX_VALUE_BYTES: usize = 512;
const MAX_NAME_BYTES: usize = 128;
/// E-mail has no tight limit; this only keeps a runaway list of details from making a huge one.
const MAX_EMAIL_BYTES: usize = 64 * 1024;

pub(super) const REMINDER: &str = "Reminder: this alert is still firing.";

/// `[FIRING] title`, `[FIRING, reminder] title` or `[RESOLVED] title`: the line every format
/// leads with (and the subject of an e-mail).
pub(super) fn headline(n: &Notification) -> String {
    let title = one_line(&n.title, MAX_TITLE_BYTES);
    match (n.state, n.repeat) {
        (NotificationState::Firing, false) => format!("[FIRING] {title}"),
        (NotificationState::Firing, true) => format!("[FIRING, reminder] {title}"),
        (NotificationState::Resolved, _) => format!("[RESOLVED] {title}"),
    }
}

/// Whether the message says it is a reminder.
pub(super) fn is_reminder(n: &Notification) -> bool {
    n.repeat && n.state == NotificationState::Firing
}

/// The caller's label and value lines, each made one line and cut short.
pub(super) fn details(n: &Notification) -> Vec<(String, String)> {
    n.details
        .iter()
        .map(|(label, value)| (one_line(label, MAX_LABEL_BYTES), one_line(value, MAX_VALUE_BYTES)))
        .collect()
}

/// What closes every message: the rule, its kind, when it started and when this was said
/// (`resolved` for a resolution).
pub(super) fn footer(n: &Notification) -> Vec<(&'static str, String)> {
    let last = if n.state == NotificationState::Resolved { "resolved" } else { "at" };
    vec![
        ("alert", one_line(&n.alert, MAX_NAME_BYTES)),
        ("kind", one_line(&n.kind, MAX_NAME_BYTES)),
        ("started", when(n.started_at_ms)),
        (last, when(n.at_ms)),
    ]
}

/// The footer on one line: `alert: x · kind: y · started: … · at: …`.
pub(super) fn footer_line(n: &Notification) -> String {
    footer(n).iter().map(|(label, value)| format!("{label}: {value}")).collect::<Vec<_>>().join(" · ")
}

/// `2026-11-26 10:00:00 UTC`.
pub(super) fn when(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// `text` on one line (control characters become spaces), trimmed, cut to `max` bytes.
pub(super) fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cut(flat.trim(), max)
}

/// `text` in at most `max` bytes, cut on a character boundary and ended with `…` when cut.
pub(super) fn cut(text: &str, max: usize) -> String {
    const ELLIPSIS: &str = "…";
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end])
}

/// `head`, as many of `lines` as fit, and `tail`, joined by `sep` (empty parts left out), in at
/// most `max` bytes. Lines that do not fit are dropped from the end and counted in one
/// `omitted(count)` line in their place; a head or tail too long on its own is cut.
pub(super) fn fit(
    head: &str,
    lines: &[String],
    tail: &str,
    sep: &str,
    max: usize,
    omitted: impl Fn(usize) -> String,
) -> String {
    let join = |parts: Vec<&str>| parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(sep);
    let mut parts = vec![head];
    parts.extend(lines.iter().map(String::as_str));
    parts.push(tail);
    let whole = join(parts);
    if whole.len() <= max {
        return whole;
    }
    let mut used = head.len() + tail.len() + omitted(lines.len()).len() + 3 * sep.len();
    let mut kept = 0;
    for line in lines {
        if used + line.len() + sep.len() > max {
            break;
        }
        used += line.len() + sep.len();
        kept += 1;
    }
    let marker = omitted(lines.len() - kept);
    let mut parts = vec![head];
    parts.extend(lines[..kept].iter().map(String::as_str));
    parts.push(&marker);
    parts.push(tail);
    cut(&join(parts), max)
}

/// An e-mail's subject (the headline) and plain-text body.
pub(super) fn email(n: &Notification) -> (String, String) {
    let subject = headline(n);
    let mut head = subject.clone();
    if is_reminder(n) {
        head.push('\n');
        head.push_str(REMINDER);
    }
    head.push('\n');
    let lines: Vec<String> = details(n).into_iter().map(|(label, value)| format!("{label}: {value}")).collect();
    let tail: Vec<String> = footer(n).into_iter().map(|(label, value)| format!("{label}: {value}")).collect();
    let tail = format!("\n{}\n", tail.join("\n"));
    let body = fit(&head, &lines, &tail, "\n", MAX_EMAIL_BYTES, |k| format!("… {k} more"));
    (subject, body)
}
