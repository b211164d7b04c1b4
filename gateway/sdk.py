"""What adapter authors import: the Adapter contract, its records and queries, and the errors.

An adapter connects one configured app to its legacy backend. The gateway
creates one instance per app with that app's ``settings`` section, awaits
:meth:`Adapter.open` at start-up and :meth:`Adapter.aclose` at shut-down, and
calls the operations below, one SCIM operation at a time. Rules every adapter
keeps (the contract suite in :mod:`gateway.testing` checks them):

* ``get``/``update``/``delete`` on an unknown id raise :class:`NotFound`.
* ``create``/``update`` that would break a uniqueness rule raise :class:`Conflict`
  and change nothing. A group's displayName is unique (without regard to case)
  while ``Adapter.unique_group_names`` is true: the app's setting of that name,
  on by default, which the gateway sets on the adapter after creating it.
* ``search`` is only given filters and sorts the adapter declared in its
  :class:`Capabilities`; it returns one page and the total number of matches,
  in a stable order.
* ``add_members``/``remove_members`` are idempotent deltas: adding a present
  member or removing an absent one is not an error.
* Failures of the backend are raised as :class:`UpstreamError`,
  :class:`UpstreamUnavailable` or :class:`UpstreamTimeout`, translated in
  one place, with the original exception chained as the cause and no
  attribute value, token or password in the message.
* When ``Capabilities.versions`` is true, every record carries a ``version``
  that changes on every write, and ``update``/``delete`` given
  ``expected_version`` raise :class:`PreconditionFailed` when it differs.
* The gateway makes the adapter calls of one SCIM write operation (a PUT or
  PATCH may update, remove members and add members, then read the result back)
  inside ``async with adapter.transaction():``. The default does nothing, so
  each call stands alone; an adapter whose backend can make them atomic (the
  SQL adapter) overrides it, runs the calls inside on one transaction, rolls
  it back when an exception leaves the block, and declares
  ``Capabilities.transactions``.

Reading ``Query.filter``: :func:`split_conjuncts` gives the terms of its
top-level ``and``, :func:`filter_leaves` every (path, operator) it tests,
:func:`eq_value` the value of one ``path eq "value"`` term (what most backends
can look up directly), and :func:`record_matches` checks a SCIM-shaped record
against the whole filter (what an adapter cannot push down, it may check this
way on a bounded set). :func:`eq_filter` builds a filter for the adapter's own
look-ups.

``check`` (optional) looks at the backend without writing: the columns or
endpoints the settings name exist (``scim-gateway check --online``).

Optionally, an adapter describes the calls an operation would make without
making them (``describe_create``, ``describe_update``, ``describe_delete``,
``describe_members``, each a list of :class:`LegacyCall` with secrets
masked): ``scim-gateway render`` prints them. Build them with the code that
sends, so a dry run shows exactly what would be sent.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel
from scim2_models.path import FilterNode

from gateway.errors import (
    BadRequest,
    Conflict,
    InvalidFilter,
    InvalidValue,
    NotFound,
    PreconditionFailed,
    ScimError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.mapping import IdentityMapping, Mapping
from gateway.scim.filter import compile_filter, filter_leaves, parse_filter, split_conjuncts
from gateway.scim.schema import build_resource_types
from gateway.steps import partial_failure

__all__ = [
    "Adapter",
    "BadRequest",
    "Capabilities",
    "Conflict",
    "FilterNode",
    "IdentityMapping",
    "InvalidFilter",
    "InvalidValue",
    "LegacyCall",
    "Mapping",
    "NotFound",
    "Page",
    "PreconditionFailed",
    "Query",
    "Record",
    "Ref",
    "ScimError",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "eq_filter",
    "eq_value",
    "filter_leaves",
    "partial_failure",
    "record_matches",
    "split_conjuncts",
]

ALL_OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"})


@dataclass(frozen=True, slots=True)
class Ref:
    """A member of a group, or a group a user belongs to.

    ``value`` is the SCIM id (the legacy id). For members ``type`` is
    ``"User"`` or ``"Group"`` when known; for a user's groups it is
    ``"direct"`` or ``"indirect"``, and ``display`` may carry the group's name.
    """

    value: str
    type: str | None = None
    display: str | None = None


@dataclass(slots=True)
class Record:
    """One user or group as the adapter holds it.

    ``data`` is the resource in the shape the app's mapping reads and writes
    (the legacy record's fields); for adapters without a mapping (the memory
    adapter) that is the SCIM resource itself, without ``id``, ``meta``,
    ``schemas``, ``members`` and ``groups``, which travel as :class:`Ref` lists. The gateway
    takes ownership of ``data`` (it may change it): hand out a fresh dict,
    never the adapter's own stored one.
    """

    id: str
    data: dict[str, Any]
    version: str | None = None
    created: datetime | None = None
    last_modified: datetime | None = None
    #: A group's members, when the adapter read them (None: not read).
    members: list[Ref] | None = None
    #: The groups a user is in, when the adapter knows them.
    groups: list[Ref] | None = None


@dataclass(frozen=True, slots=True)
class Query:
    """One page of a search.

    ``filter`` is a scim2-models filter tree whose attribute paths are already
    canonical (``userName``, ``name.familyName``, an extension attribute with
    its URN) and only uses what the adapter declared. ``sort_by`` is a
    canonical dotted path or None. ``start_index`` is 1-based.
    """

    resource_type: str
    filter: FilterNode | None = None
    sort_by: str | None = None
    descending: bool = False
    start_index: int = 1
    count: int = 100
    #: False when the response shows no ``members`` (groups) or ``groups`` (users): an
    #: adapter that declares ``Capabilities.skip_members`` then does not read them.
    members: bool = True


@dataclass(frozen=True, slots=True)
class LegacyCall:
    """One call an adapter would make to the legacy app, for a dry run.

    Secret header values (keys, tokens, passwords) are masked as ``****``.
    A placeholder in braces (``{new id}``) stands for a value only known
    once an earlier call has run.
    """

    method: str
    url: str
    headers: dict[str, str]
    body: Any = None


@dataclass(slots=True)
class Page:
    records: list[Record]
    total: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an adapter can do; the gateway never asks for anything else.

    ``filter_attributes`` maps a resource type to the canonical dotted paths
    (lower-case) it can filter on, each with its operators; ``None`` for a
    type means any attribute and operator of the SCIM schema. ``filter_logic``
    says whether ``and``/``or``/``not`` can be pushed down too.
    ``attributes`` maps a resource type to the lower-case paths the adapter
    round-trips (``name`` or ``name.givenname``; extension attributes with
    their URN); ``None`` means the whole RFC schema. The app's ``/Schemas``
    lists only these. ``transactions`` says whether :meth:`Adapter.transaction`
    makes the calls inside it atomic (all applied, or none when one fails).
    ``canonical_values`` maps a resource type to lower-case sub-attribute paths
    (``emails.type``) and the only values the adapter keeps of them; the app's
    ``/Schemas`` lists them as the sub-attribute's canonicalValues.
    """

    resource_types: frozenset[str] = frozenset({"User", "Group"})
    filter_attributes: dict[str, dict[str, frozenset[str]] | None] = field(default_factory=dict)
    filter_logic: bool = False
    sort: bool = False
    versions: bool = False
    groups: bool = True
    attributes: dict[str, frozenset[str] | None] = field(default_factory=dict)
    max_page_size: int = 1000
    transactions: bool = False
    #: ``get(..., members=False)`` and ``Query.members`` are understood: the adapter then
    #: skips reading a group's members (a user's groups), which the response will not show.
    #: The gateway passes ``members=`` only to adapters that declare this.
    skip_members: bool = False
    #: A record's ``version`` changes with every change of its data or timestamps and is
    #: never used again for other data of the same id. The gateway then keeps the JSON of
    #: each record a list shows and reuses it while the version is the same
    #: (gateway/rendered.py); an adapter whose versions may repeat (a timestamp of coarse
    #: resolution, a counter that restarts) must not declare it.
    exact_versions: bool = False
    canonical_values: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def can_filter(self, resource_type: str, path: str, op: str) -> bool:
        if resource_type not in self.filter_attributes:
            return False
        allowed = self.filter_attributes[resource_type]
        if allowed is None:
            return True
        return op in allowed.get(path.lower(), frozenset())


class Adapter(ABC):
    """Base class of every adapter. Subclasses set ``settings_model`` and ``capabilities``."""

    settings_model: ClassVar[type[BaseModel] | None] = None
    capabilities: Capabilities = Capabilities()
    #: A group's displayName is taken by one group at most (case-insensitive): a create
    #: or rename to a taken one raises :class:`Conflict`. The app's ``unique_group_names``.
    unique_group_names: bool = True

    def __init__(
        self,
        settings: BaseModel | None = None,
        *,
        app: str = "",
        mapping: Mapping | None = None,
    ) -> None:
        self.settings = settings
        self.app = app
        #: The app's mapping; adapters ask it which legacy field a SCIM
        #: attribute lives in (``mapping.legacy_field``) to push filters down.
        self.mapping: Mapping = mapping or IdentityMapping()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect to the backend; called once before the first request."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once at shut-down."""

    async def check(self) -> list[str]:
        """``scim-gateway check --online``: reach the backend and compare it with the settings.

        Returns the problems found, each naming its settings key (``users.list: ...``);
        may raise :class:`UpstreamError` and its kinds when the backend cannot be reached.
        Never writes. The default opens and closes the adapter; adapters that can look
        deeper (columns, endpoints) override it.
        """
        await self.open()
        await self.aclose()
        return []

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The scope of one SCIM write operation (optional hook; the default does nothing).

        The gateway wraps the adapter calls of one SCIM write operation in it
        (``async with adapter.transaction():``). Adapters that can make them
        atomic (SQL) do, and declare ``Capabilities.transactions``: calls made
        inside, by the same task, use the same transaction; it commits when
        the block ends, and an exception inside rolls it back. Entered again
        inside itself, it joins the open transaction.
        """
        return contextlib.nullcontext()

    @abstractmethod
    async def get(self, resource_type: str, id: str) -> Record:
        """One record. Adapters declaring ``Capabilities.skip_members`` also take a keyword
        ``members: bool = True``; with False they may leave ``members``/``groups`` None."""

    @abstractmethod
    async def search(self, query: Query) -> Page: ...

    @abstractmethod
    async def create(
        self, resource_type: str, data: dict[str, Any], *, members: Sequence[str] = ()
    ) -> Record:
        """Create a resource; for a group, with ``members`` (SCIM ids) as its first members."""

    @abstractmethod
    async def update(
        self,
        resource_type: str,
        id: str,
        changes: dict[str, Any],
        *,
        expected_version: str | None = None,
    ) -> Record:
        """Apply ``changes`` (top-level keys of ``data``; ``None`` removes the key)."""

    @abstractmethod
    async def delete(
        self, resource_type: str, id: str, *, expected_version: str | None = None
    ) -> None: ...

    async def add_members(self, group_id: str, member_ids: list[str]) -> None:
        raise NotImplementedError

    async def remove_members(self, group_id: str, member_ids: list[str]) -> None:
        raise NotImplementedError

    # -- dry run (optional): the calls an operation would make, without sending them ----

    def describe_create(
        self, resource_type: str, data: dict[str, Any], members: Sequence[str] = ()
    ) -> list[LegacyCall]:
        raise NotImplementedError

    def describe_update(
        self, resource_type: str, id: str, changes: dict[str, Any]
    ) -> list[LegacyCall]:
        raise NotImplementedError

    def describe_delete(self, resource_type: str, id: str) -> list[LegacyCall]:
        raise NotImplementedError

    async def describe_search(self, query: Query) -> list[LegacyCall]:
        """The first call of a search (``render`` of a GET with a filter), showing what is
        pushed down. Async and called on an opened adapter: it may need what ``open`` learnt
        (the SQL adapter's columns)."""
        raise NotImplementedError

    def describe_members(
        self,
        group_id: str,
        added: Sequence[str],
        removed: Sequence[str],
        *,
        current: Sequence[str] | None = None,
    ) -> list[LegacyCall]:
        """``current``: the group's members when known; else the calls reading them come first."""
        raise NotImplementedError


# -- reading and building filters ---------------------------------------------------


def eq_filter(path: str, value: str) -> FilterNode:
    """The filter ``path eq "value"`` (the value quoted as a JSON string, so any text is safe)."""
    text = f"{path} eq {orjson.dumps(value).decode()}"
    return parse_filter(text, max_length=len(text))


def eq_value(node: FilterNode | None, path: str) -> Any:
    """The value of a top-level ``path eq value`` term of ``node`` (``path`` in any case);
    None when the filter has no such term. Other terms still have to hold."""
    if node is None:
        return None
    wanted = path.lower()
    for term in split_conjuncts(node):
        leaves = filter_leaves(term)
        value = getattr(term, "value", None)
        if leaves == [(wanted, "eq")] and hasattr(term, "attr_path") and value is not None:
            return value
    return None


def record_matches(node: FilterNode | None, resource: dict[str, Any], resource_type: str) -> bool:
    """Whether a SCIM-shaped ``resource`` (with its ``id``) passes the filter ``node``."""
    if node is None:
        return True
    return compile_filter(node, build_resource_types()[resource_type])(resource)
