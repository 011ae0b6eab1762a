//! Where rules and channels live: in the alert store (both backends), written by the TOML at
//! start and by the admin API. A channel's URL (DingTalk, WeCom and Feishu put the access token
//! in it) and signing secret go to the secret store, like provider keys; the alert store keeps
//! what may be shown.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::channels::{ChannelConfig, ChannelKind, Channels, EmailSender, Notification};
use super::engine::Notifier;
use super::rules::AlertRule;
use crate::secret::SecretString;
use crate::store::{AlertRecordKind, AlertStore, SecretStore, StoreError};

/// The secret store's name for a channel's URL and secret.
pub fn channel_secret_ref(name: &str) -> String {
    format!("alert-channel/{name}")
}

/// What the alert store keeps of a channel: nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredChannel {
    name: String,
    kind: ChannelKind,
    #[serde(default)]
    to: Vec<String>,
}

/// What the secret store keeps of a channel.
#[derive(Serialize, Deserialize)]
struct ChannelSecrets {
    url: Option<String>,
    secret: Option<String>,
}

/// Why a rule or channel cannot be saved.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A field is wrong: `(field, message)`.
    #[error("{1}")]
    Invalid(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Saves a channel: the public part in the alert store (versioned by `expected`, as
/// [`AlertStore::put_alert_record`]), URL and secret in the secret store. Returns the version.
pub async fn save_channel(
    alerts: &dyn AlertStore,
    secrets: &dyn SecretStore,
    channel: &ChannelConfig,
    expected: Option<u64>,
) -> Result<u64, SetupError> {
    channel.validate().map_err(|message| SetupError::Invalid("channel".into(), message))?;
    let stored = StoredChannel { name: channel.name.clone(), kind: channel.kind.clone(), to: channel.to.clone() };
    let hidden =
        ChannelSecrets { url: channel.url.clone(), secret: channel.secret.as_ref().map(|s| s.expose().to_string()) };
    let hidden = serde_json::to_string(&hidden)
        .map_err(|e| StoreError::backend_caused("alerts: cannot serialize a channel's secrets", e))?;
    // The secret first: a channel record never points at a missing secret.
    secrets.put_secret(&channel_secret_ref(&channel.name), &SecretString::new(hidden)).await?;
    let body = serde_json::to_string(&stored)
        .map_err(|e| StoreError::backend_caused("alerts: cannot serialize a channel", e))?;
    Ok(alerts.put_alert_record(AlertRecordKind::Channel, &channel.name, &body, expected).await?)
}

/// Deletes a channel and its secret.
pub async fn delete_channel(
    alerts: &dyn AlertStore,
    secrets: &dyn SecretStore,
    name: &str,
    expected: Option<u64>,
) -> Result<(), StoreError> {
    alerts.delete_alert_record(AlertRecordKind::Channel, name, expected).await?;
    secrets.delete_secret(&channel_secret_ref(name)).await
}

/// Every stored channel with its URL and secret, and its version; a channel whose record or
/// secret cannot be read is skipped with a warning.
pub async fn load_channels(
    alerts: &dyn AlertStore,
    secrets: &dyn SecretStore,
) -> Result<Vec<(ChannelConfig, u64)>, StoreError> {
    let mut channels = Vec::new();
    for record in alerts.alert_records(AlertRecordKind::Channel).await? {
        let Ok(stored) = serde_json::from_str::<StoredChannel>(&record.body) else {
            tracing::warn!(channel = %record.name, "unreadable alert channel skipped");
            continue;
        };
        let hidden = match secrets.get_secret(&channel_secret_ref(&stored.name)).await {
            Ok(secret) => serde_json::from_str::<ChannelSecrets>(secret.expose()).ok(),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let Some(hidden) = hidden else {
            tracing::warn!(channel = %record.name, "alert channel without readable secrets skipped");
            continue;
        };
        let config = ChannelConfig {
            name: stored.name,
            kind: stored.kind,
            url: hidden.url,
            secret: hidden.secret.map(SecretString::new),
            to: stored.to,
        };
        channels.push((config, record.version));
    }
    Ok(channels)
}

/// Saves a rule after checking it against the stored channels.
pub async fn save_rule(
    alerts: &dyn AlertStore,
    rule: &AlertRule,
    channel_names: &[&str],
    expected: Option<u64>,
) -> Result<u64, SetupError> {
    rule.validate(channel_names).map_err(|(field, message)| SetupError::Invalid(field, message))?;
    let body =
        serde_json::to_string(rule).map_err(|e| StoreError::backend_caused("alerts: cannot serialize a rule", e))?;
    Ok(alerts.put_alert_record(AlertRecordKind::Rule, &rule.name, &body, expected).await?)
}

/// Applies the TOML's `[[alert_channels]]` and `[[alerts]]` at start: each is written over what
/// the store has of the same name (the file is the truth for what it names; rules and channels
/// added by the admin API stay).
pub async fn apply_config(
    alerts: &dyn AlertStore,
    secrets: &dyn SecretStore,
    channels: &[ChannelConfig],
    rules: &[AlertRule],
) -> Result<(), SetupError> {
    for channel in channels {
        save_channel(alerts, secrets, channel, None).await?;
    }
    let stored = load_channels(alerts, secrets).await?;
    let names: Vec<&str> = stored.iter().map(|(c, _)| c.name.as_str()).collect();
    for rule in rules {
        save_rule(alerts, rule, &names, None).await.map_err(|e| match e {
            SetupError::Invalid(field, message) => {
                SetupError::Invalid(field, format!("[[alerts]] `{}`: {message}", rule.name))
            }
            other => other,
        })?;
    }
    Ok(())
}

/// The stored channels, read again at most every `ttl`: the evaluator notifies through it, so
/// a channel edited in the admin API is used within a round or two without a secret read per
/// notification.
pub struct StoredChannels {
    alerts: Arc<dyn AlertStore>,
    secrets: Arc<dyn SecretStore>,
    email: Option<Arc<dyn EmailSender>>,
    ttl: std::time::Duration,
    timeout: Option<std::time::Duration>,
    loaded: tokio::sync::Mutex<Option<(std::time::Instant, Arc<Channels>)>>,
}

impl StoredChannels {
    pub fn new(
        alerts: Arc<dyn AlertStore>,
        secrets: Arc<dyn SecretStore>,
        email: Option<Arc<dyn EmailSender>>,
        ttl: std::time::Duration,
    ) -> Self {
        Self { alerts, secrets, email, ttl, timeout: None, loaded: tokio::sync::Mutex::new(None) }
    }

    /// Bounds each send (tests use a short one).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    async fn channels(&self) -> Result<Arc<Channels>, String> {
        let mut loaded = self.loaded.lock().await;
        if let Some((at, channels)) = loaded.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(channels.clone());
        }
        let configs = load_channels(self.alerts.as_ref(), self.secrets.as_ref())
            .await
            .map_err(|e| format!("alert channels not readable: {e}"))?;
        let mut channels = Channels::new(configs.into_iter().map(|(c, _)| c).collect(), self.email.clone())
            .map_err(|e| e.to_string())?;
        if let Some(timeout) = self.timeout {
            channels = channels.with_timeout(timeout);
        }
        let channels = Arc::new(channels);
        *loaded = Some((std::time::Instant::now(), channels.clone()));
        Ok(channels)
    }

    /// Forgets the loaded channels (the admin API saved one).
    pub async fn reload(&self) {
        *self.loaded.lock().await = None;
    }
}

#[async_trait]
impl Notifier for StoredChannels {
    async fn notify(&self, channel: &str, notification: &Notification) -> Result<(), String> {
        let channels = self.channels().await?;
        channels.send(channel, notification).await.map_err(|e| e.to_string())
    }
}
