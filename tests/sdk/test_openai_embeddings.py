"""The official `openai` SDK's `client.embeddings.create(...)`, unchanged, against Maestro's
`/v1/embeddings` (the seeded `openai/text-embedding-3-small` and `-large`, served by the fake
upstream). The SDK asks for `base64` by default and decodes it into floats; Maestro passes the
provider's answer through, so the decoded vectors are the upstream's float32s exactly."""

from __future__ import annotations

import openai
import pytest

from conftest import EMBEDDING_DIMENSIONS, Maestro, embedding

SMALL = "openai/text-embedding-3-small"
LARGE = "openai/text-embedding-3-large"


def client(maestro: Maestro) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{maestro.url}/v1", api_key=maestro.token, max_retries=0, timeout=30)


def test_a_string_with_the_sdk_s_default_base64(maestro: Maestro) -> None:
    raw = client(maestro).embeddings.with_raw_response.create(model=SMALL, input="hello embedding world")
    assert raw.headers["x-maestro-provider"] == "openai"
    assert raw.headers["x-maestro-model"] == SMALL
    result = raw.parse()
    sent = maestro.upstream.last("sk-ok-openai")
    assert sent["encoding_format"] == "base64", "the SDK's default, passed upstream"
    assert sent["model"] == "text-embedding-3-small"
    assert sent["input"] == "hello embedding world"
    assert result.object == "list"
    assert result.model == "text-embedding-3-small"
    assert len(result.data) == 1
    assert result.data[0].index == 0
    # Decoded by the SDK from the provider's base64, float32 for float32.
    assert list(result.data[0].embedding) == embedding("hello embedding world", EMBEDDING_DIMENSIONS)
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (3, 3)


def test_a_list_with_dimensions_and_floats(maestro: Maestro) -> None:
    texts = ["first text", "the second one", "third"]
    result = client(maestro).embeddings.create(model=LARGE, input=texts, dimensions=4, encoding_format="float")
    sent = maestro.upstream.last("sk-ok-openai")
    assert (sent["dimensions"], sent["encoding_format"], sent["input"]) == (4, "float", texts)
    assert [d.index for d in result.data] == [0, 1, 2]
    assert [d.embedding for d in result.data] == [embedding(t, 4) for t in texts]
    assert result.usage.prompt_tokens == 2 + 3 + 1


def test_token_arrays(maestro: Maestro) -> None:
    result = client(maestro).embeddings.create(model=SMALL, input=[[1, 2, 3], [4]])
    assert maestro.upstream.last("sk-ok-openai")["input"] == [[1, 2, 3], [4]]
    assert [list(d.embedding) for d in result.data] == [embedding([1, 2, 3], 8), embedding([4], 8)]
    assert result.usage.prompt_tokens == 4


def test_the_call_is_logged_as_embeddings_with_its_cost(maestro: Maestro) -> None:
    user = "sdk-embeddings-log"
    token = maestro.issue_token(user)
    c = openai.OpenAI(base_url=f"{maestro.url}/v1", api_key=token, max_retries=0, timeout=30)
    # 1,000 tokens at the fake ($0.02 per 1M for -small): 20 micro-USD.
    c.embeddings.create(model=SMALL, input=["two words"] * 500)
    [log] = maestro.logs_of(user, 1)
    assert log["request_type"] == "embeddings"
    assert (log["provider"], log["model"]) == ("openai", "text-embedding-3-small")
    assert (log["prompt_tokens"], log["completion_tokens"], log["cost_micros"]) == (1000, 0, 20)


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-5", "deepseek/deepseek-v4-flash", "openai/gpt-5.4"])
def test_models_that_cannot_embed_are_a_400_naming_model(maestro: Maestro, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client(maestro).embeddings.create(model=model, input="hi")
    assert refused.value.status_code == 400
    assert refused.value.param == "model"


def test_bad_input_is_a_400_naming_the_field(maestro: Maestro) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client(maestro).embeddings.create(model=SMALL, input="hi", dimensions=0)
    assert refused.value.param == "dimensions"
    with pytest.raises(openai.BadRequestError) as refused:
        client(maestro).embeddings.create(model=SMALL, input=[])
    assert refused.value.param == "input"


def test_the_embedding_models_are_listed(maestro: Maestro) -> None:
    ids = {m.id for m in client(maestro).models.list()}
    assert {SMALL, LARGE} <= ids
