//! Catalog values and provider calls as tests need them.

use std::collections::BTreeMap;
use std::time::Duration;

use maestro_shared::domain::{ChatRequest, Model, Prices, Provider, ProviderKind};
use maestro_shared::providers::Call;
use maestro_shared::secret::SecretString;
use serde_json::Value;

pub fn provider(kind: ProviderKind, base_url: &str, headers: &[(&str, &str)]) -> Provider {
    Provider {
        code: kind.as_str().into(),
        kind,
        name: kind.as_str().into(),
        base_url: base_url.into(),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        is_active: true,
        sort_order: 0,
    }
}

pub fn model(provider: &Provider, name: &str, max_output_tokens: Option<u64>) -> Model {
    Model {
        provider: provider.code.clone(),
        model: name.into(),
        model_type: "chat".into(),
        context_window: Some(200_000),
        max_output_tokens,
        supports_streaming: true,
        supports_tools: false,
        supports_vision: true,
        prices: Prices::default(),
        is_active: true,
        is_default: true,
        drop_params: false,
        created: 0,
        cache: Default::default(),
    }
}

/// Everything a [`Call`] borrows, owned in one place.
pub struct Setup {
    pub provider: Provider,
    pub model: Model,
    pub key: SecretString,
    pub request: ChatRequest,
    pub default_max_tokens: u64,
    pub timeout: Duration,
}

impl Setup {
    pub fn new(provider: Provider, model_name: &str, key: &str, request: Value) -> Self {
        let model = model(&provider, model_name, None);
        Self {
            provider,
            model,
            key: SecretString::new(key),
            request: serde_json::from_value(request).unwrap(),
            default_max_tokens: 4096,
            timeout: Duration::from_secs(5),
        }
    }

    pub fn call(&self) -> Call<'_> {
        Call {
            provider: &self.provider,
            model: &self.model,
            api_key: &self.key,
            request: &self.request,
            default_max_tokens: self.default_max_tokens,
            timeout: self.timeout,
        }
    }
}
