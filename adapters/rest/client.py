"""The one place where calls to the legacy app are built and sent.

A :class:`Request` says what to call (an operation of the settings and the
values for its placeholders); :meth:`Client.render` turns it into a
:class:`gateway.sdk.LegacyCall`, the exact method, URL, headers and body.
A dry run renders with secrets masked; :meth:`Client.send` renders the same
request with them and sends it, so a dry run shows what would be sent.

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
from multidict import CIMultiDict
from yarl import URL

from adapters.rest.auth import build_auth, host_port
from adapters.rest.config import PLACEHOLDER, Call, RestSettings
from adapters.rest.errors import Redactor, malformed, raise_for_status, transport_errors
from gateway.config import resolve_secret
from gateway.masking import is_secret_name
from gateway.sdk import InvalidValue, LegacyCall, NotFound, UpstreamError
from gateway.telemetry import client_trace_configs

log = logging.getLogger(__name__)

MASK = "****"
_MISSING = object()
# Kept as they are in the literal parts of a configured path.
_PATH_SAFE = "/-._~!$&'()*+,;=:@%"
_REFERENCE = re.compile(r"\$\{(env|file):")


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
    headers: CIMultiDict[str]
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
            total=settings.timeout.total, connect=settings.timeout.connect
        )
        self.auth = build_auth(settings.auth, self.timeout, settings.retry_after, self.redact)
        self.where = host_port(settings.base_url)
        self._base = str(URL(settings.base_url))
        self._origin = URL(settings.base_url).origin()
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self.settings.verify_tls)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                cookie_jar=aiohttp.DummyCookieJar(),  # no session state between calls
                # A CLIENT span per call, traceparent sent on; the URL without its query.
                trace_configs=client_trace_configs(),
            )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- building ----------------------------------------------------------------------

    def render(self, request: Request, *, reveal: bool = False) -> LegacyCall:
        """The call as it would be sent; with ``reveal`` False, secrets are ``****``."""
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
        headers = {"Accept": "application/json"}
        for name, value in {**self.settings.headers, **op.headers}.items():
            headers[name] = self._secret(value, reveal, name)
        headers.update(self.auth.masked())  # the real values are set by send()
        body = self._body(request)
        if body is not None:
            headers["Content-Type"] = "application/json"
        return LegacyCall(op.method, str(url), headers, body)

    def _path(self, request: Request) -> str:
        values = {"id": request.id, "member": request.member}
        out, last = [], 0
        for match in PLACEHOLDER.finditer(request.op.path):
            out.append(quote(request.op.path[last : match.start()], safe=_PATH_SAFE))
            name = match.group(1)
            if name == "members":
                out.append(",".join(segment(m) for m in request.members or ()))
            else:
                value = values[name]
                if value is None or value == "":
                    raise NotFound(f"no {name} given for {request.label}")
                out.append(value if isinstance(value, Unknown) else segment(value))
            last = match.end()
        out.append(quote(request.op.path[last:], safe=_PATH_SAFE))
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
        root = getattr(request.op, "body_root", None)
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
        session = self._session
        if session is None:
            raise RuntimeError("the REST adapter is not open; await adapter.open() first")
        call = self.render(request, reveal=True)
        for attempt in (1, 2):
            headers = {**call.headers, **await self.auth.headers(session)}
            # W3C trace context will be injected into ``headers`` here.
            answer = await self._exchange(session, call, headers, request.label)
            log.debug("%s answered %s", request.label, answer.status)
            if answer.status == 401 and self.auth.renewable and attempt == 1:
                self.auth.invalidate()  # the token may have been revoked: fetch a new one
                continue
            break
        try:
            raise_for_status(
                answer.status,
                answer.headers,
                answer.body,
                label=request.label,
                duplicate=self.settings.duplicate,
                redact=self.redact,
                retry_after=self.settings.retry_after,
            )
        except NotFound as exc:
            if record:
                raise
            raise UpstreamError(f"the app has no endpoint {request.label} (404)") from exc
        if 300 <= answer.status < 400:
            raise UpstreamError(
                f"the app redirected {request.label} ({answer.status}); "
                "set base_url to the address it redirects to"
            )
        return answer

    async def _exchange(
        self, session: aiohttp.ClientSession, call: LegacyCall, headers: dict[str, str], label: str
    ) -> Answer:
        data = orjson.dumps(call.body) if call.body is not None else None
        limit = self.settings.max_response_size
        with transport_errors(label, self.where, self.settings.retry_after):
            async with session.request(
                call.method,
                URL(call.url, encoded=True),
                headers=headers,
                data=data,
                allow_redirects=False,
            ) as resp:
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > limit:
                        raise malformed(label, f"larger than {limit} bytes (max_response_size)")
                    chunks.append(chunk)
                nxt = resp.links.get("next")
                link = nxt.get("url") if nxt is not None else None  # resolved against our URL
                return Answer(
                    resp.status,
                    CIMultiDict(resp.headers),
                    b"".join(chunks),
                    str(link) if link is not None else None,
                    label,
                )
