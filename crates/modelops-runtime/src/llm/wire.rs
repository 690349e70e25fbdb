//! OpenAI's chat-completions wire format (the part we send and read) and
//! the server-sent events its streaming answers come in.

use super::spec::Role;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<ChatMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<&'a serde_json::Value>,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChatMessage {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct StreamOptions {
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChatResponse {
    #[serde(default)]
    pub choices: Vec<Choice>,
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    pub message: Option<AnswerMessage>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AnswerMessage {
    pub content: Option<String>,
    /// Set instead of `content` when the model refuses (OpenAI).
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// One `data:` payload of a streaming answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Chunk {
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    pub usage: Option<WireUsage>,
    /// Some servers report a failure inside the stream.
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChunkChoice {
    pub delta: Option<Delta>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Delta {
    pub content: Option<String>,
    pub refusal: Option<String>,
}

/// The largest event (or line) buffered while a stream is read.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// A server-sent-events decoder: bytes in (cut anywhere), the `data` of
/// each complete event out. Other fields (`event`, `id`, `retry`) and
/// comments are skipped; lines end in LF or CRLF.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds `bytes`, returning the events they complete. Fails when a line
    /// or an event grows past the bound or is not UTF-8.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut events = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                if self.line.len() > MAX_EVENT_BYTES {
                    return Err(format!(
                        "a stream line is longer than {MAX_EVENT_BYTES} bytes"
                    ));
                }
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.is_empty() {
                events.extend(self.data.take());
                continue;
            }
            let line =
                String::from_utf8(line).map_err(|_| "a stream line is not UTF-8".to_string())?;
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            if field == "data" {
                let value = value.strip_prefix(' ').unwrap_or(value);
                let data = match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                        data
                    }
                    None => self.data.insert(value.to_string()),
                };
                if data.len() > MAX_EVENT_BYTES {
                    return Err(format!(
                        "a stream event is longer than {MAX_EVENT_BYTES} bytes"
                    ));
                }
            }
        }
        Ok(events)
    }

    /// The event left when the body ends without a blank line.
    pub fn finish(&mut self) -> Option<String> {
        self.data.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_cut_anywhere_are_reassembled() {
        let text = ": keep-alive\n\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: first\ndata: second\n\ndata:[DONE]\n\n";
        for cut in 1..text.len() {
            let mut d = SseDecoder::default();
            let mut events = d.push(&text.as_bytes()[..cut]).unwrap();
            events.extend(d.push(&text.as_bytes()[cut..]).unwrap());
            assert_eq!(
                events,
                vec!["{\"a\":1}", "first\nsecond", "[DONE]"],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn an_unbounded_line_is_refused() {
        let mut d = SseDecoder::default();
        assert!(d
            .push(&vec![b'x'; MAX_EVENT_BYTES + 1])
            .unwrap_err()
            .contains("longer than"));
    }
}
