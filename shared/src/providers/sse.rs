//! A small Server-Sent Events decoder for upstream streams. It follows the WHATWG rules that
//! matter for provider streams: events end at a blank line (`\n\n`, `\r\n\r\n` or `\r\r`),
//! `data:` lines of one event are joined with `\n`, one optional space after the colon is
//! dropped, comment lines (`:`) are ignored. Recorded Anthropic streams pad lines with spaces,
//! so field names are trimmed too.

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Accumulates bytes and yields complete events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
}

impl SseDecoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received that do not form a complete event yet.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let (end, sep) = find_blank_line(&self.buffer)?;
            let block: Vec<u8> = self.buffer.drain(..end + sep).take(end).collect();
            if let Some(event) = parse_block(&String::from_utf8_lossy(&block)) {
                return Some(event);
            }
        }
    }
}

/// Position and length of the first event separator.
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        for sep in [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"] {
            if buf[i..].starts_with(sep) {
                return Some((i, sep.len()));
            }
        }
        i += 1;
    }
    None
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent::default();
    let mut data_lines: Vec<&str> = Vec::new();
    for line in block.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field.trim() {
            "event" => event.event = Some(value.trim().to_string()),
            "data" => data_lines.push(value),
            _ => {}
        }
    }
    if data_lines.is_empty() && event.event.is_none() {
        return None;
    }
    event.data = data_lines.join("\n");
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut d = SseDecoder::default();
        d.push(b"event: message_start\ndata: {\"a\":");
        assert_eq!(d.next_event(), None);
        d.push(b"1}\n\n: comment\n\ndata: [DONE]\r\n\r\n");
        assert_eq!(d.next_event(), Some(SseEvent { event: Some("message_start".into()), data: "{\"a\":1}".into() }));
        assert_eq!(d.next_event(), Some(SseEvent { event: None, data: "[DONE]".into() }));
        assert_eq!(d.next_event(), None);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn padded_lines_and_multi_line_data_follow_the_spec() {
        let mut d = SseDecoder::default();
        d.push(b"  event: ping\n  data: {}\n\ndata: a\ndata: b\n\n");
        assert_eq!(d.next_event(), Some(SseEvent { event: Some("ping".into()), data: "{}".into() }));
        assert_eq!(d.next_event().map(|e| e.data), Some("a\nb".into()));
    }
}
