//! OpenAI's embeddings request (`POST /v1/embeddings`), as Maestro reads and checks it.
//!
//! The body is read field by field as JSON ([`EmbeddingsBody`]) so that a field of the wrong
//! type is a 400 naming it, never a panic or a generic parse error; [`EmbeddingsBody::check`]
//! turns it into the typed [`EmbeddingsRequest`] the gateway sends upstream. Fields Maestro does
//! not know are kept in `extra` and passed through unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Most items `input` may hold (OpenAI's limit for an array input).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// The body of `POST /v1/embeddings` as read, before its fields are checked.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EmbeddingsBody {
    #[serde(default)]
    pub model: Value,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub dimensions: Value,
    #[serde(default)]
    pub encoding_format: Value,
    #[serde(default)]
    pub user: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What to embed: OpenAI's four shapes of `input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    /// One text, already tokenized.
    Tokens(Vec<u32>),
    /// Several texts, already tokenized.
    TokenArrays(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// The texts to embed (none for token input).
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        let texts: &[String] = match self {
            Self::Text(text) => std::slice::from_ref(text),
            Self::Texts(texts) => texts,
            Self::Tokens(_) | Self::TokenArrays(_) => &[],
        };
        texts.iter().map(String::as_str)
    }

    /// The tokens given as ids (exact whatever the tokenizer: the provider reads them as they are).
    pub fn given_tokens(&self) -> u64 {
        match self {
            Self::Tokens(tokens) => tokens.len() as u64,
            Self::TokenArrays(arrays) => arrays.iter().map(|a| a.len() as u64).sum(),
            Self::Text(_) | Self::Texts(_) => 0,
        }
    }

    /// Bytes of text to embed.
    pub fn text_bytes(&self) -> usize {
        self.texts().map(str::len).sum()
    }

    /// How many embeddings the answer holds.
    pub fn items(&self) -> usize {
        match self {
            Self::Text(_) | Self::Tokens(_) => 1,
            Self::Texts(texts) => texts.len(),
            Self::TokenArrays(arrays) => arrays.len(),
        }
    }
}

/// `float` (a list of numbers) or `base64` (little-endian float32s, base64-encoded); Maestro
/// passes the answer on as the provider sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingFormat {
    Float,
    Base64,
}

/// A checked embeddings request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    /// `provider/model`, a bare model name or a route name.
    pub model: String,
    pub input: EmbeddingInput,
    pub dimensions: Option<u64>,
    pub encoding_format: Option<EncodingFormat>,
    pub user: Option<String>,
    /// Everything else the caller sent, passed upstream as given.
    pub extra: Map<String, Value>,
}

impl EmbeddingsBody {
    /// `model` when it is a non-empty string (what the call is logged under, even when another
    /// field is wrong).
    pub fn model_name(&self) -> Option<&str> {
        self.model.as_str().filter(|m| !m.trim().is_empty())
    }

    /// Checks every field; a failure is a 400 naming the field (`input[3]` for an item).
    pub fn check(&self) -> Result<EmbeddingsRequest, ApiError> {
        let model = self
            .model_name()
            .ok_or_else(|| ApiError::invalid_param("model", "`model` must be a non-empty string."))?
            .to_string();
        let input = input(&self.input)?;
        let dimensions = match &self.dimensions {
            Value::Null => None,
            value => match value.as_u64() {
                Some(n) if n >= 1 => Some(n),
                _ => {
                    return Err(ApiError::invalid_param(
                        "dimensions",
                        "`dimensions` must be an integer of at least 1.",
                    ));
                }
            },
        };
        let encoding_format = match &self.encoding_format {
            Value::Null => None,
            Value::String(f) if f == "float" => Some(EncodingFormat::Float),
            Value::String(f) if f == "base64" => Some(EncodingFormat::Base64),
            _ => {
                return Err(ApiError::invalid_param(
                    "encoding_format",
                    "`encoding_format` must be `float` or `base64`.",
                ));
            }
        };
        let user = match &self.user {
            Value::Null => None,
            Value::String(user) => Some(user.clone()),
            _ => return Err(ApiError::invalid_param("user", "`user` must be a string.")),
        };
        Ok(EmbeddingsRequest { model, input, dimensions, encoding_format, user, extra: self.extra.clone() })
    }
}

const INPUT_SHAPES: &str = concat!(
    "`input` must be a non-empty string, an array of non-empty strings, an array of token ids, ",
    "or an array of arrays of token ids"
);

fn input(value: &Value) -> Result<EmbeddingInput, ApiError> {
    let bad = |param: &str, message: String| Err(ApiError::invalid_param(param, message));
    let items = match value {
        Value::String(text) if text.is_empty() => return bad("input", "`input` must not be an empty string.".into()),
        Value::String(text) => return Ok(EmbeddingInput::Text(text.clone())),
        Value::Array(items) => items,
        Value::Null => return bad("input", "`input` is required: the text (or texts) to embed.".into()),
        _ => return bad("input", format!("{INPUT_SHAPES}.")),
    };
    if items.is_empty() {
        return bad("input", "`input` must not be an empty array.".into());
    }
    if items.len() > MAX_EMBEDDING_INPUTS {
        return bad(
            "input",
            format!("`input` holds {} items; at most {MAX_EMBEDDING_INPUTS} may be embedded at once.", items.len()),
        );
    }
    // The first item decides which of the array shapes this is; every other must match it.
    match &items[0] {
        Value::String(_) => {
            let mut texts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some("") => return bad(&format!("input[{i}]"), format!("`input[{i}]` is an empty string.")),
                    Some(text) => texts.push(text.to_string()),
                    None => {
                        return bad(
                            &format!("input[{i}]"),
                            format!("`input[{i}]` must be a string, as the first item is."),
                        );
                    }
                }
            }
            Ok(EmbeddingInput::Texts(texts))
        }
        Value::Number(_) => tokens(items, "input").map(EmbeddingInput::Tokens),
        Value::Array(_) => {
            let mut arrays = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let param = format!("input[{i}]");
                match item {
                    Value::Array(ids) if ids.is_empty() => {
                        return bad(&param, format!("`{param}` is an empty array of token ids."));
                    }
                    Value::Array(ids) => arrays.push(tokens(ids, &param)?),
                    _ => return bad(&param, format!("`{param}` must be an array of token ids, as the first item is.")),
                }
            }
            Ok(EmbeddingInput::TokenArrays(arrays))
        }
        _ => bad("input[0]", format!("{INPUT_SHAPES}.")),
    }
}

/// Token ids: integers from 0 to 2³²−1.
fn tokens(items: &[Value], param: &str) -> Result<Vec<u32>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, id)| {
            id.as_u64().and_then(|id| u32::try_from(id).ok()).ok_or_else(|| {
                ApiError::invalid_param(
                    &format!("{param}[{i}]"),
                    format!("`{param}[{i}]` must be a token id (an integer of at least 0)."),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checked(body: Value) -> Result<EmbeddingsRequest, ApiError> {
        serde_json::from_value::<EmbeddingsBody>(body).map_err(|e| ApiError::invalid_request(e.to_string()))?.check()
    }

    fn refused_param(body: Value) -> String {
        match checked(body) {
            Ok(request) => panic!("accepted: {request:?}"),
            Err(e) => {
                assert_eq!(e.status(), 400);
                e.param().unwrap_or_default().to_string()
            }
        }
    }

    #[test]
    fn the_four_input_shapes_are_read() {
        let one = checked(json!({"model": "m", "input": "hi"})).expect("text");
        assert_eq!(one.input, EmbeddingInput::Text("hi".into()));
        let many = checked(json!({"model": "m", "input": ["a", "b"]})).expect("texts");
        assert_eq!(many.input.items(), 2);
        let ids = checked(json!({"model": "m", "input": [1, 2, 3]})).expect("tokens");
        assert_eq!((ids.input.items(), ids.input.given_tokens()), (1, 3));
        let arrays = checked(json!({"model": "m", "input": [[1, 2], [3]]})).expect("token arrays");
        assert_eq!((arrays.input.items(), arrays.input.given_tokens()), (2, 3));
        assert_eq!(serde_json::to_value(&arrays.input).unwrap_or_default(), json!([[1, 2], [3]]));
    }

    #[test]
    fn options_are_typed_and_unknown_fields_kept() {
        let r = checked(json!({"model": "m", "input": "x", "dimensions": 256, "encoding_format": "base64",
            "user": "u", "seed": 1}))
        .expect("request");
        assert_eq!(r.dimensions, Some(256));
        assert_eq!(r.encoding_format, Some(EncodingFormat::Base64));
        assert_eq!(r.user.as_deref(), Some("u"));
        assert_eq!(r.extra.get("seed"), Some(&json!(1)));
    }

    #[test]
    fn bad_input_is_a_400_naming_the_field() {
        assert_eq!(refused_param(json!({"input": "x"})), "model");
        assert_eq!(refused_param(json!({"model": 3, "input": "x"})), "model");
        assert_eq!(refused_param(json!({"model": "m"})), "input");
        assert_eq!(refused_param(json!({"model": "m", "input": ""})), "input");
        assert_eq!(refused_param(json!({"model": "m", "input": []})), "input");
        assert_eq!(refused_param(json!({"model": "m", "input": {"text": "x"}})), "input");
        assert_eq!(refused_param(json!({"model": "m", "input": ["a", ""]})), "input[1]");
        assert_eq!(refused_param(json!({"model": "m", "input": ["a", 1]})), "input[1]");
        assert_eq!(refused_param(json!({"model": "m", "input": [1, -2]})), "input[1]");
        assert_eq!(refused_param(json!({"model": "m", "input": [1, 1.5]})), "input[1]");
        assert_eq!(refused_param(json!({"model": "m", "input": [[1], []]})), "input[1]");
        assert_eq!(refused_param(json!({"model": "m", "input": [[1], [2, "x"]]})), "input[1][1]");
        assert_eq!(refused_param(json!({"model": "m", "input": [true]})), "input[0]");
        let too_many: Vec<&str> = vec!["a"; MAX_EMBEDDING_INPUTS + 1];
        assert_eq!(refused_param(json!({"model": "m", "input": too_many})), "input");
        assert!(checked(json!({"model": "m", "input": vec!["a"; MAX_EMBEDDING_INPUTS]})).is_ok());
        assert_eq!(refused_param(json!({"model": "m", "input": "x", "dimensions": 0})), "dimensions");
        assert_eq!(refused_param(json!({"model": "m", "input": "x", "dimensions": "8"})), "dimensions");
        assert_eq!(refused_param(json!({"model": "m", "input": "x", "encoding_format": "int8"})), "encoding_format");
        assert_eq!(refused_param(json!({"model": "m", "input": "x", "user": 7})), "user");
    }
}
