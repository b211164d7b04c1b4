"""The gateway's YAML configuration, validated with pydantic at start-up.

Secrets may be written as references, ``${env:NAME}`` or ``${file:/path}``;
they are resolved once at load time into :class:`pydantic.SecretStr` and are
never written back or printed. Errors name the file and the key.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import re
import types
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

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

from gateway.masking import MaskedFields

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


def _secret(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    resolved = resolve_secret(value)
    if not resolved.strip():
        # An empty variable (a Secret left blank) must not become a token anyone can send.
        raise ValueError("is empty (an unset or blank secret reference?)")
    return resolved


def _hex_digest(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValueError("must be a hex SHA-256 digest (64 characters)")
    return value.lower() if value else value


def _digest_of(sha256: str | None, secret: SecretStr | None) -> bytes:
    if sha256 is not None:
        return bytes.fromhex(sha256)
    assert secret is not None
    return hashlib.sha256(secret.get_secret_value().encode()).digest()


class TokenCredential(_Strict):
    """One inbound bearer token. Give either ``sha256`` (hex digest) or ``secret``."""

    name: str
    sha256: str | None = None
    secret: SecretStr | None = None
    #: Reads only: a write with this credential gets 403.
    read_only: bool = False

    @field_validator("secret", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> Any:
        return _secret(value)

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        return _hex_digest(value)

    @model_validator(mode="after")
    def _one_of(self) -> TokenCredential:
        if (self.sha256 is None) == (self.secret is None):
            raise ValueError("give exactly one of 'sha256' or 'secret'")
        return self

    def digest(self) -> bytes:
        return _digest_of(self.sha256, self.secret)


class BasicCredential(_Strict):
    """HTTP Basic: a username and either ``password_sha256`` (hex digest) or ``password``.

    The digest is plain SHA-256, fit for generated machine passwords (as
    ``scim-gateway token new`` makes), not for passwords people choose.
    """

    name: str
    username: str = Field(min_length=1)
    #: Kept out of repr: a chosen password's digest can be guessed offline.
    password_sha256: str | None = Field(None, repr=False)
    password: SecretStr | None = None
    read_only: bool = False

    @field_validator("password", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> Any:
        return _secret(value)

    @field_validator("password_sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        return _hex_digest(value)

    @model_validator(mode="after")
    def _one_of(self) -> BasicCredential:
        if (self.password_sha256 is None) == (self.password is None):
            raise ValueError("give exactly one of 'password_sha256' or 'password'")
        return self

    def digest(self) -> bytes:
        return _digest_of(self.password_sha256, self.password)


#: Asymmetric signatures only: "none" and HS* (a shared secret) make no sense with a JWKS.
JwtAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]

#: Entra ID's own provisioning tokens, sent when the app's "Secret Token" is left blank:
#: ``iss`` is ``https://sts.windows.net/<tenant-id>/`` and ``aud`` the application
#: template id, 8adf8e6e-67b2-4cf2-a259-e3dc5476c621 for every non-gallery app (Microsoft
#: Learn, "Develop and plan provisioning for a SCIM endpoint", section on the token;
#: AzureAD/SCIMReferenceCode's appsettings use the same TokenAudience and TokenIssuer).
ENTRA_PROVISIONING_AUDIENCE = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"


def _rs256() -> list[JwtAlgorithm]:
    return ["RS256"]


class JwtCredential(_Strict):
    """JWT bearer tokens signed by an issuer whose public keys are at ``jwks_url``.

    ``preset: entra`` with ``tenant_id`` fills in Entra ID's issuer, key set and
    audience; any of them may still be given to override it.
    """

    name: str
    preset: Literal["entra"] | None = None
    tenant_id: str | None = None
    issuer: str | None = None
    audience: list[str] = Field(default_factory=list)
    jwks_url: str | None = None
    algorithms: list[JwtAlgorithm] = Field(default_factory=_rs256, min_length=1)
    #: Exact values some claims must have, e.g. ``{tid: <tenant-id>}``.
    required_claims: dict[str, str] = Field(default_factory=dict)
    #: Seconds of clock skew allowed on ``exp`` and ``nbf``.
    leeway: float = Field(60, ge=0, le=300)
    #: Seconds the key set is trusted before it is fetched again.
    jwks_cache_ttl: float = Field(3600, ge=60)
    #: An unknown ``kid`` refetches the key set at most this often (seconds).
    jwks_refresh_interval: float = Field(60, ge=1)
    read_only: bool = False

    @field_validator("audience", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") != "entra":
            return data
        tenant = data.get("tenant_id")
        if not isinstance(tenant, str) or not re.fullmatch(r"[0-9A-Za-z.-]+", tenant):
            raise ValueError("preset 'entra' needs 'tenant_id' (a GUID or tenant domain)")
        defaults = {
            "issuer": f"https://sts.windows.net/{tenant}/",
            "jwks_url": f"https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys",
            "audience": [ENTRA_PROVISIONING_AUDIENCE],
        }
        return {**defaults, **data}

    @model_validator(mode="after")
    def _complete(self) -> JwtCredential:
        missing = [k for k in ("issuer", "jwks_url", "audience") if not getattr(self, k)]
        if missing:
            raise ValueError(f"give {', '.join(missing)} (or a preset)")
        assert self.jwks_url is not None
        if not self.jwks_url.startswith(("https://", "http://127.", "http://localhost")):
            raise ValueError("jwks_url must be https (plain http only on loopback)")
        return self


class AuthConfig(_Strict):
    """An app's inbound credentials; several at once, so they can be rotated."""

    tokens: list[TokenCredential] = Field(default_factory=list)
    basic: list[BasicCredential] = Field(default_factory=list)
    jwt: list[JwtCredential] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some(self) -> AuthConfig:
        credentials: list[TokenCredential | BasicCredential | JwtCredential] = [
            *self.tokens,
            *self.basic,
            *self.jwt,
        ]
        names = [c.name for c in credentials]
        if not names:
            raise ValueError("give at least one credential: tokens, basic or jwt")
        taken = sorted({n for n in names if names.count(n) > 1})
        if taken:
            raise ValueError(f"credential names must be unique; repeated: {', '.join(taken)}")
        return self


class RateLimitConfig(_Strict):
    """A token bucket per app and client (credential): ``rate`` per second, ``burst`` at once."""

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


class BulkConfig(_Strict):
    max_operations: int = Field(1000, ge=1)
    max_payload_size: int = Field(1_048_576, ge=1024)


class GuardConfig(_Strict):
    """The mass-deprovisioning guard of one app (gateway/guard.py, docs/resilience.md)."""

    #: Deletes and deactivations that pass per window; further ones are held (503).
    max_deprovisions: int = Field(50, ge=1)
    window_seconds: float = Field(3600.0, gt=0)
    #: The Retry-After of a held operation, in seconds.
    retry_after: int = Field(300, ge=1)


class BreakerConfig(_Strict):
    """The circuit breaker in front of one legacy app (gateway/breaker.py)."""

    enabled: bool = True
    #: Consecutive failed calls that open the breaker.
    failures: int = Field(5, ge=1)
    #: Share of failed calls within `window` seconds that opens it, once `min_calls` were made.
    error_rate: float = Field(0.5, gt=0, le=1)
    window: float = Field(60.0, gt=0)
    min_calls: int = Field(20, ge=1)
    #: Seconds it stays open (answering 503 at once) before a probe call may pass.
    cooldown: float = Field(30.0, gt=0)
    #: Successful probes in a row that close it again.
    probes: int = Field(1, ge=1)


class DeprovisionConfig(_Strict):
    """What an IdP's DELETE of a user does (docs/console.md, "Deprovision policy")."""

    #: "delete" removes the account in the app; "deactivate" sets it inactive instead, so
    #: the app keeps its records (a later ``scim-gateway sweep`` may delete it).
    mode: Literal["delete", "deactivate"] = "delete"
    #: With mode "deactivate": ``scim-gateway sweep`` deletes accounts deactivated by an
    #: IdP DELETE this many days ago (and still inactive); None: never.
    delete_after_days: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _after_needs_deactivate(self) -> DeprovisionConfig:
        if self.delete_after_days is not None and self.mode != "deactivate":
            raise ValueError("delete_after_days needs mode: deactivate")
        return self


class AppConfig(_Strict, MaskedFields):
    #: The adapter's settings are free-form here (the adapter validates them): they
    #: print and dump with secret-looking keys and URL passwords masked.
    masked_fields: ClassVar[frozenset[str]] = frozenset({"settings"})

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
    #: Look the account up by its unique attribute before every create, for apps
    #: that do not enforce uniqueness themselves. After a create whose outcome is
    #: unknown (timeout, dropped connection), the next create of the same name
    #: looks first anyway (gateway/dedupe.py).
    check_unique_before_create: bool = False
    #: Write userName and displayName in NFKC without invisible characters or padding,
    #: and compare them case-folded for uniqueness (look-alike names are one name;
    #: docs/security.md). Off: names are stored and compared as sent.
    normalize_names: bool = True
    #: A group's displayName names one group only (case-insensitive): a create or rename
    #: to a taken name is 409 uniqueness, as Entra ID expects. Every built-in adapter
    #: enforces it; false lets an app hold groups of the same name.
    unique_group_names: bool = True
    #: The mass-deprovisioning guard; None: off.
    guard: GuardConfig | None = None
    #: Requests per client (credential) beyond this get 429 with Retry-After; None: no limit.
    rate_limit: RateLimitConfig | None = None
    #: Limits on hostile input (README "Limits"): levels of nesting in a JSON body
    #: (deeper: 400 invalidSyntax), levels of nesting in a filter (400 invalidFilter),
    #: operations in one PATCH (413), and seconds one whole request may take, from its
    #: first byte to its answer (504; IdPs give up after 60 s, rule 21).
    max_json_depth: int = Field(16, ge=8, le=256)
    max_filter_depth: int = Field(8, ge=1, le=32)
    max_patch_operations: int = Field(1000, ge=1)
    request_timeout: float = Field(55.0, gt=0, le=600)
    #: Opens on the legacy app's failures (5xx, timeouts, connection errors, never a 4xx).
    breaker: BreakerConfig = BreakerConfig()
    #: What an IdP's DELETE of a user does: delete, or deactivate (and sweep later).
    deprovision: DeprovisionConfig = DeprovisionConfig()

    @model_validator(mode="after")
    def _deadline_covers_a_call(self) -> AppConfig:
        if self.request_timeout < self.call_timeout:
            raise ValueError("request_timeout must be at least call_timeout")
        return self


class TlsConfig(_Strict):
    """A certificate chain and its key (PEM files) for serving HTTPS directly."""

    cert: Path
    key: Path

    @field_validator("cert", "key")
    @classmethod
    def _readable(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    #: Public base URL used in meta.location; derived from the request if unset.
    public_url: str | None = None
    max_body_size: int = Field(2_097_152, ge=1024)
    #: Peers whose X-Forwarded-For/-Proto/-Host and Forwarded headers are believed.
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    tls: TlsConfig | None = None
    #: Log lines as JSON objects (one per line, with trace ids) or as plain text.
    log_format: Literal["json", "text"] = "json"
    #: Seconds a new connection has to send its first request's headers (slowloris).
    header_timeout: float = Field(10.0, gt=0)
    #: Open connections at once, in all and from one peer address; more are closed at
    #: once (gateway/http/connections.py, docs/security.md).
    max_connections: int = Field(512, ge=1)
    max_connections_per_peer: int = Field(128, ge=1)
    #: The event loop ``serve`` runs on: Python's own, or uvloop (libuv; install it with
    #: ``pip install 'scim-gateway[uvloop]'``), which spends less CPU on sockets and on
    #: the hand-offs to the state store's thread (README, "Workers").
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"

    @field_validator("event_loop")
    @classmethod
    def _loop_installed(cls, value: str) -> str:
        if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError(
                "event_loop is uvloop, but uvloop is not installed "
                "(pip install 'scim-gateway[uvloop]')"
            )
        return value


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
    #: Which successful reads by IdPs (get, list, search, discovery) become events: "none"
    #: (the trail holds changes), "all", or "sampled" (one in ``reads_sample_every``).
    #: Refused and failed reads are always recorded.
    reads: Literal["none", "all", "sampled"] = "none"
    reads_sample_every: int = Field(100, ge=1)

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
    #: Remember each account the gateway writes (who, when, its state and a fingerprint of
    #: it as written): what ``reconcile`` and the access review compare the apps with.
    ledger: bool = True

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


class ConsoleConfig(_Strict):
    """The operators' web console at /console/ (docs/console.md); it needs ``admin:``."""

    enabled: bool = True
    #: Minutes a console login lasts without use.
    session_minutes: float = Field(480, gt=0, le=7 * 24 * 60)


class Settings(_Strict):
    server: ServerConfig = ServerConfig()
    apps: dict[str, AppConfig]
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    state: StateConfig = StateConfig()
    #: The credentials of the operators' calls under /admin/ (audit, guard release), in the
    #: form of an app's auth:, never an IdP's; unset: those calls answer 403.
    admin: AuthConfig | None = None
    console: ConsoleConfig = ConsoleConfig()

    @field_validator("apps")
    @classmethod
    def _names(cls, apps: dict[str, AppConfig]) -> dict[str, AppConfig]:
        for name in apps:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"app name {name!r} may only use letters, digits, '_', '.', '-'")
        return apps

    @model_validator(mode="after")
    def _bulk_fits_in_a_body(self) -> Settings:
        """A Bulk payload the server would refuse must not be advertised as allowed."""
        for name, app in self.apps.items():
            if app.bulk.max_payload_size > self.server.max_body_size:
                raise ValueError(
                    f"apps.{name}.bulk.max_payload_size ({app.bulk.max_payload_size}) "
                    f"exceeds server.max_body_size ({self.server.max_body_size})"
                )
        return self


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
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if isinstance(raw, dict) and isinstance(raw.get("apps"), dict):
        for name, app in raw["apps"].items():
            if isinstance(app, dict) and isinstance(app.get("settings"), dict):
                app["settings"] = _settings_from_file(app["settings"], path, name)
    return parse_settings(raw, source=str(path))


def _settings_from_file(settings: dict[str, Any], path: Path, app: str) -> dict[str, Any]:
    """``settings: {file: rest.yaml, ...}``: the file's mapping, with the other keys over it.

    A relative name is looked up next to the config file, then like a ``mapping:``
    folder (the shipped mappings/, the repository), so a mapping pack is used as shipped.
    """
    if "file" not in settings:
        return settings
    name, overrides = settings["file"], {k: v for k, v in settings.items() if k != "file"}
    where = f"{path}: apps.{app}.settings.file"
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: must be a file name")
    found = _settings_file(Path(name).expanduser(), path.parent)
    if found is None:
        raise ConfigError(f"{where}: no such file {name!r} (relative to {path.parent})")
    try:
        loaded = yaml.safe_load(found.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {found}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: {found} is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{where}: {found} must hold a mapping of settings")
    return {**loaded, **overrides}


def _settings_file(name: Path, config_dir: Path) -> Path | None:
    from gateway.mapping.engine import MAPPINGS_DIR  # not at import time: it imports us

    candidates = [name] if name.is_absolute() else [config_dir / name]
    if not name.is_absolute():
        candidates += [MAPPINGS_DIR / name, MAPPINGS_DIR.parent / name]
    return next((c for c in candidates if c.is_file()), None)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, without PyYAML's quote of the line (it may hold a secret)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return type(exc).__name__
    parts = [f"{_at(exc.context_mark)}{exc.context}"] if exc.context else []
    parts.append(f"{_at(exc.problem_mark)}{exc.problem or 'error'}")
    return "; ".join(parts)


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def parse_settings(raw: Any, *, source: str = "<config>") -> Settings:
    try:
        return Settings.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, Settings, f"{source}: ")) from None


def describe_errors(exc: ValidationError, model: type[BaseModel], prefix: str) -> str:
    """One line per problem: ``prefix`` + the key + pydantic's message, made readable.

    Our validators' messages lose pydantic's "Value error, " prefix; an unknown key
    gets the closest known key of its section ("did you mean 'adapter'?").
    """
    lines = []
    for error in exc.errors():
        loc, message = error["loc"], error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden" and loc:
            message += _closest(str(loc[-1]), _fields_at(model, loc[:-1]))
        lines.append(f"{prefix}{_where(loc)}: {message}")
    return "\n".join(lines)


def _closest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    close = close or [k for k in known if k.lower() == key.lower()][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def _fields_at(model: Any, loc: tuple[int | str, ...]) -> list[str]:
    """The keys a section at ``loc`` of ``model`` accepts ([] when it cannot be told)."""
    current = _model_in(model)
    for part in loc:
        if current is None:
            return []
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = _model_in(field.annotation) if field is not None else None
        else:  # a dict's key or a list's index: the values' type
            args = get_args(current)
            current = _model_in(args[-1]) if args else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """``X | None`` -> X; anything else as it is."""
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return inner[0] if len(inner) == 1 else None
    return annotation
