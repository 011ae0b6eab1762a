//! What a caller may see of the catalog and count against it, for the business API's read-only
//! routes: the models and routes it may name (`/v1/models`, in OpenAI's and Anthropic's shapes),
//! the providers usable now, and a request's prompt tokens for the model it resolves to.

use serde_json::{Value, json};

use super::{Caller, Gateway};
use crate::domain::ChatRequest;
use crate::error::ApiError;
use crate::tokens::{TokenCount, count_prompt_tokens_off_thread};

/// One entry of `/v1/models`: an active `provider/model`, or a route.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelListing {
    pub id: String,
    /// Unix seconds it entered the catalog (a route: its newest target's).
    pub created: i64,
    pub owned_by: String,
    pub max_output_tokens: Option<u64>,
    pub context_window: Option<u64>,
    /// A route's targets; `None` for a model.
    pub targets: Option<Vec<String>>,
}

impl ModelListing {
    /// OpenAI's model object (with Maestro's extra fields).
    pub fn openai(&self) -> Value {
        let mut v = json!({"id": self.id, "object": "model", "created": self.created, "owned_by": self.owned_by});
        match &self.targets {
            Some(targets) => v["targets"] = json!(targets),
            None => {
                v["max_output_tokens"] = json!(self.max_output_tokens);
                v["context_window"] = json!(self.context_window);
            }
        }
        v
    }

    /// Anthropic's model object (`created_at`: when it entered the catalog, RFC 3339).
    pub fn anthropic(&self) -> Value {
        let mut v = json!({
            "type": "model",
            "id": self.id,
            "display_name": self.id,
            "created_at": crate::time::rfc3339(self.created.saturating_mul(1000)),
            // Anthropic's schema requires these, `null` when unknown.
            "max_input_tokens": self.context_window,
            "max_tokens": self.max_output_tokens,
            "capabilities": null,
        });
        if let Some(targets) = &self.targets {
            v["targets"] = json!(targets);
        }
        v
    }
}

/// A provider with an active model and a key usable now.
#[derive(Debug, Clone, PartialEq)]
pub struct AvailableProvider {
    pub code: String,
    pub name: String,
    pub kind: &'static str,
    pub usable_keys: usize,
    pub models: Vec<String>,
}

impl Gateway {
    /// The models and routes `caller` may use (for a Maestro API key, only those it allows).
    pub async fn models_for(&self, caller: &Caller) -> Result<Vec<ModelListing>, ApiError> {
        let catalog = self.catalog().await?;
        let allowed = |requested: &str| catalog.resolve(requested).is_ok_and(|r| caller.may_use(requested, &r).is_ok());
        let mut entries: Vec<ModelListing> = catalog
            .active_models()
            .into_iter()
            .filter(|(p, m)| caller.key.as_ref().is_none_or(|key| key.allows_model(&p.code, &m.model)))
            .map(|(p, m)| ModelListing {
                id: format!("{}/{}", p.code, m.model),
                created: m.created,
                owned_by: p.code.clone(),
                max_output_tokens: m.max_output_tokens,
                context_window: m.context_window,
                targets: None,
            })
            .collect();
        let newest_target = |targets: &[String]| {
            let created = |t: &String| {
                let (provider, model) = t.split_once('/')?;
                Some(catalog.provider(provider)?.model(model)?.created)
            };
            targets.iter().filter_map(created).max().unwrap_or(0)
        };
        let routes = catalog.routes.iter().filter(|r| caller.key.is_none() || allowed(&r.name));
        entries.extend(routes.map(|r| ModelListing {
            id: r.name.clone(),
            created: newest_target(&r.targets),
            owned_by: "maestro-route".to_string(),
            max_output_tokens: None,
            context_window: None,
            targets: Some(r.targets.clone()),
        }));
        Ok(entries)
    }

    /// Providers with an active model and a key usable now.
    pub async fn available_providers(&self) -> Result<Vec<AvailableProvider>, ApiError> {
        let catalog = self.catalog().await?;
        let now = crate::time::now_ms();
        let available = catalog.providers.iter().filter(|e| e.provider.is_active).filter_map(|e| {
            let models: Vec<String> = e.models.iter().filter(|m| m.is_active).map(|m| m.model.clone()).collect();
            let usable_keys = e.keys.iter().filter(|k| k.is_usable(now)).count();
            (!models.is_empty() && usable_keys > 0).then(|| AvailableProvider {
                code: e.provider.code.clone(),
                name: e.provider.name.clone(),
                kind: e.provider.kind.as_str(),
                usable_keys,
                models,
            })
        });
        Ok(available.collect())
    }

    /// The prompt tokens of `request` for the model it resolves to (`provider/model`), if
    /// `caller` may use it: exact for OpenAI models' text, an estimate elsewhere.
    pub async fn count_prompt_tokens(
        &self,
        caller: &Caller,
        request: &ChatRequest,
    ) -> Result<(String, TokenCount), ApiError> {
        request.validate()?;
        let catalog = self.catalog().await?;
        let resolution = catalog.resolve(&request.model)?;
        caller.may_use(&request.model, &resolution)?;
        let target = resolution.targets.first().ok_or_else(|| ApiError::model_not_found(&request.model))?;
        let model = format!("{}/{}", target.entry.provider.code, target.model.model);
        let count = count_prompt_tokens_off_thread(target.entry.provider.kind, &target.model.model, request).await;
        Ok((model, count))
    }
}
