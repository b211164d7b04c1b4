"""The REST adapter's settings: one pydantic model per part of the ``settings:`` section.

Every key is described in docs/rest-adapter.md (a test checks it). Strings may
hold ``${env:NAME}`` / ``${file:PATH}`` references, resolved once at start-up
by :func:`gateway.config.resolve_secret`; credentials become
:class:`pydantic.SecretStr` and never print.
"""

from __future__ import annotations

import builtins
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from gateway.config import resolve_secret
from gateway.masking import MaskedFields
from gateway.retry import Backoff

__all__ = [
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "Call",
    "CursorPaging",
    "Deactivation",
    "DeleteCall",
    "Duplicate",
    "FilterParam",
    "GroupSettings",
    "LinkPaging",
    "ListCall",
    "MembersRead",
    "MembersSettings",
    "MembersWrite",
    "NoAuth",
    "NoPaging",
    "OAuth2Auth",
    "OffsetPaging",
    "PagePaging",
    "ReadCall",
    "RecordList",
    "RefList",
    "ResourceSettings",
    "RestSettings",
    "Retry",
    "Timeouts",
    "UpdateCall",
    "UserSettings",
    "WriteCall",
]

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
#: Operators a query parameter can stand for (``pr`` has no value to send).
Operator = Literal["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
# Placeholders a path, query or body may use; nothing else in braces is replaced.
PLACEHOLDER = re.compile(r"\{(id|member|members)\}")


def _resolve(value: Any) -> Any:
    return resolve_secret(value) if isinstance(value, str) else value


def _check_refs(value: Any) -> Any:
    """Fail early on a reference that cannot be resolved; keep the text (resolved later)."""
    if isinstance(value, str):
        resolve_secret(value)
    return value


Text = Annotated[str, BeforeValidator(_resolve)]
Secret = Annotated[SecretStr, BeforeValidator(_resolve)]
# Header and query values keep their references: the adapter resolves them when it
# sends, and a dry run shows them as ****.
RefText = Annotated[str, BeforeValidator(_check_refs)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- authentication toward the legacy app ------------------------------------------------


class NoAuth(_Model):
    type: Literal["none"] = "none"


class ApiKeyAuth(_Model):
    type: Literal["api_key"]
    header: str = "X-Api-Key"
    key: Secret


class BearerAuth(_Model):
    type: Literal["bearer"]
    token: Secret


class BasicAuth(_Model):
    type: Literal["basic"]
    username: Text
    password: Secret


class OAuth2Auth(_Model, MaskedFields):
    """OAuth 2.0 client credentials (RFC 6749 4.4); the token is cached until it expires."""

    #: Extra form fields may carry a secret (``client_assertion``): printed masked.
    masked_fields: ClassVar[frozenset[str]] = frozenset({"params"})

    type: Literal["oauth2"]
    token_url: Text
    client_id: Text
    client_secret: Secret
    scope: str | None = None
    #: How the client authenticates to the token endpoint: HTTP Basic or form fields.
    client_auth: Literal["basic", "body"] = "basic"
    #: Extra form fields for the token request (``audience``, ``resource``, ...).
    params: dict[str, Text] = Field(default_factory=dict)
    #: Renew the token this many seconds before it expires.
    expiry_margin: float = Field(30.0, ge=0)

    @field_validator("token_url")
    @classmethod
    def _http(cls, value: str) -> str:
        return _http_url(value)


AuthSettings = Annotated[
    NoAuth | ApiKeyAuth | BearerAuth | BasicAuth | OAuth2Auth, Field(discriminator="type")
]


class Timeouts(_Model):
    connect: float = Field(5.0, gt=0)
    #: Seconds between two reads of an answer (None: only ``total`` bounds it).
    read: float | None = Field(None, gt=0)
    total: float = Field(25.0, gt=0)


class Retry(_Model):
    """Retries of calls that are safe to repeat (adapters/rest/client.py says which)."""

    #: Attempts at most, the first included (1: never retry).
    attempts: int = Field(3, ge=1, le=10)
    #: Seconds: the first retry waits up to ``base`` (full jitter), doubling, at most ``cap``.
    base: float = Field(0.2, gt=0)
    cap: float = Field(5.0, gt=0)
    #: Seconds all attempts and waits of one call may take (the app's call_timeout bounds it too).
    budget: float = Field(20.0, gt=0)
    #: The app's update by PATCH only sets the fields sent: repeating it is safe.
    idempotent_patch: bool = False

    def backoff(self) -> Backoff:
        return Backoff(self.attempts, self.base, self.cap, self.budget)


class Duplicate(_Model):
    """Which answers mean "a record with that value exists" (SCIM 409 uniqueness).

    409 always does; a status listed in ``statuses`` does when its body
    matches ``body_pattern`` (a regular expression, case-insensitive).
    """

    statuses: list[int] = Field(default_factory=lambda: [400, 422])
    body_pattern: str | None = None

    @field_validator("body_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


# -- paging -------------------------------------------------------------------------------


class NoPaging(_Model):
    """The list endpoint answers every record at once."""

    style: Literal["none"] = "none"


class OffsetPaging(_Model):
    style: Literal["offset"]
    offset: str = "offset"
    limit: str = "limit"
    #: The largest ``limit`` the API accepts; bigger windows take several calls.
    max_page: int = Field(100, ge=1)
    #: The offset of the first record (0 for most APIs).
    first: int = Field(0, ge=0)


class PagePaging(_Model):
    style: Literal["page"]
    page: str = "page"
    per_page: str = "per_page"
    #: The page size the adapter asks for.
    size: int = Field(100, ge=1)
    #: The number of the first page.
    first: int = Field(1, ge=0)


class CursorPaging(_Model):
    style: Literal["cursor"]
    #: The query parameter that carries the cursor.
    cursor: str = "cursor"
    #: Dotted path, in the answer, of the next page's cursor (absent, null or "" at the end).
    next: str
    #: The query parameter for the page size (None: the API's default).
    limit: str | None = "limit"
    size: int = Field(100, ge=1)
    #: The deepest record a search may reach (pages are walked from the start).
    max_depth: int = Field(10_000, ge=1)


class LinkPaging(_Model):
    """Pages linked by ``Link: <...>; rel="next"`` headers (RFC 8288)."""

    style: Literal["link"]
    limit: str | None = "per_page"
    size: int = Field(100, ge=1)
    max_depth: int = Field(10_000, ge=1)


Paging = Annotated[
    NoPaging | OffsetPaging | PagePaging | CursorPaging | LinkPaging, Field(discriminator="style")
]


# -- operations -----------------------------------------------------------------------------


class Call(_Model):
    """One HTTP call: method, a path template under ``base_url``, query, headers, body.

    ``{id}`` in the path, query or body is the record's id; membership calls
    also know ``{member}`` (one member id) and ``{members}`` (the list).
    Ids are URL-encoded into one path segment.
    """

    method: Method = "GET"
    path: str
    query: dict[str, RefText] = Field(default_factory=dict)
    headers: dict[str, RefText] = Field(default_factory=dict)
    #: A fixed JSON body; strings that are exactly a placeholder become that value.
    body: Any = None
    #: Repeating the call leaves the app as one call would (a suspend or reactivate
    #: by POST): it is retried like a PUT. GET, PUT and DELETE are retried anyway.
    safe_to_repeat: bool = False

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/' (it is appended to base_url)")
        if "?" in value or "#" in value:
            raise ValueError("put query parameters under 'query', not in the path")
        leftover = PLACEHOLDER.sub("", value)
        if "{" in leftover or "}" in leftover:
            raise ValueError("the only placeholders are {id}, {member} and {members}")
        return value


class ReadCall(Call):
    #: Dotted path of the record in the answer ("" for the whole answer).
    record: str = ""


class ListCall(Call):
    #: Dotted path of the list of records in the answer ("" when the answer is the list).
    items: str = ""
    #: Dotted path of the number of all matches, when the API gives it.
    total: str | None = None
    #: Required: an API that pages but is taken for one that does not would lose records.
    paging: Paging


class RecordList(ListCall):
    """A resource's list call."""

    #: The items lack fields that ``get`` gives (Redmine's lack ``status``): read each with ``get``.
    read_each: bool = False


class WriteCall(Call):
    method: Method = "POST"
    #: Wrap the record's fields in an object under this key (Redmine: ``user``).
    body_root: str | None = None
    #: Dotted path of the record in the answer; null: the answer holds none, read it back.
    record: str | None = ""

    @field_validator("body")
    @classmethod
    def _object(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValueError("must be an object: the record's fields are added to it")
        return value


class UpdateCall(WriteCall):
    method: Method = "PATCH"
    #: ``changes``: send the changed fields; ``full``: read the record and send all of it.
    send: Literal["changes", "full"] = "changes"


class DeleteCall(Call):
    method: Method = "DELETE"
    #: Calls made first, in order, each with ``{id}`` (an app that deletes only a
    #: suspended account: the suspend call). One that fails stops the delete.
    before: builtins.list[Call] = Field(default_factory=builtins.list)


class FilterParam(_Model):
    param: str
    #: The API matches loosely (a substring, any field): check each answer exactly.
    exact: bool = False


class RefList(_Model):
    """A list of references inside a record: ids, or objects holding an id."""

    field: str
    #: Key of the id in each element; null when the elements are the ids themselves.
    id: str | None = None
    #: Key of a display name in each element.
    display: str | None = None


class Deactivation(_Model):
    """(De)activation through endpoints of its own instead of a field in the update body."""

    #: The legacy field the mapping writes for SCIM ``active``.
    field: str
    #: The value of ``field`` that means deactivated; any other value means active.
    inactive: Any
    deactivate: Call
    activate: Call


class MembersRead(ListCall):
    """Members listed by a call of their own (``{id}`` is the group's id)."""

    id: str | None = None
    display: str | None = None
    #: Members read at most; a bigger group is an error rather than a partial answer.
    max_members: int = Field(10_000, ge=1)


class MembersWrite(_Model):
    """Membership written as the group's full member list, through the update call."""

    field: str


class MembersSettings(_Model):
    #: Where the members are: a field of the group record, or a call of their own.
    read: RefList | MembersRead
    #: Per member (``{member}``) or for several at once (``{members}``).
    add: Call | None = None
    remove: Call | None = None
    #: Instead of add/remove: the update call, with the whole new list in this field.
    write: MembersWrite | None = None
    #: How member ids are written into JSON bodies.
    id_type: Literal["string", "integer"] = "string"

    @model_validator(mode="after")
    def _one_way(self) -> MembersSettings:
        calls = self.add is not None, self.remove is not None
        if self.write is None and calls != (True, True):
            raise ValueError("give both 'add' and 'remove', or 'write'")
        if self.write is not None and any(calls):
            raise ValueError("give 'add' and 'remove', or 'write', not both")
        for name, call in (("add", self.add), ("remove", self.remove)):
            if call is not None and not _mentions_member(call):
                raise ValueError(f"{name} must use {{member}} or {{members}} in its path or body")
        return self


def _mentions_member(call: Call) -> bool:
    text = f"{call.path} {call.query} {call.body}"
    return "{member}" in text or "{members}" in text


class ResourceSettings(_Model):
    #: The field of a record holding its id (the SCIM id).
    id_field: str = "id"
    get: ReadCall
    list: RecordList
    create: WriteCall
    update: UpdateCall
    delete: DeleteCall
    #: legacy field -> SCIM operator -> query parameter (or {param, exact}).
    filters: dict[str, dict[Operator, FilterParam]] = Field(default_factory=dict)
    #: Fields never sent in a body (the id, timestamps the app sets).
    read_only: builtins.list[str] = Field(default_factory=builtins.list)

    @field_validator("filters", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {
            field: (
                {op: {"param": p} if isinstance(p, str) else p for op, p in ops.items()}
                if isinstance(ops, dict)
                else ops
            )
            for field, ops in value.items()
        }

    @field_validator("get", "update", "delete")
    @classmethod
    def _needs_id(cls, call: Call) -> Call:
        if "{id}" not in call.path:
            raise ValueError("the path must hold {id}")
        return call


class UserSettings(ResourceSettings):
    #: The groups a user is in, when its record lists them.
    groups: RefList | None = None
    deactivation: Deactivation | None = None


class GroupSettings(ResourceSettings):
    members: MembersSettings


class RestSettings(_Model, MaskedFields):
    #: Extra headers may carry a credential (``X-Api-Key``): printed masked.
    masked_fields: ClassVar[frozenset[str]] = frozenset({"headers"})

    #: The API's root; paths are appended to it.
    base_url: Text
    auth: AuthSettings = NoAuth()
    timeout: Timeouts = Timeouts()
    retry: Retry = Retry()
    #: Headers sent with every call (values may hold references; those are masked).
    headers: dict[str, RefText] = Field(default_factory=dict)
    duplicate: Duplicate = Duplicate()
    #: Seconds in Retry-After when the app is busy and gives none itself.
    retry_after: int = Field(30, ge=1)
    #: Records read at most to check a filter the API cannot answer exactly.
    max_scan: int = Field(1000, ge=1)
    #: Bytes read at most from one answer.
    max_response_size: int = Field(10_485_760, ge=1024)
    #: Whether to verify the app's TLS certificate (https only).
    verify_tls: bool = True
    users: UserSettings
    groups: GroupSettings | None = None

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return _http_url(value).rstrip("/")


def _http_url(value: str) -> str:
    if not re.match(r"https?://[^/?#@]+(/[^?#]*)?$", value):
        raise ValueError("must be an http(s) URL without credentials, query or fragment")
    return value
