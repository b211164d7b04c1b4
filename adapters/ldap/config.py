"""The LDAP adapter's settings: one pydantic model per part of the ``settings:`` section.

Every key is described in docs/ldap-adapter.md (a test checks it). ``bind_dn`` and
``password`` are secrets: write them as references (``${env:LDAP_BIND_DN}``,
``${file:/run/secrets/ldap-password}``); they are resolved once at start-up into
:class:`pydantic.SecretStr` and never printed, logged or put in an error message.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from ldap3.utils.dn import parse_dn
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

__all__ = ["Deactivation", "GroupEntries", "LdapSettings", "Tls", "UserEntries"]

#: An attribute type name as configured (``uid``, ``userAccountControl``, ``entryUUID``).
ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
#: A ``{field}`` placeholder of a DN template.
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


def _resolve(value: Any) -> Any:
    return resolve_secret(value) if isinstance(value, str) else value


def _attribute(value: Any) -> Any:
    if isinstance(value, str) and not ATTRIBUTE.fullmatch(value):
        raise ValueError("must be an LDAP attribute name (a letter, then letters, digits or '-')")
    return value


def _dn(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parse_dn(value)
        except Exception:
            raise ValueError("must be a distinguished name (RFC 4514)") from None
    return value


Secret = Annotated[SecretStr, BeforeValidator(_resolve)]
#: Not secret, but may be a reference too (``url: ${env:LDAP_URL}``).
Text = Annotated[str, BeforeValidator(_resolve)]
Attr = Annotated[str, BeforeValidator(_attribute)]
Dn = Annotated[str, BeforeValidator(_dn)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tls(_Model):
    #: PEM file of the CA(s) that signed the directory's certificate; default: the system's.
    ca_file: Text | None = None
    #: Check the certificate and the host name; turning it off is for experiments only.
    verify: bool = True


class Deactivation(_Model):
    """How ``active: false`` is kept: the mapping writes and reads the boolean ``field``."""

    #: The record field the mapping writes the user's ``active`` into (true/false).
    field: str = "active"
    #: ``flag``: an attribute holds ``disabled`` (absent or ``enabled`` when active);
    #: ``bit``: a bit of an integer attribute (Active Directory's userAccountControl 0x2);
    #: ``ou``: disabled users are moved under ``ou``.
    by: Literal["flag", "bit", "ou"]
    attribute: Attr | None = None
    disabled: str = "TRUE"
    enabled: str | None = None
    bit: int = Field(2, ge=1)
    #: The value the attribute gets when a new user is created in ``bit`` mode.
    initial: int = Field(512, ge=0)
    ou: Dn | None = None

    @model_validator(mode="after")
    def _complete(self) -> Deactivation:
        if self.by in ("flag", "bit") and self.attribute is None:
            raise ValueError(f"by: {self.by} needs the attribute that holds it")
        if self.by == "ou" and self.ou is None:
            raise ValueError("by: ou needs the ou disabled users are moved to")
        if self.by == "bit" and self.bit & (self.bit - 1):
            raise ValueError("bit must be a single bit (1, 2, 4, ...)")
        return self


class _Entries(_Model):
    #: Where the entries are searched (subtree).
    base_dn: Dn
    #: The DN of a new entry: ``attr={field},parent``; ``{field}`` is a record field
    #: the mapping writes (escaped per RFC 4514). Its first RDN names the entry.
    dn: str
    object_classes: list[Attr] = Field(min_length=1)
    #: An extra LDAP filter the entries must match (default: their object classes).
    filter: str | None = None
    #: The attribute holding the SCIM id: stable across renames and moves.
    id_attribute: Attr = "entryUUID"
    #: Attributes whose values must be unique among these entries (compared as the
    #: directory's equality rule does: ignoring case for uid and cn).
    unique: list[Attr] = Field(default_factory=list)
    #: Attributes given to the mapping as lists (the others: their first value).
    multi_valued: list[Attr] = Field(default_factory=list)
    #: Multi-valued SCIM attributes (``emails``) whose values LDAP attributes keep one
    #: attribute per type (``mail`` the work address): an LDAP value has no type, label or
    #: primary flag of its own. The app's /Schemas lists only their ``value`` and ``type``,
    #: with these types as its canonicalValues ([]: value only), so clients know what stays.
    typed_values: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("dn")
    @classmethod
    def _template(cls, value: str) -> str:
        fields = PLACEHOLDER.findall(value)
        first, _, parent = value.partition(",")
        name, eq, template = first.partition("=")
        if not eq or not ATTRIBUTE.fullmatch(name) or not PLACEHOLDER.fullmatch(template):
            raise ValueError("must start with attribute={field}, as uid={uid},ou=people,...")
        if len(fields) != 1 or not parent:
            raise ValueError("must have one {field}, in its first RDN, and a parent DN")
        if fields[0] != name:
            raise ValueError(f"the field must be the naming attribute: {name}={{{name}}},...")
        _dn(parent)
        return value

    @property
    def rdn_attribute(self) -> str:
        return self.dn.partition("=")[0]

    @property
    def rdn_field(self) -> str:
        return str(PLACEHOLDER.findall(self.dn)[0])

    @property
    def parent(self) -> str:
        return self.dn.partition(",")[2]


class UserEntries(_Entries):
    deactivation: Deactivation | None = None


class GroupEntries(_Entries):
    #: ``member``/``uniqueMember`` hold member DNs; ``memberUid`` holds a user attribute.
    member_attribute: Literal["member", "uniqueMember", "memberUid"] = "member"
    #: For ``memberUid``: the user attribute its values are (``uid``).
    member_uid_attribute: Attr = "uid"
    #: A DN kept in an emptied group whose schema needs a member (groupOfNames);
    #: never reported as a member. None: the group's class allows no members.
    placeholder_member: Dn | None = None


class LdapSettings(_Model):
    #: ``ldap://host:389`` or ``ldaps://host:636``.
    url: Text
    #: Upgrade an ``ldap://`` connection with StartTLS (RFC 4513) before binding.
    start_tls: bool = False
    tls: Tls = Tls()
    bind_dn: Secret
    password: Secret
    #: Seconds to open a connection.
    connect_timeout: float = Field(5.0, gt=0)
    #: Seconds an operation may take before the request gets 504.
    timeout: float = Field(10.0, gt=0)
    #: Connections, each on its own worker thread.
    pool_size: int = Field(4, ge=1, le=64)
    #: Page size of the adapter's searches (RFC 2696 paged results).
    page_size: int = Field(500, ge=1, le=10_000)
    #: Seconds the ids of a search's matches are kept for the next pages of the same
    #: search (startIndex > 1), so a paging walk reads them once (0: every page reads them).
    snapshot_seconds: float = Field(30.0, ge=0)
    #: A group with more members than this is refused (502), not loaded.
    max_members: int = Field(10_000, ge=1)
    #: Seconds in Retry-After when the directory is unreachable.
    retry_after: int = Field(5, ge=1)
    users: UserEntries
    groups: GroupEntries | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.fullmatch(r"ldaps?://[^/?#\s]+/?", value):
            raise ValueError("must be ldap://host[:port] or ldaps://host[:port]")
        return value

    @model_validator(mode="after")
    def _tls(self) -> LdapSettings:
        if self.start_tls and self.url.startswith("ldaps:"):
            raise ValueError("start_tls: an ldaps:// URL is TLS already")
        return self
