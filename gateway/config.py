"""The gateway's YAML configuration, validated with pydantic at start-up.

Secrets may be written as references, ``${env:NAME}`` or ``${file:/path}``;
they are resolved once at load time into :class:`pydantic.SecretStr` and are
never written back or printed. Errors name the file and the key.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

_REF = re.compile(r"\$\{(env|file):([^}]+)\}")


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file and key."""


def resolve_secret(text: str) -> str:
    """Replace every ``${env:NAME}`` / ``${file:PATH}`` reference in ``text``."""

    def one(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2).strip()
        if kind == "env":
            if name not in os.environ:
                raise ValueError(f"environment variable {name} is not set")
            return os.environ[name]
        try:
            return Path(name).read_text("utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {name}: {exc.strerror}") from None

    return _REF.sub(one, text)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenCredential(_Strict):
    """One inbound bearer token. Give either ``sha256`` (hex digest) or ``secret``."""

    name: str
    sha256: str | None = None
    secret: SecretStr | None = None

    @field_validator("secret", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> Any:
        return resolve_secret(value) if isinstance(value, str) else value

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be a hex SHA-256 digest (64 characters)")
        return value.lower() if value else value

    @model_validator(mode="after")
    def _one_of(self) -> TokenCredential:
        if (self.sha256 is None) == (self.secret is None):
            raise ValueError("give exactly one of 'sha256' or 'secret'")
        return self

    def digest(self) -> bytes:
        if self.sha256 is not None:
            return bytes.fromhex(self.sha256)
        assert self.secret is not None
        return hashlib.sha256(self.secret.get_secret_value().encode()).digest()


class AuthConfig(_Strict):
    tokens: list[TokenCredential] = Field(min_length=1)


class BulkConfig(_Strict):
    max_operations: int = Field(1000, ge=1)
    max_payload_size: int = Field(1_048_576, ge=1024)


class AppConfig(_Strict):
    adapter: str
    settings: dict[str, Any] = Field(default_factory=dict)
    #: The app's mapping directory (user.yaml, group.yaml; see docs/mappings.md).
    #: A relative path is looked up next to the config file, then in the
    #: repository's mappings/ folder, then from the repository root.
    #: None: records are SCIM-shaped (memory adapter).
    mapping: str | None = None
    auth: AuthConfig
    bulk: BulkConfig = BulkConfig()
    default_count: int = Field(100, ge=1)
    max_count: int = Field(1000, ge=1)
    max_filter_length: int = Field(4096, ge=64)
    #: Filters the adapter cannot push down are evaluated in the gateway only
    #: over at most this many candidates from a pushed-down conjunct.
    max_filter_scan: int = Field(1000, ge=1)
    #: Calls in flight to the legacy app at once; more wait in a queue of
    #: `max_queue`, beyond which callers get 503 with Retry-After (IdP rule 22).
    max_concurrency: int = Field(8, ge=1)
    max_queue: int = Field(200, ge=0)
    #: Seconds one adapter call may take before the caller gets 504 (rule 21).
    call_timeout: float = Field(30.0, gt=0, le=55)
    #: What a PATCH on a group answers: "no_content" (204, as Entra and Okta expect,
    #: and cheap for large groups) or "resource" (200 with the group). A request
    #: that asks for `attributes` always gets the group.
    group_patch_response: Literal["no_content", "resource"] = "no_content"


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    #: Public base URL used in meta.location; derived from the request if unset.
    public_url: str | None = None
    max_body_size: int = Field(2_097_152, ge=1024)


class AuditConfig(_Strict):
    """The audit trail (see docs/audit.md)."""

    enabled: bool = True
    #: Keep the values written, not only the attribute names (passwords always masked).
    values: bool = False
    #: Attributes (or sub-attributes) whose values are masked too, e.g. phoneNumbers.
    sensitive: list[str] = Field(default_factory=list)
    #: Events older than this many days are pruned (hourly) behind a signed checkpoint.
    retention_days: float | None = Field(None, gt=0)
    #: HMAC key that signs retention checkpoints; a secret reference such as ${env:NAME}.
    checkpoint_key: SecretStr | None = None

    @field_validator("checkpoint_key", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> Any:
        return resolve_secret(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _key_for_retention(self) -> AuditConfig:
        if self.retention_days is not None and self.checkpoint_key is None:
            raise ValueError("retention_days needs checkpoint_key to sign the checkpoint")
        return self


class StateConfig(_Strict):
    """Where the gateway keeps its state: the audit trail, and what features add."""

    #: sqlite:///relative/or/absolute.db or postgresql://...; may hold ${env:...} references.
    #: Unset: scim-gateway-state.db next to the config file.
    url: SecretStr | None = None
    #: Seconds a process's lease lasts without renewal before its work counts as orphaned.
    lease_seconds: float = Field(30.0, ge=1)
    audit: AuditConfig = AuditConfig()

    @field_validator("url", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> Any:
        return resolve_secret(value) if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: SecretStr | None) -> SecretStr | None:
        url = value.get_secret_value() if value is not None else "sqlite:///"
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class Settings(_Strict):
    server: ServerConfig = ServerConfig()
    apps: dict[str, AppConfig]
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    state: StateConfig = StateConfig()
    #: The credential of the admin endpoints (/admin/...); unset: no admin endpoints.
    admin: AuthConfig | None = None

    @field_validator("apps")
    @classmethod
    def _names(cls, apps: dict[str, AppConfig]) -> dict[str, AppConfig]:
        for name in apps:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"app name {name!r} may only use letters, digits, '_', '.', '-'")
        return apps


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_settings(path: str | Path) -> Settings:
    """Read, resolve and validate a config file; raise ConfigError naming file and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_settings(raw, source=str(path))


def parse_settings(raw: Any, *, source: str = "<config>") -> Settings:
    try:
        return Settings.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        lines = [f"{source}: {_where(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
