"""Secrets never print: masking for config reprs and dumps, and for messages about config.

Typed secrets are :class:`pydantic.SecretStr` already. What is left is free-form:
an app's ``settings:`` section before its adapter validates it, a REST app's extra
headers, OAuth form fields. There a value is masked when its key names a secret
(``password``, ``client_secret``, ``X-Api-Key``, ``dsn``...) and a URL keeps its
user but not its password. A whole ``${env:NAME}`` / ``${file:PATH}`` reference stays
visible: it names where the secret is, which is what a reader of a config needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    SecretBytes,
    SecretStr,
    SerializerFunctionWrapHandler,
    model_serializer,
)

__all__ = ["MASK", "MaskedFields", "is_secret_name", "masked"]

#: What a masked value shows (as :class:`pydantic.SecretStr` does).
MASK = "**********"
_SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "dsn",
    "cookie",
    "assertion",
    "private",
    "signature",
)
_REFERENCE = re.compile(r"\$\{(env|file):[^}]+\}")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a key, header or parameter name says that its value is a secret."""
    lowered = name.lower()
    if lowered.endswith(("url", "uri")):
        return False  # an address (token_url): its password, if any, is masked as a URL's
    return any(word in lowered for word in _SECRET_WORDS)


def masked(value: Any, *, secret: bool = False) -> Any:
    """A copy of a JSON-like value with its secrets masked (see the module docstring)."""
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, Mapping):
        return {k: masked(v, secret=is_secret_name(str(k))) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item, secret=secret) for item in value]
    if isinstance(value, str):
        if _REFERENCE.fullmatch(value.strip()):
            return value
        return MASK if secret else _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", value)
    if secret and value is not None:
        return MASK
    return value


class MaskedFields(BaseModel):
    """A model whose free-form fields named in ``masked_fields`` print and dump masked.

    ``repr()``, ``str()``, ``model_dump()`` and ``model_dump_json()`` all mask them;
    the attributes themselves keep the real values for the code that uses them.
    """

    masked_fields: ClassVar[frozenset[str]] = frozenset()

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, masked(value) if name in self.masked_fields else value

    @model_serializer(mode="wrap")
    def _serialize_masked(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name in self.masked_fields & data.keys():
                data[name] = masked(data[name])
        return data
