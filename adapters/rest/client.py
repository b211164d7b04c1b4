"""The one place where calls to the legacy app are built and sent.

A :class:`Request` says what to call (an operation of the settings and the
values for its placeholders); :meth:`Client.render` turns it into a
:class:`gateway.sdk.LegacyCall`, the exact method, URL, headers and body.
A dry run renders with secrets masked; :meth:`Client.send` renders the same
request with them and sends it, so a dry run shows what would be sent.

Calls that are safe to repeat are retried (settings ``retry``): a method
that is idempotent (GET, HEAD, PUT, DELETE; PATCH when ``idempotent_patch``;
any call declared ``safe_to_repeat``)
after a broken connection, a timeout, an unusable answer or 429/502/503/504;
any method, POST included, when the call provably did not reach the app (the
connection could not be opened) or the app refused it with 429, which says it
was not processed (RFC 6585). Waits are backoff with full jitter, or the
app's own ``Retry-After``, within the retry budget and the call's deadline
(:mod:`gateway.retry`). A write that may have reached the app but got no
usable answer is reported as unknown: the operation's outcome says so.

Ids are percent-encoded into one path segment (``/``, ``?``, ``#``, ``%``
included, and ``.``/``..`` too), so no id can reach another URL. Redirects
are not followed (they would carry credentials elsewhere), and a next-page
link must stay on the app's own origin.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from adapters.rest.auth import build_auth, host_port
from adapters.rest.config import PLACEHOLDER, Call, LinkPaging, RestSettings
from adapters.rest.errors import (
    Redactor,
    malformed,
    raise_for_status,
    retry_after_seconds,
    transport_errors,
)
from adapters.rest.wire import AnswerTooLarge, NotConnected, Pool
from gateway import telemetry
from gateway.config import resolve_secret
from gateway.limits import mark_unknown
from gateway.masking import is_secret_name
from gateway.retry import Attempts, Pacing
from gateway.sdk import InvalidValue, LegacyCall, NotFound, ScimError, UpstreamError

log = logging.getLogger(__name__)

#: How the gateway names itself to legacy apps (their logs show it).
USER_AGENT = "scim-gateway"

MASK = "****"
_MISSING = object()
# Kept as they are in the literal parts of a configured path.
_PATH_SAFE = "/-._~!$&'()*+,;=:@%"
_REFERENCE = re.compile(r"\$\{(env|file):")
#: Methods whose repetition leaves the app as one call would (RFC 9110 9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
#: Answers worth another attempt: the app, or a proxy in front of it, is overloaded or down.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class Unknown(str):
    """A value only known once an earlier call has run (``{new id}``), shown as is."""


@dataclass(frozen=True, slots=True)
class Request:
    op: Call
    id: str | None = None
    member: str | None = None
    members: Sequence[str] | None = None
    #: The record's fields for a create or update (wrapped in ``body_root``).
    record: Mapping[str, Any] | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    #: A next-page URL given by the app (link paging); replaces path and query.
    url: str | None = None
    #: Write member ids into bodies as integers.
    integer_ids: bool = False

    @property
    def label(self) -> str:
        """How messages name the call: its template, never its URL (no ids, no values)."""
        return f"{self.op.method} {self.op.path}"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str] | CIMultiDict[str]
    body: bytes
    next_link: str | None
    label: str

    def json(self) -> Any:
        """The parsed body; None when it is empty."""
        if not self.body.strip():
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise malformed(self.label, "not JSON") from None


def segment(value: str) -> str:
    """``value`` as one path segment that cannot climb (``..``) or end the path (``?``, ``#``)."""
    encoded = quote(value, safe="")
    if encoded.strip(".") == "":
        encoded = encoded.replace(".", "%2E")
    return encoded


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path (``""`` is the whole), or ``MISSING``."""
    if path == "":
        return data
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


MISSING = _MISSING


def _fill_text(text: str, request: Request) -> str:
    """Placeholders inside a longer text (a query value, a body string) filled as text."""
    values = {"id": request.id, "member": request.member}

    def fill(match: re.Match[str]) -> str:
        if match.group(1) == "members":
            return ",".join(request.members or ())
        return values[match.group(1)] or ""

    return PLACEHOLDER.sub(fill, text)


class Client:
    def __init__(self, settings: RestSettings) -> None:
        self.settings = settings
        self.redact = Redactor()
        self.timeout = aiohttp.ClientTimeout(
            total=settings.timeout.total,
            connect=settings.timeout.connect,
            sock_read=settings.timeout.read,
        )
        #: Time, sleep and randomness of retries; tests put their own.
        self.pacing = Pacing()
        self.auth = build_auth(settings.auth, self.timeout, settings.retry_after, self.redact)
        self.where = host_port(settings.base_url)
        self._base = str(URL(settings.base_url))
        self._origin = URL(settings.base_url).origin()
        self._session: aiohttp.ClientSession | None = None
        self._pool: Pool | None = None
        #: Each operation's configured headers, masked and revealed (see _headers).
        self._header_cache: dict[tuple[int, bool], dict[str, str]] = {}
        #: Each operation's path, paging and body root, worked out once (see _plan).
        self._plans: dict[int, _OpPlan] = {}

    async def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self.settings.verify_tls)
            # aiohttp's client fetches OAuth 2.0 tokens (adapters/rest/auth.py): a few calls
            # an hour, to another host. The app's own calls go through the pool below.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                cookie_jar=aiohttp.DummyCookieJar(),  # no session state between calls
            )
            self._session._retry_connection = False
        if self._pool is None:
            # The pool never sends a call twice by itself: a call whose connection dropped
            # is repeated by send() alone, which knows that a DELETE whose connection
            # dropped may have been done.
            self._pool = Pool(
                self._origin, verify_tls=self.settings.verify_tls, user_agent=USER_AGENT
            )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # -- building ----------------------------------------------------------------------

    def render(self, request: Request, *, reveal: bool = False) -> LegacyCall:
        """The call as it would be sent; with ``reveal`` False, secrets are ``****``."""
        url, headers, body = self._prepare(request, reveal)
        headers.update(self.auth.masked())  # the real values are set by send()
        return LegacyCall(request.op.method, str(url), headers, body)

    def _prepare(self, request: Request, reveal: bool) -> tuple[URL, dict[str, str], Any]:
        """The URL, the configured headers (secrets revealed or masked) and the body."""
        op = request.op
        if request.url is not None:
            url = self._same_origin(request.url, request.label)
        else:
            url = URL(self._base + self._path(request), encoded=True)
            query = {
                k: _fill_text(self._secret(v, reveal, k), request) for k, v in op.query.items()
            }
            query.update(request.params)
            if query:
                url = url.update_query(query)
        headers = dict(self._headers(op, reveal))
        body = self._body(request)
        if body is not None:
            headers["Content-Type"] = "application/json"
        return url, headers, body

    def _headers(self, op: Call, reveal: bool) -> dict[str, str]:
        """The headers configured for ``op``, each secret resolved once (they are fixed
        at start-up: references are resolved then and never again)."""
        key = (id(op), reveal)
        found = self._header_cache.get(key)
        if found is None:
            found = {"Accept": "application/json"}
            for name, value in {**self.settings.headers, **op.headers}.items():
                found[name] = self._secret(value, reveal, name)
            self._header_cache[key] = found
        return found

    def _plan(self, op: Call) -> _OpPlan:
        """What does not change between calls of ``op``: its path's literal parts (quoted)
        and placeholders, whether it pages by Link header, its body root. The settings
        are frozen and live as long as the client, so ``id(op)`` names one operation."""
        found = self._plans.get(id(op))
        if found is None:
            pieces: list[str] = []
            last = 0
            for match in PLACEHOLDER.finditer(op.path):
                pieces.append(quote(op.path[last : match.start()], safe=_PATH_SAFE))
                pieces.append(match.group(1))
                last = match.end()
            pieces.append(quote(op.path[last:], safe=_PATH_SAFE))
            found = self._plans[id(op)] = _OpPlan(
                tuple(pieces),
                isinstance(getattr(op, "paging", None), LinkPaging),
                getattr(op, "body_root", None),
            )
        return found

    def _path(self, request: Request) -> str:
        pieces = self._plan(request.op).path
        if len(pieces) == 1:
            return pieces[0]
        out = [pieces[0]]
        for i in range(1, len(pieces), 2):  # placeholder, literal, placeholder, literal...
            name = pieces[i]
            if name == "members":
                out.append(",".join(segment(m) for m in request.members or ()))
            else:
                value = request.id if name == "id" else request.member
                if value is None or value == "":
                    raise NotFound(f"no {name} given for {request.label}")
                out.append(value if isinstance(value, Unknown) else segment(value))
            out.append(pieces[i + 1])
        return "".join(out)

    def _secret(self, text: str, reveal: bool, name: str = "") -> str:
        """A header or query value; one holding a reference, or named like a credential
        (``X-Api-Key``, ``token``), is a secret."""
        literal = _REFERENCE.search(text) is None
        if literal and not is_secret_name(name):
            return text
        if not reveal:
            return MASK
        value = text if literal else resolve_secret(text)
        self.redact.add(value)
        return value

    def _body(self, request: Request) -> Any:
        template = self._fill(request.op.body, request)
        if request.record is None:
            return template
        record = dict(request.record)
        root = self._plan(request.op).body_root
        wrapped = {root: record} if root else record
        return {**template, **wrapped} if isinstance(template, dict) else wrapped

    def _fill(self, value: Any, request: Request) -> Any:
        if isinstance(value, dict):
            return {k: self._fill(v, request) for k, v in value.items()}
        if isinstance(value, list):
            return [self._fill(v, request) for v in value]
        if not isinstance(value, str):
            return value
        if value == "{members}":
            return [self._member_id(m, request) for m in request.members or ()]
        if value == "{member}":
            return self._member_id(request.member or "", request)
        if value == "{id}":
            return request.id
        return _fill_text(value, request)

    @staticmethod
    def _member_id(value: str, request: Request) -> Any:
        if not request.integer_ids or isinstance(value, Unknown):
            return value
        if not value.isdigit():
            raise InvalidValue("this app's member ids are numbers; a member value is not")
        return int(value)

    def _same_origin(self, url: str, label: str) -> URL:
        target = URL(url, encoded=True)
        if target.origin() != self._origin:
            raise malformed(label, "its next-page link points to another host")
        return target

    # -- sending -----------------------------------------------------------------------

    async def send(self, request: Request, *, record: bool = True) -> Answer:
        """Send ``request``; raise the gateway's error for any failure.

        ``record``: the call is about one record, so 404 means it does not
        exist; otherwise (a list) 404 means the app has no such endpoint.
        """
        session, pool = self._session, self._pool
        if session is None or pool is None:
            raise RuntimeError("the REST adapter is not open; await adapter.open() first")
        url, headers, body = self._prepare(request, reveal=True)
        method = request.op.method
        call = _Prepared(
            method,
            url,
            headers,
            orjson.dumps(body) if body is not None else None,
            self._plan(request.op).link_paging,
        )
        write = method not in ("GET", "HEAD")
        uncertain = False  # an attempt of this write may have reached the app, unanswered
        attempts = Attempts(self.settings.retry.backoff(), self.pacing)
        while True:
            try:
                answer = await self._authorized(session, pool, call, request.label, attempts)
            except UpstreamError as exc:
                sent = not _never_sent(exc)
                uncertain = uncertain or (write and sent)
                repeat = self._repeatable(method, request.op) or not sent
                if repeat and await attempts.again():
                    continue
                if uncertain:
                    _outcome_unknown(exc)
                raise
            if uncertain and method == "DELETE" and answer.status in (404, 410):
                return answer  # gone: an earlier attempt, whose answer was lost, did it
            uncertain = uncertain or (write and answer.status == 504)  # a proxy gave up
            if not await self._again(method, answer, attempts, request.op):
                break
        try:
            self._check(answer, request.label, record)
        except ScimError as exc:
            if uncertain:
                _outcome_unknown(exc)
            raise
        return answer

    def _repeatable(self, method: str, op: Call) -> bool:
        if op.safe_to_repeat or method in IDEMPOTENT:
            return True
        return method == "PATCH" and self.settings.retry.idempotent_patch

    async def _again(self, method: str, answer: Answer, attempts: Attempts, op: Call) -> bool:
        """Wait and say True when ``answer`` is worth another attempt that fits the budget.

        429 says the app did not process the call, so any method may be sent again.
        """
        if answer.status not in RETRY_STATUSES:
            return False
        if answer.status != 429 and not self._repeatable(method, op):
            return False
        return await attempts.again(retry_after_seconds(answer.headers.get("Retry-After")))

    def _check(self, answer: Answer, label: str, record: bool) -> None:
        try:
            raise_for_status(
                answer.status,
                answer.headers,
                answer.body,
                label=label,
                duplicate=self.settings.duplicate,
                redact=self.redact,
                retry_after=self.settings.retry_after,
            )
        except NotFound as exc:
            if record:
                raise
            raise UpstreamError(f"the app has no endpoint {label} (404)") from exc
        if 300 <= answer.status < 400:
            raise UpstreamError(
                f"the app redirected {label} ({answer.status}); "
                "set base_url to the address it redirects to"
            )

    async def _authorized(
        self,
        session: aiohttp.ClientSession,
        pool: Pool,
        call: _Prepared,
        label: str,
        attempts: Attempts,
    ) -> Answer:
        """One attempt; a renewable credential the app refuses (401) is renewed once."""
        for renewal in (1, 2):
            credentials = await self.auth.headers(session)
            headers = {**call.headers, **credentials} if credentials else dict(call.headers)
            answer = await self._exchange(pool, call, headers, label, attempts.time_left())
            log.debug("%s answered %s", label, answer.status)
            if answer.status == 401 and self.auth.renewable and renewal == 1:
                self.auth.invalidate()  # the token may have been revoked: fetch a new one
                continue
            break
        return answer

    async def _exchange(
        self, pool: Pool, call: _Prepared, headers: dict[str, str], label: str, time_left: float
    ) -> Answer:
        # The attempt ends with the retry budget (or the call's deadline) at the latest.
        total = min(self.settings.timeout.total, max(0.001, time_left))
        if telemetry.TRACER is None:
            return await self._answer(pool, call, headers, label, total)
        with telemetry.legacy_call_span(call.method, call.url, headers) as span:
            answer = await self._answer(pool, call, headers, label, total)
            telemetry.legacy_call_status(span, answer.status)
            return answer

    async def _answer(
        self, pool: Pool, call: _Prepared, headers: dict[str, str], label: str, total: float
    ) -> Answer:
        limit = self.settings.max_response_size
        timeouts = self.settings.timeout
        with transport_errors(label, self.where, self.settings.retry_after):
            try:
                raw = await pool.request(
                    call.method,
                    call.url.raw_path_qs,
                    headers,
                    call.data,
                    seconds=total,
                    connect_timeout=timeouts.connect,
                    read_timeout=timeouts.read,
                    max_size=limit,
                )
            except AnswerTooLarge:
                raise malformed(label, f"larger than {limit} bytes (max_response_size)") from None
        link = _next_link(raw.headers, call.url) if call.link_paging else None
        return Answer(raw.status, raw.headers, raw.body, link, label)


@dataclass(frozen=True, slots=True)
class _OpPlan:
    """One configured operation, worked out once."""

    #: The path's quoted literal parts with placeholder names between them:
    #: ``("/users/", "id", "/groups")``.
    path: tuple[str, ...]
    link_paging: bool
    body_root: str | None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A call ready to send: its URL built once, its body encoded once for every attempt."""

    method: str
    url: URL
    headers: dict[str, str]
    data: bytes | None
    #: Read the next page from the answer's ``Link`` header (link paging only).
    link_paging: bool


_LINK_SPLIT = re.compile(r",(?=\s*<)")
_LINK_VALUE = re.compile(r"\s*<([^>]*)>(.*)", re.DOTALL)


def _next_link(headers: CIMultiDict[str], url: URL) -> str | None:
    """The ``rel="next"`` target of the answer's ``Link`` headers (RFC 8288), resolved
    against the call's URL; None when there is none. The caller checks its origin."""
    for header in headers.getall("Link", ()):
        for link in _LINK_SPLIT.split(header):
            match = _LINK_VALUE.match(link)
            if match is None:
                continue
            target, params = match.groups()
            for param in params.split(";"):
                name, _, value = param.partition("=")
                if name.strip().lower() != "rel":
                    continue
                if "next" in value.strip().strip('"').lower().split():
                    try:
                        return str(url.join(URL(target.strip(), encoded=True)))
                    except ValueError:
                        raise malformed("the next page", "its Link header is not a URL") from None
    return None


def _never_sent(exc: UpstreamError) -> bool:
    """The connection could not be opened: the app never saw the call, repeating is safe."""
    return isinstance(exc.__cause__, NotConnected)


def _outcome_unknown(exc: ScimError) -> None:
    """An attempt of a write reached the app (or may have) and its answer was lost."""
    exc.detail += "; whether the app made the change is unknown"
    exc.args = (exc.detail,)
    if isinstance(exc, UpstreamError):  # a create's name is then looked up first (dedupe)
        exc.outcome_unknown = True
    mark_unknown()
