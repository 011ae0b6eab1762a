//! The call path of chat and embeddings: resolve the model, pick a key within its limits, call the
//! provider, retry and fall back by the policy, and emit exactly one log event per call. Chat
//! (`serve`) and embeddings (`embeddings.rs`) check their own requests, then share one attempt
//! loop ([`Gateway::serve_targets`], [`Gateway::try_target`]) and one record ([`Gateway::finish`]).
//!
//! A call runs in a task of its own ([`Gateway::chat`], [`Gateway::chat_stream`],
//! [`Gateway::embeddings`]): the caller's
//! connection going away drops only the waiting handler, never the call, so a call that was
//! served upstream is always logged, charged and reconciled (then as `client_disconnected`, 499).

mod batch;
mod cached;
mod caller_budget;
mod catalog_cache;
mod credits;
mod embeddings;
mod errors;
mod listing;
mod retry;
mod routed;
mod stream;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

pub use batch::{BATCH_CONCURRENCY, BatchAnswer, BatchRequest, BatchResult, MAX_BATCH_ITEMS};
pub use catalog_cache::CatalogCache;
pub use embeddings::EMBEDDINGS_REQUEST_TYPE;
pub use listing::{AvailableProvider, ModelListing};
pub use retry::RetryPolicy;
pub use stream::ChatStream;

use crate::cache::{self, CacheRequest};
use crate::domain::{ApiKey, Catalog, ChatRequest, KeyStatus, Model, Prices, Provider, ProviderKind, Target, Usage};
use crate::error::ApiError;
use crate::keys::{KeyPool, Pick, Skip, health};
use crate::logs::{
    ATTEMPT_NO_KEY, ATTEMPT_OK, ATTEMPT_SECRET_UNREADABLE, Attempt, CallStatus, KeyAttempts, LOG_EVENT_VERSION,
    LogEvent, LogSink, SkippedKey, UNKNOWN_MODEL,
};
use crate::pricing::cost_micros;
use crate::providers::{Call, ProviderClient, ProviderError, ProviderErrorKind, ProviderReply, UpstreamStream};
use crate::routing::{RequestTraits, TargetBoard, Timing, fits_context, target_name};
use crate::secret::SecretString;
use crate::store::{
    CallerKey, CallerKeyStore, CatalogStore, CounterStore, Grant, ResponseCacheStore, SecretStore, StatsStore,
};
use crate::time::now_ms;
use crate::tokens::{PromptCount, needs_cl100k, output_bound};
use errors::{
    Cooling, all_full_error, client_error, no_key_error, provider_message, secs_until, short, upstream_error,
};

/// Who is calling: the JWT `sub`, or the owner of the Maestro API key used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    /// The Maestro API key (`mk-…`) the caller authenticated with, `None` for a JWT. The gateway
    /// enforces its allowed models and limits (see `caller_budget`).
    pub key: Option<Arc<CallerKey>>,
    /// The request's `x-maestro-tags` (see `routing::parse_tags`), for routes' `tag` rules.
    pub tags: Vec<String>,
    /// The request's `x-maestro-cache` (see `crate::cache`), if sent.
    pub cache: Option<CacheRequest>,
    /// The API the call came through, the log's `request_type`: [`REQUEST_TYPE_CHAT`] unless a
    /// front door says otherwise ([`Caller::through`]).
    pub request_type: &'static str,
}

/// `request_type` of calls through `/v1/chat/completions` and `/v1/messages`.
pub const REQUEST_TYPE_CHAT: &str = "chat";
/// `request_type` of calls through `/v1/responses`.
pub const REQUEST_TYPE_RESPONSES: &str = "responses";

impl Caller {
    /// A caller known by user id alone (a JWT's `sub`): no key, so no caller limits.
    pub fn user(user_id: impl Into<String>) -> Self {
        Self { user_id: user_id.into(), key: None, tags: Vec::new(), cache: None, request_type: REQUEST_TYPE_CHAT }
    }

    /// The caller with this request's `x-maestro-cache` header: `on`, `off` or `refresh`;
    /// anything else is a 400 naming the header.
    pub fn with_cache_header(self, header: Option<&str>) -> Result<Self, ApiError> {
        let Some(value) = header else { return Ok(self) };
        match CacheRequest::parse(value) {
            Some(cache) => Ok(Self { cache: Some(cache), ..self }),
            None => Err(ApiError::invalid_param(
                crate::cache::HEADER_CACHE,
                "`x-maestro-cache` must be `on`, `off` or `refresh`.",
            )),
        }
    }

    /// The caller of a call that came through another API than chat (recorded as its
    /// `request_type`).
    pub fn through(self, request_type: &'static str) -> Self {
        Self { request_type, ..self }
    }

    /// The caller with the tags of this request's `x-maestro-tags` header.
    pub fn tagged(self, header: Option<&str>) -> Self {
        Self { tags: header.map(crate::routing::parse_tags).unwrap_or_default(), ..self }
    }

    /// 403 when the caller's Maestro API key may not use what `requested` resolved to (a JWT
    /// caller may use every model).
    pub fn may_use(&self, requested: &str, resolution: &crate::domain::Resolution<'_>) -> Result<(), ApiError> {
        match &self.key {
            Some(key) => caller_budget::check_allowed(key, requested, resolution),
            None => Ok(()),
        }
    }
}

/// The call's view of its caller: whether the handler waiting for the answer is still there,
/// and the instant by which the caller must have its answer, if it has one of its own (a Lambda
/// invocation's deadline). The handler holds the receiving end; dropping it (with the
/// connection) closes the link.
#[derive(Debug, Clone)]
struct CallerLink(mpsc::Sender<std::convert::Infallible>, Option<Instant>);

impl CallerLink {
    /// A link and the token the waiting handler holds.
    fn new(deadline: Option<Instant>) -> (Self, mpsc::Receiver<std::convert::Infallible>) {
        let (tx, rx) = mpsc::channel(1);
        (Self(tx, deadline), rx)
    }

    /// The time left of `budget` counted from `started`, cut short by the caller's deadline.
    fn remaining(&self, started: Instant, budget: Duration) -> Duration {
        let left = budget.saturating_sub(started.elapsed());
        self.1.map_or(left, |deadline| left.min(deadline.saturating_duration_since(Instant::now())))
    }

    /// The instant `budget` after `started`, or the caller's deadline when that comes first.
    fn deadline(&self, started: Instant, budget: Duration) -> Instant {
        let own = started + budget;
        self.1.map_or(own, |deadline| deadline.min(own))
    }

    fn is_gone(&self) -> bool {
        self.0.is_closed()
    }

    /// Resolves when the caller goes away.
    async fn gone(&self) {
        self.0.closed().await;
    }
}

/// HTTP status recorded for a caller that hung up before the call ended (nginx's convention).
const CLIENT_CLOSED: u16 = 499;
const CLIENT_DISCONNECTED: &str = "client_disconnected";

/// The stores and clients the gateway runs on; built once per process or container.
#[derive(Clone)]
pub struct Backends {
    pub catalog: Arc<dyn CatalogStore>,
    pub counters: Arc<dyn CounterStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub log_sink: Arc<dyn LogSink>,
    /// Maestro API keys of callers, looked up by the business API's authentication (wrap the
    /// store in `store::caller_keys::CachedCallerKeys`) and managed by the admin API.
    pub caller_keys: Arc<dyn CallerKeyStore>,
    /// Users' credits: every call holds its largest possible charge and settles the real one
    /// (`None`: credits are off, nothing is charged).
    pub credits: Option<Credits>,
    /// Stored answers of the response cache (see `crate::cache`).
    pub response_cache: Arc<dyn ResponseCacheStore>,
}

/// Users' credits on a backend, and where settled charges are announced.
#[derive(Clone)]
pub struct Credits {
    pub store: Arc<dyn crate::store::CreditStore>,
    /// `None`: charges are only in the ledger.
    pub events: Option<Arc<dyn crate::credits::ChargeSink>>,
}

/// Gateway settings that are not part of the retry policy.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub policy: RetryPolicy,
    pub catalog_ttl: Duration,
    /// The demo echo provider is served only where this is set (the local runner).
    pub allow_demo: bool,
    /// What credits charge per model, when credits are on ([`Backends::credits`]).
    pub credit_markup: crate::pricing::CreditMarkup,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            policy: RetryPolicy::default(),
            catalog_ttl: Duration::from_secs(5),
            allow_demo: false,
            credit_markup: crate::pricing::CreditMarkup::default(),
        }
    }
}

/// What Maestro reports about a call in its response headers.
#[derive(Debug, Clone, Default)]
pub struct CallFacts {
    pub request_id: String,
    /// Provider and model that answered (or were tried last).
    pub provider: Option<String>,
    pub model: Option<String>,
    pub attempts: u32,
    /// The route named, and which of its rules chose the targets (`"0"`…, or `default`).
    pub route: Option<String>,
    pub route_rule: Option<String>,
    /// `hit` or `miss` when the response cache was used (`x-maestro-cache`).
    pub cache: Option<&'static str>,
}

impl CallFacts {
    /// `x-request-id`, `x-maestro-attempts`, `x-maestro-provider`, `x-maestro-model` (the catalog
    /// id that served, `provider/model`, whatever the caller named), and for a route
    /// `x-maestro-route` and `x-maestro-route-rule`.
    pub fn set_headers(&self, headers: &mut http::HeaderMap) {
        use crate::http as mhttp;
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = http::HeaderValue::from_str(value) {
                headers.insert(http::HeaderName::from_static(name), v);
            }
        };
        set(mhttp::HEADER_REQUEST_ID, &self.request_id);
        set(mhttp::HEADER_ATTEMPTS, &self.attempts.to_string());
        if let Some(p) = &self.provider {
            set(mhttp::HEADER_PROVIDER, p);
        }
        match (&self.provider, &self.model) {
            (Some(p), Some(m)) => set(mhttp::HEADER_MODEL, &format!("{p}/{m}")),
            (None, Some(m)) => set(mhttp::HEADER_MODEL, m),
            _ => {}
        }
        if let Some(route) = &self.route {
            set(mhttp::HEADER_ROUTE, route);
        }
        if let Some(rule) = &self.route_rule {
            set(mhttp::HEADER_ROUTE_RULE, rule);
        }
        if let Some(cache) = self.cache {
            set(crate::cache::HEADER_CACHE, cache);
        }
    }
}

/// The result of one chat call, success or not, with what the response headers report.
#[derive(Debug)]
pub struct ChatOutcome {
    pub facts: CallFacts,
    pub result: Result<Bytes, ApiError>,
}

pub struct Gateway {
    backends: Backends,
    client: ProviderClient,
    options: GatewayOptions,
    catalog: CatalogCache,
    pool: KeyPool,
    /// What this process has seen of each target: routes order by it.
    board: TargetBoard,
    /// Where `fastest` routes read a first latency for targets this process has not timed yet.
    latency_source: Option<Arc<dyn StatsStore>>,
    /// Set once at shutdown: running streams end in-band and are recorded.
    shutting_down: tokio::sync::watch::Sender<bool>,
}

/// What one attempt came to, for the attempt log.
#[derive(Debug)]
struct AttemptResult {
    outcome: &'static str,
    http_status: Option<u16>,
    message: Option<String>,
    latency_ms: u64,
}

impl AttemptResult {
    /// A pick that found no key to try.
    fn no_key() -> Self {
        Self { outcome: ATTEMPT_NO_KEY, http_status: None, message: None, latency_ms: 0 }
    }
}

/// Why a target could not serve; the last one decides the caller's error.
#[derive(Debug)]
enum TargetFailure {
    /// Not worth another target: the request itself is wrong.
    Client(ApiError),
    /// This target is exhausted; the next one may still serve.
    Exhausted(ApiError),
}

/// What a call asks of a target beyond its prompt: the output that key windows, caller budgets
/// and credit holds reserve for it.
#[derive(Debug, Clone, Copy)]
enum Ask<'r> {
    /// A chat: `n` answers of up to `max_tokens` (else the model's `max_output_tokens`, else the
    /// policy's `default_max_tokens`) each.
    Chat(&'r ChatRequest),
    /// Embeddings: the input's tokens, nothing generated.
    Embeddings,
}

impl Ask<'_> {
    /// The most output tokens the call may bill on `target`.
    fn output_bound(self, target: &Target<'_>, default_max_tokens: u64) -> u64 {
        match self {
            Self::Chat(request) => {
                let max_output =
                    request.requested_max_tokens().or(target.model.max_output_tokens).unwrap_or(default_max_tokens);
                output_bound(request, max_output)
            }
            Self::Embeddings => 0,
        }
    }
}

/// Where one attempt goes and with which key; the [`Mode`] adds what is sent.
#[derive(Debug, Clone, Copy)]
struct Upstream<'a> {
    provider: &'a Provider,
    model: &'a Model,
    api_key: &'a SecretString,
    default_max_tokens: u64,
    timeout: Duration,
}

/// What a call sends and how it talks to the provider: one JSON answer (a chat, embeddings), or
/// a stream whose first frames have arrived (so that retries and fallback stay possible until the
/// caller has seen a byte).
trait Mode {
    type Output;
    /// What the call may bill beyond its prompt.
    fn ask(&self) -> Ask<'_>;
    async fn attempt(&self, client: &ProviderClient, to: Upstream<'_>) -> Result<Self::Output, ProviderError>;
    /// The usage known when the attempt returns; `None` while a stream is still running.
    fn settled_usage(output: &Self::Output) -> Option<Usage>;
    /// What a served attempt's latency measures: the whole answer, or a stream's first frames.
    const TIMING: Timing;
}

/// The chat call `request` as it goes to a provider.
fn chat_call<'a>(request: &'a ChatRequest, to: Upstream<'a>) -> Call<'a> {
    Call {
        provider: to.provider,
        model: to.model,
        api_key: to.api_key,
        request,
        default_max_tokens: to.default_max_tokens,
        timeout: to.timeout,
    }
}

struct Complete<'r> {
    request: &'r ChatRequest,
}

impl Mode for Complete<'_> {
    type Output = ProviderReply;

    fn ask(&self) -> Ask<'_> {
        Ask::Chat(self.request)
    }

    async fn attempt(&self, client: &ProviderClient, to: Upstream<'_>) -> Result<ProviderReply, ProviderError> {
        client.chat(chat_call(self.request, to)).await
    }

    fn settled_usage(output: &ProviderReply) -> Option<Usage> {
        Some(output.usage)
    }

    const TIMING: Timing = Timing::Complete;
}

struct Streaming<'r> {
    request: &'r ChatRequest,
    caller_wants_usage: bool,
}

impl Mode for Streaming<'_> {
    type Output = (UpstreamStream, Vec<Bytes>);

    fn ask(&self) -> Ask<'_> {
        Ask::Chat(self.request)
    }

    async fn attempt(&self, client: &ProviderClient, to: Upstream<'_>) -> Result<Self::Output, ProviderError> {
        let mut stream = client.chat_stream(chat_call(self.request, to), self.caller_wants_usage).await?;
        match stream.next().await? {
            Some(first) => Ok((stream, first)),
            None => {
                Err(ProviderError::new(ProviderErrorKind::MalformedResponse, None, "the provider's stream was empty"))
            }
        }
    }

    fn settled_usage(_: &Self::Output) -> Option<Usage> {
        None
    }

    const TIMING: Timing = Timing::FirstByte;
}

/// What a successful attempt produced, and what it cost to get there.
struct Served<T> {
    output: T,
    key_id: String,
    grant: Grant,
    prices: Prices,
    /// The prompt tokens to record if the call is cut short before the provider reports usage.
    prompt_tokens_if_cut: u64,
}

/// The running tally of one call, turned into its log event at the end.
#[derive(Debug, Clone)]
struct CallState {
    request_id: String,
    started: Instant,
    started_ms: i64,
    user_id: String,
    route: Option<String>,
    /// The rule of the route that chose the targets (`"0"`…, or `default`).
    route_rule: Option<String>,
    attempts: u32,
    provider: Option<String>,
    model: Option<String>,
    key_id: Option<String>,
    stream: bool,
    /// The caller's Maestro API key, and what its windows hold for this call (see `caller_budget`).
    caller_key: Option<Arc<CallerKey>>,
    caller_grant: Option<caller_budget::CallerGrant>,
    /// The user's credits held for this call (see `credits`).
    credit_hold: Option<credits::CreditHold>,
    caller_link: CallerLink,
    /// The prompt, counted once the targets are known (what reservations are made from).
    prompt: PromptCount,
    /// Whether the requested model or route is in the catalog; an unknown name is recorded as
    /// [`UNKNOWN_MODEL`], never verbatim.
    model_known: bool,
    /// Every key tried, with its attempts and failures (for the per-key stats).
    key_attempts: Vec<KeyAttempts>,
    /// Every attempt and keyless pick in order (the log's `attempt_log`).
    attempt_log: Vec<Attempt>,
    /// The keys already listed as skipped, per provider, with why: listed again only on a pick
    /// that finds no key.
    skips_logged: HashSet<(String, Skip)>,
    /// The caller's `x-maestro-tags`.
    tags: Vec<String>,
    /// `hit` or `miss` when the response cache was used, and what a hit saved.
    cache: Option<&'static str>,
    saved_micros: u64,
    /// The log's `request_type` (see [`Caller::request_type`]; embeddings set their own).
    request_type: &'static str,
}

impl CallState {
    fn new(caller: &Caller, stream: bool, caller_link: CallerLink) -> Self {
        Self {
            request_id: format!("req_{}", uuid::Uuid::now_v7().simple()),
            started: Instant::now(),
            started_ms: now_ms(),
            user_id: caller.user_id.clone(),
            route: None,
            route_rule: None,
            attempts: 0,
            provider: None,
            model: None,
            key_id: None,
            stream,
            caller_key: caller.key.clone(),
            caller_grant: None,
            credit_hold: None,
            caller_link,
            prompt: PromptCount::default(),
            model_known: false,
            key_attempts: Vec::new(),
            attempt_log: Vec::new(),
            skips_logged: HashSet::new(),
            tags: caller.tags.clone(),
            cache: None,
            saved_micros: 0,
            request_type: caller.request_type,
        }
    }

    fn facts(&self) -> CallFacts {
        CallFacts {
            request_id: self.request_id.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            attempts: self.attempts,
            route: self.route.clone(),
            route_rule: self.route_rule.clone(),
            cache: self.cache,
        }
    }

    fn outcome(&self, result: Result<Bytes, ApiError>) -> ChatOutcome {
        ChatOutcome { facts: self.facts(), result }
    }

    /// The call's log event. `error` is `(status, code, message)` for a failed call.
    fn event(
        &self,
        requested_model: &str,
        usage: Usage,
        cost: u64,
        error: Option<(u16, Option<String>, &str)>,
        ttfb_ms: Option<u64>,
    ) -> LogEvent {
        let (status, http_status, error_code, error_message) = match error {
            None => (CallStatus::Success, 200, None, None),
            Some((http, code, message)) => (CallStatus::Error, http, code, Some(LogEvent::clip_message(message))),
        };
        LogEvent {
            v: LOG_EVENT_VERSION,
            request_id: self.request_id.clone(),
            ts_ms: self.started_ms,
            user_id: Some(self.user_id.clone()),
            caller_key_id: self.caller_key.as_ref().map(|k| k.id.clone()),
            provider: self.provider.clone().unwrap_or_else(|| "none".to_string()),
            model: match (&self.model, self.model_known) {
                (Some(model), _) => model.clone(),
                (None, true) => requested_model.to_string(),
                (None, false) => UNKNOWN_MODEL.to_string(),
            },
            key_id: self.key_id.clone(),
            route: self.route.clone(),
            route_rule: self.route_rule.clone(),
            request_type: self.request_type.to_string(),
            stream: self.stream,
            status,
            http_status,
            error_code,
            error_message,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_tokens: usage.cached_tokens,
            cost_micros: cost,
            latency_ms: self.started.elapsed().as_millis() as u64,
            ttfb_ms,
            attempts: self.attempts,
            cache_write_tokens: usage.cache_write_tokens,
            key_attempts: self.key_attempts.clone(),
            cache: self.cache.map(str::to_string),
            saved_micros: self.saved_micros,
            attempt_log: self.attempt_log.clone(),
        }
        .bounded()
    }

    /// Counts an attempt with `key` for `target` (and whether it failed).
    fn note_attempt(&mut self, target: &Target<'_>, key_id: &str, failed: bool) {
        let (provider, model) = (&target.entry.provider.code, &target.model.model);
        let found =
            self.key_attempts.iter_mut().find(|a| a.key_id == key_id && a.provider == *provider && a.model == *model);
        let entry = match found {
            Some(entry) => entry,
            None => {
                self.key_attempts.push(KeyAttempts {
                    provider: provider.clone(),
                    model: model.clone(),
                    key_id: key_id.to_string(),
                    attempts: 0,
                    errors: 0,
                });
                let last = self.key_attempts.len() - 1;
                &mut self.key_attempts[last]
            }
        };
        if failed {
            entry.errors += 1;
        } else {
            entry.attempts += 1;
        }
    }

    /// Adds an entry to the attempt log: `key_id` tried on `target` (or none), with what came of
    /// it. Of `skipped`, only keys not listed yet for this provider are, unless no key was tried.
    fn log_attempt(&mut self, target: &Target<'_>, key_id: Option<&str>, result: AttemptResult, skipped: Vec<Skip>) {
        let provider = &target.entry.provider.code;
        let skipped = skipped
            .into_iter()
            .filter(|skip| key_id.is_none() || self.skips_logged.insert((provider.clone(), skip.clone())))
            .map(|skip| SkippedKey { key_id: skip.key_id, reason: skip.reason.as_str().to_string() })
            .collect();
        let entry = Attempt {
            provider: provider.clone(),
            model: target.model.model.clone(),
            key_id: key_id.map(str::to_string),
            outcome: result.outcome.to_string(),
            http_status: result.http_status,
            message: result.message,
            latency_ms: result.latency_ms,
            skipped,
        };
        crate::logs::push_attempt(&mut self.attempt_log, entry);
    }

    /// Takes back an attempt that never reached the provider (Maestro refused the request).
    fn forget_attempt(&mut self, target: &Target<'_>, key_id: &str, previous_key: Option<String>) {
        let (provider, model) = (&target.entry.provider.code, &target.model.model);
        if let Some(i) =
            self.key_attempts.iter().position(|a| a.key_id == key_id && a.provider == *provider && a.model == *model)
        {
            self.key_attempts[i].attempts = self.key_attempts[i].attempts.saturating_sub(1);
            if self.key_attempts[i].attempts == 0 && self.key_attempts[i].errors == 0 {
                self.key_attempts.remove(i);
            }
        }
        self.attempts = self.attempts.saturating_sub(1);
        self.key_id = previous_key;
    }

    fn error_event(&self, requested_model: &str, e: &ApiError) -> LogEvent {
        self.event(
            requested_model,
            Usage::default(),
            0,
            Some((e.status(), e.code().map(str::to_string), e.message())),
            None,
        )
    }
}

impl Gateway {
    pub fn new(backends: Backends, client: ProviderClient, options: GatewayOptions) -> Self {
        let catalog = CatalogCache::new(options.catalog_ttl);
        let (shutting_down, _) = tokio::sync::watch::channel(false);
        Self {
            backends,
            client,
            options,
            catalog,
            pool: KeyPool::default(),
            board: TargetBoard::default(),
            latency_source: None,
            shutting_down,
        }
    }

    /// Seeds `fastest` routes' latencies from these stats (the recent median of each target).
    pub fn with_latency_source(mut self, stats: Arc<dyn StatsStore>) -> Self {
        self.latency_source = Some(stats);
        self
    }

    /// Ends every running stream with an in-band `server_shutting_down` error; each is recorded
    /// with the tokens it had seen. Called when a shutdown's grace period is over.
    pub fn end_streams(&self) {
        self.shutting_down.send_replace(true);
    }

    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The catalog as this container sees it (cached for `catalog_ttl`).
    pub async fn catalog(&self) -> Result<Arc<Catalog>, ApiError> {
        self.catalog.get(self.backends.catalog.as_ref()).await.map_err(ApiError::from)
    }

    /// Drops the cached catalog so the next request reads the store (after an admin change).
    pub fn invalidate_catalog(&self) {
        self.catalog.invalidate();
    }

    /// Serves one non-streaming chat request and records it. The call runs in a task of its own:
    /// if this future is dropped (the caller hung up), the call still ends, is recorded with its
    /// real usage as `client_disconnected` (499), and its grants are settled.
    pub async fn chat(self: &Arc<Self>, caller: &Caller, request: ChatRequest) -> ChatOutcome {
        self.chat_until(caller, request, None).await
    }

    /// [`Self::chat`] for a caller with a time limit of its own: the call also ends by
    /// `deadline` (a 504 when no provider answered by then), whichever of it and
    /// `retry.deadline_ms` comes first.
    pub async fn chat_until(
        self: &Arc<Self>,
        caller: &Caller,
        request: ChatRequest,
        deadline: Option<Instant>,
    ) -> ChatOutcome {
        let caller = caller.clone();
        self.detached(deadline, |gateway, link| async move { gateway.run_chat(&caller, request, link).await })
            .await
            .unwrap_or_else(|panicked| panicked)
    }

    /// Runs a call in a task of its own, so a caller hanging up (dropping this future) cannot
    /// cancel it; the caller's end of the link lives as long as this future. A task that
    /// panicked is the caller's 500.
    async fn detached<T, F>(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        run: impl FnOnce(Arc<Self>, CallerLink) -> F,
    ) -> Result<T, ChatOutcome>
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let (link, _caller_present) = CallerLink::new(deadline);
        tokio::spawn(run(Arc::clone(self), link)).await.map_err(panicked_call)
    }

    /// Serves a `stream: true` request. Until the first frame is ready this behaves like
    /// [`Self::chat`] (retries, fallback, a JSON error, a task that a hang-up cannot cancel);
    /// after that the body streams, and the call is recorded when the stream ends, breaks or the
    /// caller goes away.
    pub async fn chat_stream(
        self: &Arc<Self>,
        caller: &Caller,
        request: ChatRequest,
    ) -> Result<ChatStream, ChatOutcome> {
        self.chat_stream_until(caller, request, None).await
    }

    /// [`Self::chat_stream`] for a caller with a time limit of its own: a stream still running
    /// at `deadline` ends in-band (`stream_deadline_exceeded`) and is recorded, as at
    /// `retry.stream_deadline_ms`, whichever comes first. Leave the caller time after
    /// `deadline` for the end to be recorded.
    pub async fn chat_stream_until(
        self: &Arc<Self>,
        caller: &Caller,
        request: ChatRequest,
        deadline: Option<Instant>,
    ) -> Result<ChatStream, ChatOutcome> {
        let caller = caller.clone();
        self.detached(deadline, |gateway, link| async move { gateway.run_chat_stream(&caller, request, link).await })
            .await
            .and_then(std::convert::identity)
    }

    /// Records a call refused before it could be read as a chat request (a body that is not
    /// JSON, lacks `messages`, or an Anthropic request without `max_tokens`): every call of an
    /// authenticated caller is in the log, its mistakes too. The model is [`UNKNOWN_MODEL`].
    /// Returns the request id it was recorded under.
    pub async fn record_rejection(self: &Arc<Self>, caller: &Caller, stream: bool, error: &ApiError) -> String {
        self.record_rejected(caller, caller.request_type, stream, error).await
    }

    /// [`Self::record_rejection`] for a call of another `request_type` (`embeddings`).
    pub async fn record_rejected(
        self: &Arc<Self>,
        caller: &Caller,
        request_type: &'static str,
        stream: bool,
        error: &ApiError,
    ) -> String {
        let (link, _caller_present) = CallerLink::new(None);
        let mut state = CallState::new(caller, stream, link);
        state.request_type = request_type;
        let event = state.error_event(UNKNOWN_MODEL, error);
        let request_id = event.request_id.clone();
        let sink = Arc::clone(&self.backends.log_sink);
        // In a task of its own, like a call: a caller hanging up cannot cancel the record.
        if let Err(e) = tokio::spawn(async move { sink.send(event).await }).await {
            tracing::error!(error = %e, "recording a rejected call failed");
        }
        request_id
    }

    async fn run_chat(&self, caller: &Caller, request: ChatRequest, link: CallerLink) -> ChatOutcome {
        let mut state = CallState::new(caller, false, link);
        let plan = self.cache_plan(caller, &request).await;
        if let Some(plan) = &plan
            && let Some(hit) = self.cached_answer(plan).await
        {
            let body = hit.body.clone();
            self.record_hit(&mut state, &request, plan, hit, None).await;
            return state.outcome(Ok(body));
        }
        state.cache = plan.as_ref().map(|_| cache::MISS);
        let served = self.serve(&mut state, &request, &Complete { request: &request }).await;
        if let (Some(plan), Ok(served)) = (&plan, &served) {
            let fresh = cached::Fresh {
                body: served.output.body.clone(),
                provider: state.provider.as_deref().unwrap_or_default(),
                model: state.model.as_deref().unwrap_or_default(),
                usage: served.output.usage,
                cost_micros: cost_micros(&served.prices, &served.output.usage),
            };
            cached::store_answer(self.backends.response_cache.as_ref(), plan, fresh).await;
        }
        self.finish(&mut state, &request.model, served).await
    }

    /// Records a call answered in one piece (a chat or embeddings): the caller's grant and
    /// credits settled with the real usage and cost (nothing for a failure), then its one log
    /// event, and only then its outcome.
    async fn finish(
        &self,
        state: &mut CallState,
        requested_model: &str,
        served: Result<Served<ProviderReply>, ApiError>,
    ) -> ChatOutcome {
        let served = match served {
            Ok(served) => served,
            Err(e) => return self.record_failure(state, requested_model, e).await,
        };
        let usage = served.output.usage;
        let cost = cost_micros(&served.prices, &usage);
        state.key_id = Some(served.key_id);
        caller_budget::settle(self.backends.counters.as_ref(), state.caller_grant.take(), usage, cost).await;
        self.settle_credits(state, cost).await;
        // Served and billed upstream either way; a caller gone by now never sees it.
        let hung_up = state.caller_link.is_gone().then_some((
            CLIENT_CLOSED,
            Some(CLIENT_DISCONNECTED.to_string()),
            "the caller hung up before the answer was ready",
        ));
        self.backends.log_sink.send(state.event(requested_model, usage, cost, hung_up, None)).await;
        state.outcome(Ok(served.output.body))
    }

    /// Records a call that failed: its grants settled at zero, its log event sent.
    async fn record_failure(&self, state: &mut CallState, requested_model: &str, e: ApiError) -> ChatOutcome {
        caller_budget::settle(self.backends.counters.as_ref(), state.caller_grant.take(), Usage::default(), 0).await;
        self.settle_credits(state, 0).await;
        self.backends.log_sink.send(state.error_event(requested_model, &e)).await;
        state.outcome(Err(e))
    }

    async fn run_chat_stream(
        &self,
        caller: &Caller,
        request: ChatRequest,
        link: CallerLink,
    ) -> Result<ChatStream, ChatOutcome> {
        let mut state = CallState::new(caller, true, link);
        let caller_wants_usage = request
            .extra
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let plan = self.cache_plan(caller, &request).await;
        if let Some(plan) = &plan
            && let Some(hit) = self.cached_answer(plan).await
            && let Some(frames) = cache::replay_as_stream(&hit.body, caller_wants_usage)
        {
            let ttfb_ms = state.started.elapsed().as_millis() as u64;
            self.record_hit(&mut state, &request, plan, hit, Some(ttfb_ms)).await;
            let body = axum::body::Body::from_stream(futures_util::stream::iter(
                frames.into_iter().map(Ok::<_, std::convert::Infallible>),
            ));
            return Ok(ChatStream { facts: state.facts(), body });
        }
        state.cache = plan.as_ref().map(|_| cache::MISS);
        match self.serve(&mut state, &request, &Streaming { request: &request, caller_wants_usage }).await {
            // A caller gone by now drops the body unread: the stream's task records it as a hang-up.
            Ok(served) => {
                let limits = stream::Limits {
                    deadline: tokio::time::Instant::from_std(
                        state.caller_link.deadline(state.started, self.options.policy.stream_deadline()),
                    ),
                    shutting_down: self.shutting_down.subscribe(),
                    credit_markup: self.options.credit_markup.clone(),
                };
                Ok(stream::start(self.backends.clone(), state, &request, served, limits, plan))
            }
            Err(e) => Err(self.record_failure(&mut state, &request.model, e).await),
        }
    }

    /// Records a call answered from the cache: no key, no tokens, no cost, and what the
    /// original call cost as saved. Hits are free, so they take nothing from a caller key's
    /// budgets or the user's credits.
    async fn record_hit(
        &self,
        state: &mut CallState,
        request: &ChatRequest,
        plan: &cached::CachePlan,
        hit: crate::store::CachedAnswer,
        ttfb_ms: Option<u64>,
    ) {
        state.cache = Some(cache::HIT);
        state.saved_micros = hit.cost_micros;
        state.provider = Some(hit.provider);
        state.model = Some(hit.model);
        state.route = plan.route.clone();
        state.model_known = true;
        self.backends.log_sink.send(state.event(&request.model, Usage::default(), 0, None, ttfb_ms)).await;
    }

    /// Settles the call's credit hold against `cost` on the served (or last tried) model.
    async fn settle_credits(&self, state: &mut CallState, cost: u64) {
        settle_credit_hold(&self.backends, &self.options.credit_markup, state, cost).await;
    }

    async fn serve<M: Mode>(
        &self,
        state: &mut CallState,
        request: &ChatRequest,
        mode: &M,
    ) -> Result<Served<M::Output>, ApiError> {
        let catalog = self.catalog().await?;
        let resolution = catalog.resolve(&request.model);
        state.model_known = resolution.is_ok();
        request.validate()?;
        let mut resolution = resolution?;
        state.route = resolution.route.clone();
        let route = resolution.route.as_deref().and_then(|name| catalog.route(name));

        // Counted once (off the async threads when large): rules, context windows and every
        // reservation are judged from it.
        let cl100k = match route {
            Some(route) => route
                .all_targets()
                .iter()
                .filter_map(|t| t.split_once('/'))
                .any(|(p, m)| catalog.provider(p).is_some_and(|e| needs_cl100k(e.provider.kind, m))),
            None => resolution.targets.iter().any(|t| needs_cl100k(t.entry.provider.kind, &t.model.model)),
        };
        state.prompt = PromptCount::of(request, cl100k).await;
        let requested_max = request.requested_max_tokens();
        let prompt_tokens = routed::prompt_tokens(route, &resolution, request, &state.prompt).await;
        if let Some(route) = route {
            let traits = RequestTraits {
                prompt_tokens: Some(prompt_tokens),
                ..RequestTraits::of(request, &state.user_id, &state.tags)
            };
            let (rule, targets) =
                self.route_targets(&catalog, route, traits, request.requested_max_tokens(), M::TIMING).await;
            state.route_rule = Some(rule);
            resolution.targets = targets;
        }
        if let Some(key) = &state.caller_key {
            caller_budget::check_allowed(key, &request.model, &resolution)?;
        }
        let targets: Vec<&Target<'_>> = resolution
            .targets
            .iter()
            .filter(|t| self.options.allow_demo || t.entry.provider.kind != ProviderKind::Demo)
            .collect();
        if targets.is_empty() {
            return Err(ApiError::model_not_found(&request.model));
        }
        // Each target must be able to do what is asked; if none can, say what is missing.
        let asked = requested_max.unwrap_or(0);
        type Check<'c> = Box<dyn Fn(&Target<'_>) -> bool + 'c>;
        // Without `drop_params` (the request's, the route's or the model's), a parameter some
        // targets cannot honour excludes them (no silent drop: code reading `choices[1]` or
        // `logprobs` would break).
        let strict = !request.drops_params() && !resolution.drop_params;
        let checks: [(bool, Check<'_>, &str, String); 7] = [
            (
                true,
                Box::new(|t| !t.model.is_embedding()),
                "model",
                format!("`{}` is an embedding model; send it to `POST /v1/embeddings`.", request.model),
            ),
            (
                requested_max.is_some(),
                Box::new(|t| t.model.max_output_tokens.is_none_or(|cap| cap >= asked)),
                "max_tokens",
                format!(
                    "`max_tokens` is {} but `{}` allows at most {} output tokens.",
                    asked,
                    request.model,
                    targets.iter().filter_map(|t| t.model.max_output_tokens).max().unwrap_or(0)
                ),
            ),
            (
                request.is_stream(),
                Box::new(|t| t.model.supports_streaming),
                "stream",
                format!("`{}` does not support streaming.", request.model),
            ),
            (
                request.uses_tools(),
                Box::new(|t| t.model.supports_tools),
                "tools",
                format!("`{}` does not support tools.", request.model),
            ),
            (
                request.uses_images(),
                Box::new(|t| t.model.supports_vision),
                "messages",
                format!("`{}` does not accept images.", request.model),
            ),
            (
                strict && request.asks_several_choices(),
                Box::new(|t| t.model.drop_params || t.entry.provider.kind.supports_several_choices()),
                "n",
                format!(
                    "`n` > 1 is not supported by `{}`'s provider; send `n: 1`, or `drop_params: true` to get one choice.",
                    request.model
                ),
            ),
            (
                strict && request.asks_logprobs(),
                Box::new(|t| t.model.drop_params || t.entry.provider.kind.supports_logprobs()),
                "logprobs",
                format!(
                    "`logprobs` is not supported by `{}`'s provider; leave it out, or send `drop_params: true` to drop it.",
                    request.model
                ),
            ),
        ];
        let mut fitting: Vec<&Target<'_>> = targets;
        for (needed, can, param, message) in checks {
            if !needed {
                continue;
            }
            let before = fitting.len();
            fitting.retain(|t| can(t));
            if fitting.is_empty() && before > 0 {
                return Err(ApiError::invalid_param(param, message));
            }
        }
        // A target whose context window cannot hold the prompt and `max_tokens` is skipped.
        let largest = fitting.iter().filter_map(|t| t.model.context_window.map(|w| (w, target_name(t)))).max();
        fitting.retain(|t| fits_context(t.model, prompt_tokens, requested_max));
        if fitting.is_empty() {
            let (window, name) = largest.unwrap_or_default();
            let asked = requested_max.map_or(String::new(), |m| format!(" plus `max_tokens` ({m})"));
            return Err(ApiError::invalid_param(
                "messages",
                format!(
                    "The prompt (about {prompt_tokens} tokens){asked} does not fit the context window of any target of `{}`; the largest is {window} tokens (`{name}`).",
                    request.model
                ),
            )
            .with_code("context_length_exceeded"));
        }

        self.serve_targets(state, fitting, mode).await
    }

    /// The part of a call that chat and embeddings share, once the request is checked and its
    /// fitting targets known: the caller key's and the user's reservations, then each target in
    /// order until one serves.
    async fn serve_targets<M: Mode>(
        &self,
        state: &mut CallState,
        fitting: Vec<&Target<'_>>,
        mode: &M,
    ) -> Result<Served<M::Output>, ApiError> {
        // A Maestro API key's own limits: reserved once per call, before any provider is tried;
        // settled in `finish` / the stream's end, where the call is recorded.
        if let Some(key) = state.caller_key.clone() {
            state.caller_grant = caller_budget::reserve(
                self.backends.counters.as_ref(),
                &key,
                mode.ask(),
                &state.prompt,
                &fitting,
                self.options.policy.default_max_tokens,
            )
            .await?;
        }
        // The user's credits, when they are on: held once per call, settled where it is recorded.
        if let Some(c) = &self.backends.credits {
            state.credit_hold = Some(
                credits::hold(
                    &c.store,
                    &self.options.credit_markup,
                    &state.user_id,
                    mode.ask(),
                    &state.prompt,
                    &fitting,
                    self.options.policy.default_max_tokens,
                )
                .await?,
            );
        }

        let mut last = ApiError::unavailable("no_target", "No provider could serve this request.");
        // The error of the last target a provider failed for: it, not a later target's keys all
        // being at Maestro's own limits (nothing sent), is what happened to the call.
        let mut last_upstream: Option<ApiError> = None;
        for target in fitting {
            state.provider = Some(target.entry.provider.code.clone());
            state.model = Some(target.model.model.clone());
            let (started, attempts_before) = (Instant::now(), state.attempts);
            match self.try_target(state, target, mode).await {
                Ok(served) => {
                    let latency_ms = started.elapsed().as_millis() as u64;
                    let completion = M::settled_usage(&served.output).map(|u| u.completion_tokens);
                    self.board.note_success(&target_name(target), now_ms(), M::TIMING, latency_ms, completion);
                    return Ok(served);
                }
                Err(TargetFailure::Client(e)) => return Err(e),
                Err(TargetFailure::Exhausted(e)) => {
                    // Only a target the provider failed for counts against it: every key being
                    // at Maestro's own limits says nothing of its health.
                    if state.attempts > attempts_before {
                        self.board.note_failure(&target_name(target), now_ms());
                        last_upstream = Some(e.clone());
                    }
                    tracing::warn!(request_id = %state.request_id, provider = %target.entry.provider.code, model = %target.model.model, error = %e, "target exhausted; falling back");
                    last = e;
                }
            }
        }
        Err(last_upstream.unwrap_or(last))
    }

    /// Tries one target: keys in order, retries by the policy, until it serves or is exhausted.
    async fn try_target<M: Mode>(
        &self,
        state: &mut CallState,
        target: &Target<'_>,
        mode: &M,
    ) -> Result<Served<M::Output>, TargetFailure> {
        let policy = &self.options.policy;
        let provider = &target.entry.provider;
        // What the call may bill at most: reserved against the key's tpm, reconciled afterwards.
        let kind = provider.kind;
        let estimate = state
            .prompt
            .bound(kind, &target.model.model)
            .saturating_add(mode.ask().output_bound(target, policy.default_max_tokens));
        let mut excluded: HashSet<String> = HashSet::new();
        let mut retries = 0u32;
        let mut last_error: Option<ProviderError> = None;
        // Cool-downs this call set: the catalog it started from does not show them yet.
        let mut cooled: Option<Cooling> = None;

        loop {
            if state.attempts > 0 && state.caller_link.is_gone() {
                // Nobody waits for another attempt: stop spending the caller's keys.
                return Err(TargetFailure::Client(caller_gone()));
            }
            let remaining = state.caller_link.remaining(state.started, policy.deadline());
            if remaining.is_zero() {
                return Err(TargetFailure::Exhausted(ApiError::gateway_timeout(
                    "The call ran out of time before a provider answered.",
                )));
            }
            let now = now_ms();
            let mut skipped = Vec::new();
            let pick = self
                .pool
                .pick(self.backends.counters.as_ref(), &target.entry.keys, now, estimate, &excluded, &mut skipped)
                .await;
            let (key, grant) = match pick {
                Ok(Pick::Reserved { key, grant }) => (key, grant),
                Ok(Pick::AllFull { until_ms }) => {
                    state.log_attempt(target, None, AttemptResult::no_key(), skipped);
                    return Err(TargetFailure::Exhausted(all_full_error(
                        &provider.code,
                        last_error.as_ref(),
                        secs_until(until_ms, now),
                    )));
                }
                Ok(Pick::NoUsableKey { cooling_until, after_errors }) => {
                    state.log_attempt(target, None, AttemptResult::no_key(), skipped);
                    let seen = cooling_until.map(|until_ms| Cooling { until_ms, after_errors });
                    return Err(TargetFailure::Exhausted(no_key_error(
                        &provider.code,
                        last_error.as_ref(),
                        Cooling::earliest(seen, cooled),
                        now,
                    )));
                }
                Err(e) => {
                    state.log_attempt(target, None, AttemptResult::no_key(), skipped);
                    return Err(TargetFailure::Exhausted(ApiError::from(e)));
                }
            };
            state.attempts += 1;
            let previous_key = state.key_id.replace(key.id.clone());
            state.note_attempt(target, &key.id, false);

            let secret = match self.backends.secrets.get_secret(&key.secret_ref).await {
                Ok(secret) => secret,
                Err(e) => {
                    tracing::error!(key_id = %key.id, error = %e, "key secret unreadable; skipping the key");
                    release(self.backends.counters.as_ref(), &grant, grant.reserved_tokens).await;
                    excluded.insert(key.id.clone());
                    let result = AttemptResult {
                        outcome: ATTEMPT_SECRET_UNREADABLE,
                        http_status: None,
                        message: Some("The key's secret could not be read; nothing was sent.".to_string()),
                        latency_ms: 0,
                    };
                    state.log_attempt(target, Some(&key.id), result, skipped);
                    continue;
                }
            };
            let to = Upstream {
                provider,
                model: target.model,
                api_key: &secret,
                default_max_tokens: policy.default_max_tokens,
                timeout: policy.attempt_timeout().min(remaining),
            };
            let sent = Instant::now();
            let outcome = mode.attempt(&self.client, to).await;
            let latency_ms = sent.elapsed().as_millis() as u64;
            let outcome = outcome.map_err(|mut error| {
                // The provider's words as far as the log and the caller see them: no credential.
                error.message = provider_message(&error.message, &secret, provider);
                error
            });
            match &outcome {
                Err(error) if error.kind == ProviderErrorKind::InvalidRequest && error.status.is_none() => {}
                Ok(_) => {
                    let result =
                        AttemptResult { outcome: ATTEMPT_OK, http_status: Some(200), message: None, latency_ms };
                    state.log_attempt(target, Some(&key.id), result, skipped);
                }
                Err(error) => {
                    let result = AttemptResult {
                        outcome: error.kind.as_str(),
                        http_status: error.status,
                        message: Some(short(&error.message)),
                        latency_ms,
                    };
                    state.log_attempt(target, Some(&key.id), result, skipped);
                }
            }
            match outcome {
                Ok(output) => {
                    if let Some(usage) = M::settled_usage(&output) {
                        reconcile(self.backends.counters.as_ref(), &grant, usage).await;
                    }
                    self.pool.note_success(&key.id);
                    if let Some(change) = health::after_success(key.status) {
                        self.set_status(&key, change.status, change.cooldown_until).await;
                    }
                    let prompt_tokens_if_cut = state.prompt.recorded(kind, &target.model.model);
                    return Ok(Served {
                        output,
                        key_id: key.id,
                        grant,
                        prices: target.model.prices,
                        prompt_tokens_if_cut,
                    });
                }
                Err(error) if error.kind == ProviderErrorKind::InvalidRequest && error.status.is_none() => {
                    // Maestro refused the request for this provider before sending it: the
                    // caller's error, not a failed attempt on the key.
                    state.forget_attempt(target, &key.id, previous_key);
                    release(self.backends.counters.as_ref(), &grant, grant.reserved_tokens).await;
                    return Err(TargetFailure::Client(client_error(&error)));
                }
                Err(error) => {
                    state.note_attempt(target, &key.id, true);
                    // The provider counted the request but no tokens: give the tokens back.
                    release(self.backends.counters.as_ref(), &grant, grant.reserved_tokens).await;
                    tracing::warn!(request_id = %state.request_id, key = %key.masked, provider = %provider.code, error = %error, "upstream attempt failed");
                    if error.kind == ProviderErrorKind::InvalidRequest {
                        return Err(TargetFailure::Client(client_error(&error)));
                    }
                    let retryable = error.kind.is_retryable();
                    let failures = if retryable { self.pool.note_failure(&key.id) } else { 0 };
                    let change = health::after_failure(error.kind, error.retry_after, failures, policy, now_ms());
                    if let Some(change) = change {
                        self.set_status(&key, change.status, change.cooldown_until).await;
                        self.note_error(&key, &secret, provider, &error).await;
                        excluded.insert(key.id.clone());
                        let cooling = change
                            .cooldown_until
                            .map(|until_ms| Cooling { until_ms, after_errors: change.after_errors() });
                        cooled = Cooling::earliest(cooled, cooling);
                    }
                    if retryable {
                        if change.is_none() && another_usable_key(&target.entry.keys, &key.id, &excluded) {
                            // The retry goes to another key: a failing key must not hold the
                            // call while a healthy one of the same provider sits idle.
                            excluded.insert(key.id.clone());
                        }
                        if retries >= policy.max_retries {
                            return Err(TargetFailure::Exhausted(upstream_error(&provider.code, &error)));
                        }
                        let wait = policy.backoff(retries, error.retry_after);
                        if wait >= state.caller_link.remaining(state.started, policy.deadline()) {
                            return Err(TargetFailure::Exhausted(upstream_error(&provider.code, &error)));
                        }
                        retries += 1;
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = state.caller_link.gone() => return Err(TargetFailure::Client(caller_gone())),
                        }
                    } else if change.is_none() {
                        // Neither the key's fault nor worth a retry: the target cannot serve.
                        return Err(TargetFailure::Exhausted(upstream_error(&provider.code, &error)));
                    }
                    last_error = Some(error);
                }
            }
        }
    }

    /// Notes why a key was taken out of use (the provider's words, credentials masked), for the
    /// admin who sees it `invalid` or cooling down.
    async fn note_error(&self, key: &ApiKey, secret: &SecretString, provider: &Provider, error: &ProviderError) {
        let message =
            crate::admin::key_error_note(error.status, &crate::admin::scrubbed(&error.message, secret, provider));
        if let Err(e) = self.backends.catalog.note_key_error(&key.id, &message, now_ms()).await {
            tracing::warn!(key_id = %key.id, error = %e, "could not note a key's error");
        }
    }

    async fn set_status(&self, key: &ApiKey, status: KeyStatus, cooldown_until: Option<i64>) {
        tracing::info!(key_id = %key.id, key = %key.masked, status = status.as_str(), ?cooldown_until, "key status changes");
        match self.backends.catalog.set_key_status(&key.id, status, cooldown_until).await {
            Ok(()) => self.catalog.invalidate(),
            Err(e) => tracing::error!(key_id = %key.id, error = %e, "could not save key status"),
        }
    }
}

/// Whether a provider has a usable key besides `key_id` that this call has not excluded.
fn another_usable_key(keys: &[ApiKey], key_id: &str, excluded: &HashSet<String>) -> bool {
    let now = now_ms();
    keys.iter().any(|k| k.id != key_id && k.is_usable(now) && !excluded.contains(&k.id))
}

/// The error recorded for a call whose caller went away before it was served.
fn caller_gone() -> ApiError {
    ApiError::client_closed(CLIENT_DISCONNECTED, "The caller hung up before the call was served.")
}

/// The outcome of a call whose task panicked (a bug): a 500, and the panic in the log.
fn panicked_call(e: tokio::task::JoinError) -> ChatOutcome {
    tracing::error!(error = %e, "a chat call's task failed");
    ChatOutcome {
        facts: CallFacts { request_id: format!("req_{}", uuid::Uuid::now_v7().simple()), ..CallFacts::default() },
        result: Err(ApiError::internal()),
    }
}

/// Replaces a grant's token estimate with the real usage.
async fn reconcile(counters: &dyn CounterStore, grant: &Grant, usage: Usage) {
    let delta =
        i64::try_from(usage.total()).unwrap_or(i64::MAX) - i64::try_from(grant.reserved_tokens).unwrap_or(i64::MAX);
    if delta == 0 {
        return;
    }
    if let Err(e) = counters.reconcile(grant, delta).await {
        tracing::error!(key_id = %grant.key_id, error = %e, "token reconcile failed");
    }
}

/// Gives back reserved tokens that were not used.
async fn release(counters: &dyn CounterStore, grant: &Grant, tokens: u64) {
    let delta = -i64::try_from(tokens).unwrap_or(i64::MAX);
    if let Err(e) = counters.reconcile(grant, delta).await {
        tracing::error!(key_id = %grant.key_id, error = %e, "token release failed");
    }
}

/// [`Gateway::settle_credits`] for the stream's task, which holds the backends but no gateway.
async fn settle_credit_hold(
    backends: &Backends,
    markup: &crate::pricing::CreditMarkup,
    state: &mut CallState,
    cost: u64,
) {
    let charge = credits::Charge {
        provider: state.provider.as_deref(),
        model: state.model.as_deref(),
        cost_micros: cost,
        call_id: &state.request_id,
        started_ms: state.started_ms,
    };
    credits::settle(backends.credits.as_ref(), markup, state.credit_hold.take(), charge).await;
}
