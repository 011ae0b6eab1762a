use super::{Call, ProviderError, ProviderErrorKind, ProviderReply};
pub(super) fn chat(_call: Call<'_>) -> Result<ProviderReply, ProviderError> {
    Err(ProviderError::new(ProviderErrorKind::Server, None, "not built yet"))
}
