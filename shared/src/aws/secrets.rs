//! [`SecretsManagerStore`]: provider key secrets in AWS Secrets Manager, one secret per key,
//! named `<prefix><key id>` (default prefix `maestro/keys/`), with a small in-container cache.
//!
//! - **Names.** A key's `secret_ref` is used as is when it already starts with the prefix or is
//!   an ARN; otherwise the prefix is put in front (`local/openai-x` → `maestro/keys/local/openai-x`).
//! - **put** = `CreateSecret`, or `PutSecretValue` when the secret exists (a rotation: a new
//!   version becomes `AWSCURRENT`). A secret still scheduled for deletion is restored first.
//! - **delete** = `DeleteSecret` with `ForceDeleteWithoutRecovery`: the key is gone from the
//!   catalog, the provider key should be revoked at the provider, and a 7–30 day recovery window
//!   would only block re-creating a key with the same id. Deleting an absent secret succeeds, so
//!   a retried key deletion can finish.
//! - **Cache.** `get` keeps values for [`DEFAULT_CACHE_TTL`] per container, so a warm chat call
//!   reads no secret; this container's own `put`/`delete` update it at once, other containers see a
//!   rotation within the TTL. The official `aws_secretsmanager_caching` crate is not used: it
//!   depends on the SDK crates with their default features (the legacy TLS stack, a second
//!   `rustls` build) and on `rustls` with `aws-lc-rs` directly, which the workspace's
//!   reduced-feature SDK build (see the root `Cargo.toml`) exists to avoid; the cache needed here
//!   is a map and a timestamp.
//! - **No secret in errors or logs.** Values live in [`SecretString`] (redacted `Debug`); errors
//!   carry only the service's error code and message and the secret's name, never a request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use super::{Fault, describe, fault_of};
use crate::secret::SecretString;
use crate::store::{SecretStore, StoreError};

/// How long a container reuses a secret value it has read.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

pub struct SecretsManagerStore {
    client: Client,
    prefix: String,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, SecretString)>>,
}

impl std::fmt::Debug for SecretsManagerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerStore")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn failed<E>(what: &str, secret_ref: &str, err: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // A response that could not be read may be a secret value: say nothing of its content.
    let detail = match err {
        SdkError::ResponseError(_) => "the response could not be read".to_string(),
        other => describe(other),
    };
    let message = format!("secrets manager: cannot {what} secret {secret_ref}: {detail}");
    match fault_of(err) {
        Fault::Fatal => StoreError::backend(message),
        Fault::Busy | Fault::MaybeApplied => StoreError::Unavailable(message),
    }
}

impl SecretsManagerStore {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into(), ttl: DEFAULT_CACHE_TTL, cache: Mutex::new(HashMap::new()) }
    }

    /// The same store with another cache TTL (zero turns the cache off).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The Secrets Manager name (or ARN) of a key's secret.
    pub fn secret_id(&self, secret_ref: &str) -> String {
        if secret_ref.starts_with("arn:") || secret_ref.starts_with(&self.prefix) {
            secret_ref.to_string()
        } else {
            format!("{}{secret_ref}", self.prefix)
        }
    }

    fn cached(&self, secret_ref: &str) -> Option<SecretString> {
        let cache = self.cache.lock().ok()?;
        let (read_at, value) = cache.get(secret_ref)?;
        (read_at.elapsed() < self.ttl).then(|| value.clone())
    }

    fn remember(&self, secret_ref: &str, value: Option<&SecretString>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (read_at, _)| read_at.elapsed() < self.ttl);
            match value {
                Some(value) if !self.ttl.is_zero() => {
                    cache.insert(secret_ref.to_string(), (Instant::now(), value.clone()));
                }
                _ => {
                    cache.remove(secret_ref);
                }
            }
        }
    }

    async fn put_value(&self, id: &str, secret_ref: &str, value: &SecretString) -> Result<(), StoreError> {
        self.client
            .put_secret_value()
            .secret_id(id)
            .secret_string(value.expose())
            .send()
            .await
            .map(drop)
            .map_err(|e| failed("replace", secret_ref, &e))
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get_secret(&self, secret_ref: &str) -> Result<SecretString, StoreError> {
        if let Some(value) = self.cached(secret_ref) {
            return Ok(value);
        }
        let id = self.secret_id(secret_ref);
        let out = match self.client.get_secret_value().secret_id(&id).send().await {
            Ok(out) => out,
            // Absent, or scheduled for deletion: either way there is no usable secret.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception() || s.is_invalid_request_exception()) =>
            {
                return Err(StoreError::NotFound(format!("secret {secret_ref}")));
            }
            Err(e) => return Err(failed("read", secret_ref, &e)),
        };
        let value = out
            .secret_string()
            .map(SecretString::new)
            .ok_or_else(|| StoreError::backend(format!("secrets manager: secret {secret_ref} holds no string")))?;
        self.remember(secret_ref, Some(&value));
        Ok(value)
    }

    async fn put_secret(&self, secret_ref: &str, value: &SecretString) -> Result<(), StoreError> {
        let id = self.secret_id(secret_ref);
        let created = self
            .client
            .create_secret()
            .name(&id)
            .description("Maestro provider API key")
            .secret_string(value.expose())
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_exists_exception()) => {
                self.put_value(&id, secret_ref, value).await?;
            }
            // Scheduled for deletion (a delete with a recovery window, made elsewhere): restore it.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_invalid_request_exception()) => {
                self.client
                    .restore_secret()
                    .secret_id(&id)
                    .send()
                    .await
                    .map_err(|restore| failed("restore", secret_ref, &restore))?;
                self.put_value(&id, secret_ref, value).await?;
            }
            Err(e) => return Err(failed("create", secret_ref, &e)),
        }
        self.remember(secret_ref, Some(value));
        Ok(())
    }

    async fn delete_secret(&self, secret_ref: &str) -> Result<(), StoreError> {
        self.remember(secret_ref, None);
        let id = self.secret_id(secret_ref);
        match self.client.delete_secret().secret_id(&id).force_delete_without_recovery(true).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(failed("delete", secret_ref, &e)),
        }
    }
}
