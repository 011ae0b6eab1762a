use super::{Call, ProviderError, ProviderErrorKind, ProviderReply};
pub(super) async fn chat(_http: &reqwest::Client, _call: Call<'_>) -> Result<ProviderReply, ProviderError> {
    Err(ProviderError::new(ProviderErrorKind::Server, None, "not built yet"))
}
