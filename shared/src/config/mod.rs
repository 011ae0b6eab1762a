//! Configuration, one module for every process: the local runner's file (`maestro serve --config
//! maestro.toml`: several keys per provider with priorities and limits, extra providers, model
//! overrides and routes; unknown fields are an error so a typo never passes silently) and the
//! environment ([`Env`]: the Lambda functions' settings, and the variables the local runner
//! reads), with one error type.

mod env;

pub use env::{DEFAULT_INVOCATION_MARGIN_SECS, DEFAULT_MAX_BODY_BYTES, Env};

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::cache::{CachePolicy, CacheScope};
use crate::domain::{ProviderKind, Route};
use crate::gateway::RetryPolicy;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub server: ServerConfig,
    pub retry: RetryPolicy,
    pub providers: Vec<ProviderConfig>,
    pub keys: Vec<KeyConfig>,
    pub models: Vec<ModelConfig>,
    pub routes: Vec<Route>,
    pub credits: CreditsConfig,
    /// `[alerting]`: how often alert rules are evaluated, reminders, e-mail.
    pub alerting: crate::alerts::rules::AlertingConfig,
    /// `[[alert_channels]]`: where alerts are sent.
    pub alert_channels: Vec<crate::alerts::channels::ChannelConfig>,
    /// `[[alerts]]`: the rules.
    pub alerts: Vec<crate::alerts::rules::AlertRule>,
}

/// `[credits]`: users' balances that every call draws on (off unless `enabled`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreditsConfig {
    pub enabled: bool,
    /// What a call is charged: its cost times this (default 1).
    pub markup: Option<f64>,
    /// Per `provider/model`, instead of `markup`.
    pub model_markup: BTreeMap<String, f64>,
    /// Where every settled charge is posted as a `credit.charge` event (the local runner).
    pub webhook_url: Option<String>,
    /// Signs each post: `x-maestro-signature: sha256=<HMAC-SHA256 of the body>`.
    pub webhook_secret: Option<crate::secret::SecretString>,
}

impl CreditsConfig {
    /// The webhook's URL, checked: `http://` or `https://`.
    pub fn webhook(&self) -> Result<Option<String>, ConfigError> {
        match self.webhook_url.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => Ok(Some(url.to_string())),
            Some(url) => Err(ConfigError::Invalid(format!("[credits] webhook_url `{url}` must start with https://"))),
        }
    }

    pub fn markup(&self) -> Result<crate::pricing::CreditMarkup, ConfigError> {
        let per_model: Vec<(String, f64)> = self.model_markup.iter().map(|(k, v)| (k.clone(), *v)).collect();
        crate::pricing::CreditMarkup::new(self.markup.unwrap_or(1.0), &per_model)
            .map_err(|message| ConfigError::Invalid(format!("[credits]: {message}")))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Largest request body accepted; bigger ones get 413.
    pub max_body_bytes: usize,
    /// Seconds a container reuses its copy of the catalog.
    pub catalog_ttl_secs: u64,
    /// The local runner's connection limit; more connections wait in the kernel's backlog.
    /// 0 (the default): 4,096, or fewer when the process may open fewer files.
    pub max_connections: usize,
    /// Seconds a connection may take to send a request's headers, counted from its start or
    /// from the last answer (so idle kept-alive connections are closed too).
    pub header_timeout_secs: u64,
    /// Seconds a request's body may take to arrive (408 after that).
    pub body_timeout_secs: u64,
    /// Largest request head (request line and headers) the local runner reads.
    pub max_header_bytes: usize,
    /// Seconds the local runner waits at shutdown for open calls; then running streams are
    /// ended with an in-band error and recorded.
    pub shutdown_timeout_secs: u64,
    /// Origins whose browser pages may call Maestro (CORS), as `https://app.example.com`, or
    /// `["*"]` for any; empty (the default): no CORS. `MAESTRO_CORS_ORIGINS` (comma-separated)
    /// takes precedence.
    pub cors_origins: Vec<String>,
    /// `GET /metrics` answers without a token (Prometheus scrapes from a trusted network);
    /// `MAESTRO_METRICS_PUBLIC` (`1`/`0`) takes precedence. Default: an admin token is required.
    pub metrics_public: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            catalog_ttl_secs: 5,
            max_connections: 0,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_header_bytes: 32 * 1024,
            shutdown_timeout_secs: 30,
            cors_origins: Vec::new(),
            metrics_public: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub code: String,
    pub kind: ProviderKind,
    pub name: Option<String>,
    /// Defaults to the kind's public endpoint; required for `openai_compatible`.
    pub base_url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default = "default_sort_order")]
    pub sort_order: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub provider: String,
    pub name: String,
    /// The key itself; prefer `secret_env` so the file holds no secret.
    pub secret: Option<String>,
    /// Name of the environment variable that holds the key.
    pub secret_env: Option<String>,
    #[serde(default)]
    pub priority: i64,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub rpd: Option<u64>,
    #[serde(default = "yes")]
    pub is_active: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub provider: String,
    pub model: String,
    /// `chat` (the default) or `embedding` (served by `POST /v1/embeddings` only).
    #[serde(default = "chat_model_type")]
    pub model_type: String,
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u64>,
    #[serde(default = "yes")]
    pub supports_streaming: bool,
    #[serde(default)]
    pub supports_tools: bool,
    #[serde(default)]
    pub supports_vision: bool,
    /// Micro-USD per million tokens.
    #[serde(default)]
    pub input_price: u64,
    pub cached_input_price: Option<u64>,
    pub cache_write_price: Option<u64>,
    #[serde(default)]
    pub output_price: u64,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default)]
    pub is_default: bool,
    /// Drop parameters the provider cannot honour (`n` > 1, `logprobs`) instead of refusing them.
    #[serde(default)]
    pub drop_params: bool,
    /// The response cache for calls naming this model (see `crate::cache`).
    pub cache_ttl_secs: Option<u64>,
    #[serde(default)]
    pub cache_scope: CacheScope,
    #[serde(default)]
    pub cache_sampled: bool,
}

impl ModelConfig {
    pub fn cache(&self) -> CachePolicy {
        CachePolicy { ttl_secs: self.cache_ttl_secs, scope: self.cache_scope, sampled: self.cache_sampled }
    }
}

fn yes() -> bool {
    true
}

fn chat_model_type() -> String {
    crate::domain::CHAT_MODEL_TYPE.to_string()
}

fn default_sort_order() -> i64 {
    100
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name} is invalid: {message}")]
    Setting { name: &'static str, message: String },
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.display().to_string(), message },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Self =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: String::new(), message: e.to_string() })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.credits.markup()?;
        self.credits.webhook()?;
        for p in &self.providers {
            if p.kind == ProviderKind::OpenaiCompatible && p.base_url.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "provider `{}` is openai_compatible and needs a base_url",
                    p.code
                )));
            }
            if p.code.is_empty() || p.code.contains('/') {
                return Err(ConfigError::Invalid(format!(
                    "provider code `{}` must be non-empty and contain no `/`",
                    p.code
                )));
            }
        }
        for m in &self.models {
            let t = &m.model_type;
            if t.is_empty() || t.len() > 32 || !t.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Err(ConfigError::Invalid(format!(
                    "model `{}/{}`: model_type must be 1–32 of a-z _ (`chat`, `embedding`)",
                    m.provider, m.model
                )));
            }
        }
        for k in &self.keys {
            if k.secret.is_none() && k.secret_env.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "key `{}` of `{}` needs `secret` or `secret_env`",
                    k.name, k.provider
                )));
            }
        }
        for m in &self.models {
            if let Some((_, message)) = m.cache().problem() {
                return Err(ConfigError::Invalid(format!("model `{}/{}`: {message}", m.provider, m.model)));
            }
        }
        for r in &self.routes {
            r.check().map_err(|p| ConfigError::Invalid(format!("route `{}`: {}", r.name, p.message)))?;
        }
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid("server.max_body_bytes must be at least 1024".into()));
        }
        let server = &self.server;
        if server.header_timeout_secs == 0 || server.body_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "server.header_timeout_secs and body_timeout_secs must be at least 1".into(),
            ));
        }
        crate::edges::Cors::from_list(&server.cors_origins)
            .map_err(|e| ConfigError::Invalid(format!("server.cors_origins: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_routes_and_compatible_providers() {
        let c = FileConfig::parse(
            r#"
            [retry]
            max_retries = 2
            [[providers]]
            code = "local-vllm"
            kind = "openai_compatible"
            base_url = "http://127.0.0.1:8000/v1"
            headers = { "x-team" = "music" }
            [[keys]]
            provider = "openai"
            name = "backup"
            secret_env = "OPENAI_BACKUP_KEY"
            priority = 5
            rpm = 500
            [[routes]]
            name = "smart"
            targets = ["anthropic/claude-sonnet-4-5", "openai/gpt-4o"]
            "#,
        )
        .expect("valid config");
        assert_eq!(c.retry.max_retries, 2);
        assert_eq!(c.retry.base_delay_ms, 1_000);
        assert_eq!(c.providers[0].headers["x-team"], "music");
        assert_eq!(c.keys[0].rpm, Some(500));
        assert_eq!(c.routes[0].targets.len(), 2);
    }

    #[test]
    fn rejects_typos_and_incomplete_entries() {
        assert!(FileConfig::parse("[retry]\nmax_retrys = 2").is_err());
        assert!(FileConfig::parse("[[providers]]\ncode = \"x\"\nkind = \"openai_compatible\"").is_err());
        assert!(FileConfig::parse("[[keys]]\nprovider = \"openai\"\nname = \"k\"").is_err());
        assert!(FileConfig::parse("[[routes]]\nname = \"r\"\ntargets = [\"gpt-4o\"]").is_err());
        let weights_without_weighted = "[[routes]]\nname = \"r\"\ntargets = [\"a/x\"]\nweights = [1]";
        let error = FileConfig::parse(weights_without_weighted).expect_err("refused").to_string();
        assert!(error.contains("route `r`") && error.contains("weighted"), "{error}");
    }

    #[test]
    fn parses_route_rules_and_strategies_as_written_in_the_readme() {
        let c = FileConfig::parse(
            r#"
            [[routes]]
            name = "compose"
            strategy = "fallback"            # fallback | weighted | cheapest | fastest
            targets = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
            [[routes.rules]]
            when = { cjk_share_at_least = 0.3 }
            targets = ["deepseek/deepseek-chat", "openai/gpt-4o-mini"]
            [[routes.rules]]
            when = { has_images = true, user = "vip-*" }
            targets = ["openai/gpt-4o", "openai/gpt-4o-mini"]
            strategy = "weighted"
            weights = [3, 1]
            "#,
        )
        .expect("valid config");
        let route = &c.routes[0];
        assert_eq!(route.strategy, crate::domain::Strategy::Fallback);
        assert_eq!(route.rules.len(), 2);
        assert_eq!(route.rules[0].when.cjk_share_at_least, Some(0.3));
        assert_eq!(route.rules[1].when.user.as_deref(), Some("vip-*"));
        assert_eq!(route.rules[1].weights, vec![3, 1]);
    }
}
