//! The chat path: resolve the model, pick a key within its limits, call the provider, retry and
//! fall back by the policy, and emit exactly one log event per call.

mod catalog_cache;
mod retry;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use catalog_cache::CatalogCache;
pub use retry::RetryPolicy;

use crate::domain::{ApiKey, Catalog, ChatRequest, KeyStatus, ProviderKind, Target, Usage};
use crate::error::ApiError;
use crate::keys::{KeyPool, Pick};
use crate::logs::{CallStatus, LOG_EVENT_VERSION, LogEvent, LogSink};
use crate::pricing::cost_micros;
use crate::providers::{Call, ProviderClient, ProviderError, ProviderErrorKind};
use crate::store::{CatalogStore, CounterStore, Grant, SecretStore, StoreError};
use crate::time::now_ms;
use crate::tokens::quick_prompt_estimate;

/// Who is calling: the JWT `sub` (or, later, the Maestro API key's owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
}

/// The stores and clients the gateway runs on; built once per process or container.
#[derive(Clone)]
pub struct Backends {
    pub catalog: Arc<dyn CatalogStore>,
    pub counters: Arc<dyn CounterStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub log_sink: Arc<dyn LogSink>,
}

/// Gateway settings that are not part of the retry policy.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub policy: RetryPolicy,
    pub catalog_ttl: Duration,
    /// The demo echo provider is served only where this is set (the local runner).
    pub allow_demo: bool,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self { policy: RetryPolicy::default(), catalog_ttl: Duration::from_secs(5), allow_demo: false }
    }
}

/// The result of one chat call, success or not, with what the response headers report.
#[derive(Debug)]
pub struct ChatOutcome {
    pub request_id: String,
    /// Provider and model that answered (or were tried last).
    pub provider: Option<String>,
    pub model: Option<String>,
    pub attempts: u32,
    pub result: Result<Bytes, ApiError>,
}

pub struct Gateway {
    backends: Backends,
    client: ProviderClient,
    options: GatewayOptions,
    catalog: CatalogCache,
    pool: KeyPool,
}

/// Why a target could not serve; the last one decides the caller's error.
#[derive(Debug)]
enum TargetFailure {
    /// Not worth another target: the request itself is wrong.
    Client(ApiError),
    /// This target is exhausted; the next one may still serve.
    Exhausted(ApiError),
}

/// Everything a successful attempt produced.
struct Served {
    body: Bytes,
    usage: Usage,
    key_id: String,
}

/// The running tally of one call, turned into its log event at the end.
struct CallState<'a> {
    request_id: String,
    started: Instant,
    started_ms: i64,
    caller: &'a Caller,
    route: Option<String>,
    attempts: u32,
    provider: Option<String>,
    model: Option<String>,
    key_id: Option<String>,
}

impl Gateway {
    pub fn new(backends: Backends, client: ProviderClient, options: GatewayOptions) -> Self {
        let catalog = CatalogCache::new(options.catalog_ttl);
        Self { backends, client, options, catalog, pool: KeyPool::default() }
    }

    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The catalog as this container sees it (cached for `catalog_ttl`).
    pub async fn catalog(&self) -> Result<Arc<Catalog>, ApiError> {
        self.catalog.get(self.backends.catalog.as_ref()).await.map_err(internal)
    }

    /// Drops the cached catalog so the next request reads the store (after an admin change).
    pub fn invalidate_catalog(&self) {
        self.catalog.invalidate();
    }

    /// Serves one non-streaming chat request and records it.
    pub async fn chat(&self, caller: &Caller, request: ChatRequest) -> ChatOutcome {
        let mut state = CallState {
            request_id: format!("req_{}", uuid::Uuid::now_v7().simple()),
            started: Instant::now(),
            started_ms: now_ms(),
            caller,
            route: None,
            attempts: 0,
            provider: None,
            model: None,
            key_id: None,
        };
        let result = self.serve(&mut state, &request).await;
        let event = self.log_event(&state, &request, &result);
        self.backends.log_sink.send(event).await;
        ChatOutcome {
            request_id: state.request_id,
            provider: state.provider,
            model: state.model,
            attempts: state.attempts,
            result: result.map(|served| served.0.body),
        }
    }

    async fn serve(&self, state: &mut CallState<'_>, request: &ChatRequest) -> Result<(Served, u64), ApiError> {
        request.validate()?;
        if request.is_stream() {
            return Err(ApiError::invalid_param(
                "stream",
                "Streaming is not supported by this Maestro version yet; send `stream: false`.",
            ));
        }
        let catalog = self.catalog().await?;
        let resolution = catalog.resolve(&request.model)?;
        state.route = resolution.route.clone();
        let requested_max = request.requested_max_tokens();
        let targets: Vec<&Target<'_>> = resolution
            .targets
            .iter()
            .filter(|t| self.options.allow_demo || t.entry.provider.kind != ProviderKind::Demo)
            .collect();
        if targets.is_empty() {
            return Err(ApiError::model_not_found(&request.model));
        }
        let fitting: Vec<&Target<'_>> = targets
            .iter()
            .copied()
            .filter(|t| match (requested_max, t.model.max_output_tokens) {
                (Some(asked), Some(cap)) => asked <= cap,
                _ => true,
            })
            .collect();
        if fitting.is_empty() {
            let cap = targets.iter().filter_map(|t| t.model.max_output_tokens).max().unwrap_or(0);
            return Err(ApiError::invalid_param(
                "max_tokens",
                format!(
                    "`max_tokens` is {} but `{}` allows at most {cap} output tokens.",
                    requested_max.unwrap_or(0),
                    request.model
                ),
            ));
        }

        let mut last = ApiError::unavailable("no_target", "No provider could serve this request.");
        for target in fitting {
            state.provider = Some(target.entry.provider.code.clone());
            state.model = Some(target.model.model.clone());
            match self.try_target(state, target, request).await {
                Ok(served) => {
                    let cost = cost_micros(&target.model.prices, &served.usage);
                    return Ok((served, cost));
                }
                Err(TargetFailure::Client(e)) => return Err(e),
                Err(TargetFailure::Exhausted(e)) => {
                    tracing::warn!(request_id = %state.request_id, provider = %target.entry.provider.code, model = %target.model.model, error = %e, "target exhausted; falling back");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Tries one target: keys in order, retries by the policy, until it serves or is exhausted.
    async fn try_target(
        &self,
        state: &mut CallState<'_>,
        target: &Target<'_>,
        request: &ChatRequest,
    ) -> Result<Served, TargetFailure> {
        let policy = &self.options.policy;
        let provider = &target.entry.provider;
        let max_output =
            request.requested_max_tokens().or(target.model.max_output_tokens).unwrap_or(policy.default_max_tokens);
        let estimate = quick_prompt_estimate(request) + max_output;
        let mut excluded: HashSet<String> = HashSet::new();
        let mut retries = 0u32;
        let mut last_error: Option<ProviderError> = None;

        loop {
            let remaining = policy.deadline().saturating_sub(state.started.elapsed());
            if remaining.is_zero() {
                return Err(TargetFailure::Exhausted(ApiError::gateway_timeout(
                    "The call ran out of time before a provider answered.",
                )));
            }
            let now = now_ms();
            let pick = self
                .pool
                .pick(self.backends.counters.as_ref(), &target.entry.keys, now, estimate, &excluded)
                .await
                .map_err(|e| TargetFailure::Exhausted(internal(e)))?;
            let (key, grant) = match pick {
                Pick::Reserved { key, grant } => (key, grant),
                Pick::AllFull { until_ms } => {
                    return Err(TargetFailure::Exhausted(ApiError::rate_limited(
                        format!(
                            "Every key of provider `{}` is at its rate limit; retry after the window ends.",
                            provider.code
                        ),
                        secs_until(until_ms, now),
                    )));
                }
                Pick::NoUsableKey { cooling_until } => {
                    return Err(TargetFailure::Exhausted(no_key_error(
                        &provider.code,
                        last_error.as_ref(),
                        cooling_until,
                        now,
                    )));
                }
            };
            state.attempts += 1;
            state.key_id = Some(key.id.clone());

            let secret = match self.backends.secrets.get_secret(&key.secret_ref).await {
                Ok(secret) => secret,
                Err(e) => {
                    tracing::error!(key_id = %key.id, error = %e, "key secret unreadable; skipping the key");
                    self.release(&grant, grant.reserved_tokens).await;
                    excluded.insert(key.id.clone());
                    continue;
                }
            };
            let call = Call {
                provider,
                model: target.model,
                api_key: &secret,
                request,
                default_max_tokens: policy.default_max_tokens,
                timeout: policy.attempt_timeout().min(remaining),
            };
            match self.client.chat(call).await {
                Ok(reply) => {
                    let delta = i64::try_from(reply.usage.total()).unwrap_or(i64::MAX) - grant.reserved_tokens as i64;
                    if let Err(e) = self.backends.counters.reconcile(&grant, delta).await {
                        tracing::error!(key_id = %key.id, error = %e, "token reconcile failed");
                    }
                    self.pool.note_success(&key.id);
                    if key.status != KeyStatus::Normal {
                        self.set_status(&key, KeyStatus::Normal, None).await;
                    }
                    return Ok(Served { body: reply.body, usage: reply.usage, key_id: key.id });
                }
                Err(error) => {
                    // The provider counted the request but no tokens: give the tokens back.
                    self.release(&grant, grant.reserved_tokens).await;
                    tracing::warn!(request_id = %state.request_id, key = %key.masked, provider = %provider.code, error = %error, "upstream attempt failed");
                    match error.kind {
                        ProviderErrorKind::InvalidRequest => return Err(TargetFailure::Client(client_error(&error))),
                        ProviderErrorKind::Auth => {
                            self.set_status(&key, KeyStatus::Invalid, None).await;
                            excluded.insert(key.id.clone());
                        }
                        ProviderErrorKind::RateLimited => {
                            let wait =
                                error.retry_after.map_or(policy.rate_limit_cooldown_ms, |d| d.as_millis() as u64);
                            self.set_status(&key, KeyStatus::RateLimited, Some(now_ms() + wait as i64)).await;
                            excluded.insert(key.id.clone());
                        }
                        ProviderErrorKind::QuotaExceeded => {
                            self.set_status(
                                &key,
                                KeyStatus::RateLimited,
                                Some(now_ms() + policy.quota_cooldown_ms as i64),
                            )
                            .await;
                            excluded.insert(key.id.clone());
                        }
                        kind if kind.is_retryable() => {
                            if self.pool.note_failure(&key.id) >= policy.failure_threshold {
                                self.set_status(
                                    &key,
                                    KeyStatus::Error,
                                    Some(now_ms() + policy.error_cooldown_ms as i64),
                                )
                                .await;
                                excluded.insert(key.id.clone());
                            }
                            if retries >= policy.max_retries {
                                return Err(TargetFailure::Exhausted(upstream_error(&provider.code, &error)));
                            }
                            let wait = policy.backoff(retries, error.retry_after);
                            if wait >= policy.deadline().saturating_sub(state.started.elapsed()) {
                                return Err(TargetFailure::Exhausted(upstream_error(&provider.code, &error)));
                            }
                            retries += 1;
                            tokio::time::sleep(wait).await;
                        }
                        _ => return Err(TargetFailure::Exhausted(upstream_error(&provider.code, &error))),
                    }
                    last_error = Some(error);
                }
            }
        }
    }

    /// Gives back reserved tokens that were not used.
    async fn release(&self, grant: &Grant, tokens: u64) {
        let delta = -i64::try_from(tokens).unwrap_or(i64::MAX);
        if let Err(e) = self.backends.counters.reconcile(grant, delta).await {
            tracing::error!(key_id = %grant.key_id, error = %e, "token release failed");
        }
    }

    async fn set_status(&self, key: &ApiKey, status: KeyStatus, cooldown_until: Option<i64>) {
        tracing::info!(key_id = %key.id, key = %key.masked, status = status.as_str(), ?cooldown_until, "key status changes");
        match self.backends.catalog.set_key_status(&key.id, status, cooldown_until).await {
            Ok(()) => self.catalog.invalidate(),
            Err(e) => tracing::error!(key_id = %key.id, error = %e, "could not save key status"),
        }
    }

    fn log_event(
        &self,
        state: &CallState<'_>,
        request: &ChatRequest,
        result: &Result<(Served, u64), ApiError>,
    ) -> LogEvent {
        let (status, http_status, error_code, error_message, usage, cost, key_id) = match result {
            Ok((served, cost)) => {
                (CallStatus::Success, 200, None, None, served.usage, *cost, Some(served.key_id.clone()))
            }
            Err(e) => (
                CallStatus::Error,
                e.status,
                e.code.clone(),
                Some(LogEvent::clip_message(&e.message)),
                Usage::default(),
                0,
                state.key_id.clone(),
            ),
        };
        LogEvent {
            v: LOG_EVENT_VERSION,
            request_id: state.request_id.clone(),
            ts_ms: state.started_ms,
            user_id: Some(state.caller.user_id.clone()),
            provider: state.provider.clone().unwrap_or_else(|| "none".to_string()),
            model: state.model.clone().unwrap_or_else(|| request.model.clone()),
            key_id,
            route: state.route.clone(),
            request_type: "chat".to_string(),
            stream: request.is_stream(),
            status,
            http_status,
            error_code,
            error_message,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_tokens: usage.cached_tokens,
            cost_micros: cost,
            latency_ms: state.started.elapsed().as_millis() as u64,
            ttfb_ms: None,
            attempts: state.attempts,
        }
    }
}

fn internal(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store failure");
    ApiError::internal()
}

fn secs_until(until_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((until_ms - now_ms).max(0)).unwrap_or(0).div_ceil(1000).max(1)
}

/// A provider's 4xx about the request itself, passed on with its own status and message.
fn client_error(e: &ProviderError) -> ApiError {
    let status = e.status.filter(|s| (400..500).contains(s)).unwrap_or(400);
    ApiError {
        status,
        message: e.message.clone(),
        error_type: "invalid_request_error",
        code: e.code.clone().or_else(|| Some("invalid_request".to_string())),
        param: None,
        retry_after_secs: None,
    }
}

/// The caller's error once a target's keys and retries are spent on a provider failure.
fn upstream_error(provider: &str, e: &ProviderError) -> ApiError {
    let status = e.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    match e.kind {
        ProviderErrorKind::Timeout => {
            ApiError::gateway_timeout(format!("Provider `{provider}` did not answer in time."))
        }
        ProviderErrorKind::Overloaded => {
            ApiError::unavailable(e.kind.as_str(), format!("Provider `{provider}` is overloaded{status}."))
        }
        ProviderErrorKind::MalformedResponse => {
            ApiError::bad_gateway(e.kind.as_str(), format!("Provider `{provider}` sent a malformed response."))
        }
        ProviderErrorKind::Network => {
            ApiError::bad_gateway(e.kind.as_str(), format!("Provider `{provider}` could not be reached."))
        }
        _ => ApiError::bad_gateway(e.kind.as_str(), format!("Provider `{provider}` failed{status}.")),
    }
}

/// The caller's error when no key of a provider is left to try.
fn no_key_error(provider: &str, last: Option<&ProviderError>, cooling_until: Option<i64>, now: i64) -> ApiError {
    let retry_in = secs_until(cooling_until.unwrap_or(now + 60_000), now);
    if let Some(e) = last {
        match e.kind {
            ProviderErrorKind::Auth => {
                return ApiError::bad_gateway(
                    "upstream_auth_failed",
                    format!(
                        "Provider `{provider}` rejected every key (401/403); an admin must validate or replace them."
                    ),
                );
            }
            ProviderErrorKind::QuotaExceeded => {
                return ApiError::rate_limited(
                    format!("Every key of provider `{provider}` is out of quota or balance."),
                    retry_in,
                );
            }
            ProviderErrorKind::RateLimited => {
                return ApiError::rate_limited(format!("Provider `{provider}` rate-limited every key."), retry_in);
            }
            kind if kind.is_retryable() => return upstream_error(provider, e),
            _ => {}
        }
    }
    match cooling_until {
        Some(_) => ApiError::rate_limited(format!("Every key of provider `{provider}` is cooling down."), retry_in),
        None => ApiError::unavailable(
            "no_usable_key",
            format!(
                "Provider `{provider}` has no usable key. Add one with an environment variable, the config file or the admin API."
            ),
        ),
    }
}
