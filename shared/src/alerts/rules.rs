//! Alert rules as admins write them (`[[alerts]]` in TOML, the admin API), and what they mean:
//! which numbers a rule watches, over which window, per which scope.

use serde::{Deserialize, Serialize};

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Failed calls over `threshold` percent of the window's calls (at least `min_calls`).
    ErrorRate,
    /// Today's cost (UTC day) over `threshold` micro-USD.
    Spend,
    /// The window's p95 latency over `threshold` ms (at least `min_calls`).
    LatencyP95,
    /// A key is `invalid` (at once), or `rate_limited`/`error` for `window_minutes`; resolves when
    /// it is `normal` again.
    KeyState,
    /// A provider had failing calls (at least `min_calls`) and no successful one for
    /// `window_minutes`.
    ProviderDown,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::Spend => "spend",
            Self::LatencyP95 => "latency_p95",
            Self::KeyState => "key_state",
            Self::ProviderDown => "provider_down",
        }
    }

    /// The unit of `threshold`, for messages.
    pub fn unit(self) -> &'static str {
        match self {
            Self::ErrorRate => "%",
            Self::Spend => "micro-USD",
            Self::LatencyP95 => "ms",
            Self::KeyState | Self::ProviderDown => "",
        }
    }
}

/// What a rule is evaluated per: one instance for everything, or one per provider, model, key or
/// caller (the `user_id` a call was made for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertScope {
    #[default]
    All,
    Provider,
    Model,
    Key,
    Caller,
}

impl AlertScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Provider => "provider",
            Self::Model => "model",
            Self::Key => "key",
            Self::Caller => "caller",
        }
    }
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Unique; names the rule in notifications and the API.
    pub name: String,
    pub kind: AlertKind,
    /// Percent (`error_rate`), micro-USD (`spend`) or ms (`latency_p95`); unused by `key_state`
    /// and `provider_down`.
    #[serde(default)]
    pub threshold: u64,
    /// The window the rule looks back over (1…1440); `spend` always looks at today.
    #[serde(default = "default_window_minutes")]
    pub window_minutes: u32,
    /// Fewer calls than this in the window never fire `error_rate`, `latency_p95` or
    /// `provider_down` (default 10, 10 and 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_calls: Option<u64>,
    #[serde(default)]
    pub scope: AlertScope,
    /// Only this provider, model, key or caller of the scope (exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<String>,
    /// Channel names notified.
    #[serde(default)]
    pub channels: Vec<String>,
    /// While it keeps firing, a reminder every this many minutes (default `[alerting]
    /// repeat_minutes`, 60); 0: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_minutes: Option<u32>,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn default_window_minutes() -> u32 {
    5
}

fn enabled() -> bool {
    true
}

/// The longest window a rule may have: minute stats are kept two days, a day is plenty.
pub const MAX_WINDOW_MINUTES: u32 = 1_440;

impl AlertRule {
    /// `min_calls`, or the kind's default.
    pub fn min_calls(&self) -> u64 {
        self.min_calls.unwrap_or(match self.kind {
            AlertKind::ErrorRate | AlertKind::LatencyP95 => 10,
            _ => 1,
        })
    }

    /// Checks the rule against `channels` (the names that exist); a message naming the field.
    pub fn validate(&self, channels: &[&str]) -> Result<(), (String, String)> {
        let bad = |field: &str, message: String| Err((field.to_string(), message));
        if self.name.is_empty()
            || self.name.len() > 64
            || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return bad("name", "An alert's name is 1-64 letters, digits, `-`, `_` or `.`.".into());
        }
        if self.window_minutes == 0 || self.window_minutes > MAX_WINDOW_MINUTES {
            return bad("window_minutes", format!("`window_minutes` must be 1 to {MAX_WINDOW_MINUTES}."));
        }
        match self.kind {
            AlertKind::ErrorRate if self.threshold == 0 || self.threshold > 100 => {
                return bad("threshold", "An error_rate threshold is a percentage, 1 to 100.".into());
            }
            AlertKind::Spend | AlertKind::LatencyP95 if self.threshold == 0 => {
                return bad("threshold", format!("A {} rule needs a threshold above 0.", self.kind.as_str()));
            }
            _ => {}
        }
        let scopes: &[AlertScope] = match self.kind {
            AlertKind::Spend => {
                &[AlertScope::All, AlertScope::Provider, AlertScope::Model, AlertScope::Key, AlertScope::Caller]
            }
            AlertKind::ErrorRate | AlertKind::LatencyP95 => {
                &[AlertScope::All, AlertScope::Provider, AlertScope::Model, AlertScope::Key]
            }
            AlertKind::KeyState => &[AlertScope::All, AlertScope::Provider, AlertScope::Key],
            AlertKind::ProviderDown => &[AlertScope::All, AlertScope::Provider],
        };
        if !scopes.contains(&self.scope) {
            let allowed: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
            return bad("scope", format!("A {} rule's scope is one of {}.", self.kind.as_str(), allowed.join(", ")));
        }
        if self.only.is_some() && self.scope == AlertScope::All {
            return bad("only", "`only` names one provider, model, key or caller: set `scope` too.".into());
        }
        if self.channels.is_empty() {
            return bad("channels", "An alert needs at least one channel.".into());
        }
        if let Some(unknown) = self.channels.iter().find(|c| !channels.contains(&c.as_str())) {
            return bad("channels", format!("No alert channel is named `{unknown}`."));
        }
        Ok(())
    }
}

/// `[alerting]`: how often rules are evaluated, the default reminder interval, and how e-mail
/// goes out (SMTP for the local runner; SES on AWS, from the environment).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    #[serde(default = "default_repeat_minutes")]
    pub repeat_minutes: u32,
    /// `[alerting.smtp]`: the server e-mail channels send through.
    #[serde(default)]
    pub smtp: Option<super::channels::SmtpConfig>,
    /// SES (AWS): `MAESTRO_ALERT_EMAIL_FROM` and `MAESTRO_ALERT_EMAIL_REGION`.
    #[serde(skip)]
    pub ses: Option<super::channels::SesConfig>,
}

fn default_interval_secs() -> u64 {
    60
}

fn default_repeat_minutes() -> u32 {
    60
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self { interval_secs: default_interval_secs(), repeat_minutes: default_repeat_minutes(), smtp: None, ses: None }
    }
}

impl AlertingConfig {
    /// The e-mail sender of the local runner: SMTP when `[alerting.smtp]` is set.
    pub fn email_sender(&self) -> Result<Option<std::sync::Arc<dyn super::channels::EmailSender>>, String> {
        match &self.smtp {
            None => Ok(None),
            Some(smtp) => {
                let sender = super::channels::SmtpEmail::new(smtp).map_err(|e| e.to_string())?;
                Ok(Some(std::sync::Arc::new(sender)))
            }
        }
    }

    /// The e-mail sender on AWS: SES when `MAESTRO_ALERT_EMAIL_FROM` is set.
    pub fn ses_sender(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Option<std::sync::Arc<dyn super::channels::EmailSender>>, String> {
        match &self.ses {
            None => Ok(None),
            Some(ses) => {
                let sender = super::channels::SesEmail::new(sdk, ses.clone()).map_err(|e| e.to_string())?;
                Ok(Some(std::sync::Arc::new(sender)))
            }
        }
    }
}
