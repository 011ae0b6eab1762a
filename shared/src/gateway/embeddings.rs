//! `POST /v1/embeddings`: OpenAI's embeddings through the chat path's machinery. The request is
//! checked and its targets chosen here (a route's rules and strategy, the caller key's models,
//! kinds with an embeddings API, embedding models); the reservations, attempts, retries,
//! fallback, hang-ups and the record are the chat path's own ([`Gateway::serve_targets`],
//! [`Gateway::finish`]). The answer is the provider's, byte for byte; the cost is its input
//! tokens at the model's input price.

use std::sync::Arc;
use std::time::Instant;

use super::{Ask, CallState, Caller, CallerLink, ChatOutcome, Gateway, Mode, Served, Upstream, caller_budget};
use crate::domain::{EmbeddingsBody, EmbeddingsRequest, ProviderKind, Target, Usage};
use crate::error::ApiError;
use crate::logs::UNKNOWN_MODEL;
use crate::providers::{EmbeddingCall, ProviderClient, ProviderError, ProviderReply};
use crate::routing::{RequestTraits, Timing, target_name};
use crate::tokens::{PromptCount, needs_cl100k};

/// The log's `request_type` of an embeddings call.
pub const EMBEDDINGS_REQUEST_TYPE: &str = "embeddings";

/// An embeddings call as the attempt loop runs it.
struct Embed<'r> {
    request: &'r EmbeddingsRequest,
}

impl Mode for Embed<'_> {
    type Output = ProviderReply;

    fn ask(&self) -> Ask<'_> {
        Ask::Embeddings
    }

    async fn attempt(&self, client: &ProviderClient, to: Upstream<'_>) -> Result<ProviderReply, ProviderError> {
        let call = EmbeddingCall {
            provider: to.provider,
            model: to.model,
            api_key: to.api_key,
            request: self.request,
            timeout: to.timeout,
        };
        client.embeddings(call).await
    }

    fn settled_usage(output: &ProviderReply) -> Option<Usage> {
        Some(output.usage)
    }

    const TIMING: Timing = Timing::Complete;
}

impl Gateway {
    /// Serves one embeddings request and records it (`request_type` `embeddings`). Like
    /// [`Self::chat`], the call runs in a task of its own, so a caller hanging up cannot cancel
    /// it: it ends, is recorded with its real usage (499), and its grants are settled.
    pub async fn embeddings(self: &Arc<Self>, caller: &Caller, body: EmbeddingsBody) -> ChatOutcome {
        self.embeddings_until(caller, body, None).await
    }

    /// [`Self::embeddings`] for a caller with a time limit of its own (see [`Self::chat_until`]).
    pub async fn embeddings_until(
        self: &Arc<Self>,
        caller: &Caller,
        body: EmbeddingsBody,
        deadline: Option<Instant>,
    ) -> ChatOutcome {
        let caller = caller.clone();
        self.detached(deadline, |gateway, link| async move { gateway.run_embeddings(&caller, body, link).await })
            .await
            .unwrap_or_else(|panicked| panicked)
    }

    async fn run_embeddings(&self, caller: &Caller, body: EmbeddingsBody, link: CallerLink) -> ChatOutcome {
        let mut state = CallState::new(caller, false, link);
        state.request_type = EMBEDDINGS_REQUEST_TYPE;
        let requested = body.model_name().unwrap_or(UNKNOWN_MODEL).to_string();
        let served = self.serve_embeddings(&mut state, &body).await;
        self.finish(&mut state, &requested, served).await
    }

    async fn serve_embeddings(
        &self,
        state: &mut CallState,
        body: &EmbeddingsBody,
    ) -> Result<Served<ProviderReply>, ApiError> {
        let catalog = self.catalog().await?;
        let resolution = body.model_name().map(|name| catalog.resolve(name));
        state.model_known = matches!(resolution, Some(Ok(_)));
        let request = body.check()?;
        let mut resolution = match resolution {
            Some(resolution) => resolution?,
            None => return Err(ApiError::model_not_found(&request.model)),
        };
        state.route = resolution.route.clone();
        let route = resolution.route.as_deref().and_then(|name| catalog.route(name));

        let cl100k = match route {
            Some(route) => route
                .all_targets()
                .iter()
                .filter_map(|t| t.split_once('/'))
                .any(|(p, m)| catalog.provider(p).is_some_and(|e| needs_cl100k(e.provider.kind, m))),
            None => resolution.targets.iter().any(|t| needs_cl100k(t.entry.provider.kind, &t.model.model)),
        };
        // A route's rules compare the o200k count, so it is counted exactly there.
        state.prompt = PromptCount::of_embeddings(&request.input, cl100k, route.is_some()).await;
        if let Some(route) = route {
            let traits = RequestTraits {
                prompt_tokens: Some(state.prompt.o200k_bound()),
                ..RequestTraits::of_texts(request.input.texts(), &state.user_id, &state.tags)
            };
            let (rule, targets) = self.route_targets(&catalog, route, traits, None, Timing::Complete).await;
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
        let fitting = embedding_targets(&request.model, targets)?;
        self.serve_targets(state, fitting, &Embed { request: &request }).await
    }
}

/// The targets that can embed: a provider kind with an embeddings API, and an embedding model.
/// None left is a 400 naming `model` and saying which of the two is missing.
fn embedding_targets<'t, 'c>(requested: &str, targets: Vec<&'t Target<'c>>) -> Result<Vec<&'t Target<'c>>, ApiError> {
    let (with_api, without): (Vec<&Target<'_>>, Vec<&Target<'_>>) =
        targets.into_iter().partition(|t| t.entry.provider.kind.supports_embeddings());
    if with_api.is_empty() {
        let names: Vec<String> =
            without.iter().map(|t| format!("`{}` ({})", target_name(t), t.entry.provider.kind.spec().label)).collect();
        return Err(ApiError::invalid_param(
            "model",
            format!(
                "`{requested}` cannot serve embeddings: {} has no embeddings API. Use an embedding model of a \
                 provider that has one (OpenAI, an OpenAI-compatible server, Gemini, Qwen, …).",
                names.join(", ")
            ),
        )
        .with_code("embeddings_not_supported"));
    }
    let embedding: Vec<&Target<'_>> = with_api.into_iter().filter(|t| t.model.is_embedding()).collect();
    if embedding.is_empty() {
        return Err(ApiError::invalid_param(
            "model",
            format!(
                "`{requested}` is not an embedding model; choose a model whose `model_type` is `embedding` (GET \
                 /v1/models lists them), or send chat requests to `POST /v1/chat/completions`."
            ),
        ));
    }
    Ok(embedding)
}
