"""SDK spans straight to the wire bytes of an OTLP ``ExportTraceServiceRequest``.

The library's encoder (``encode_spans`` of opentelemetry-exporter-otlp-proto-common)
builds a protobuf message object for every span, key, value, event and link,
field by field from Python, and then serialises it; with tracing on, the span
export thread spends most of its time there, holding the GIL the request path
needs. This module writes the same message by hand (varints, length-delimited
fields, fixed64/fixed32), with the parts that repeat (attribute keys, small
values) kept ready as bytes.

It mirrors ``encode_spans`` field for field: the same fields set (including
the empty ``status`` of a span with an unset status and the empty scope of a
span without one), the same grouping (resource, then instrumentation scope,
each in first-seen order, grouped by equality), the same ``AnyValue`` choice
(``bool`` before ``int``, ``str`` and ``bytes`` before sequences) and the same
handling of an attribute whose value cannot be encoded: it is left out and
logged (by key and type: values may be personal data). Anything else that
cannot be encoded (an id out of range, an unknown span kind) fails the whole
batch, as there.

It also does :class:`gateway.telemetry.TypesOnly`'s job without copying the
span: an ``exception`` event loses ``exception.message`` and
``exception.stacktrace``, and a span with such an event reports no dropped
attributes, events or links, exactly as the copy ``TypesOnly`` exports does.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanKind, StatusCode

__all__ = ["EXCEPTION_DETAILS", "encode_spans"]

_logger = logging.getLogger(__name__)

#: What an exported ``exception`` event leaves out (it may quote request data).
EXCEPTION_DETAILS = ("exception.message", "exception.stacktrace")

_fixed64 = struct.Struct("<Q").pack
_times = struct.Struct("<BQBQ").pack  # start_time_unix_nano and end_time_unix_nano, tagged
_fixed32 = struct.Struct("<I").pack
_double = struct.Struct("<d").pack

#: One-byte varints, by value.
_SMALL = [bytes((i,)) for i in range(128)]
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_MASK64 = (1 << 64) - 1

#: ``Span.SpanKind`` numbers (SPAN_KIND_INTERNAL = 1 ...), as encode_spans maps them.
_KINDS = {
    SpanKind.INTERNAL: b"\x30\x01",
    SpanKind.SERVER: b"\x30\x02",
    SpanKind.CLIENT: b"\x30\x03",
    SpanKind.PRODUCER: b"\x30\x04",
    SpanKind.CONSUMER: b"\x30\x05",
}
_INTERNAL, _SERVER, _CLIENT = SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT
_UNSET = StatusCode.UNSET
#: ``flags`` (fixed32, field 16) from encode_spans' ``_span_flags``:
#: SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, plus SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK for a
#: remote parent. The same values are field 6 of a link.
_SPAN_FLAGS = (b"\x85\x01" + _fixed32(0x100), b"\x85\x01" + _fixed32(0x300))
_LINK_FLAGS = (b"\x35" + _fixed32(0x100), b"\x35" + _fixed32(0x300))

#: The ``key`` field of a KeyValue, by key (attribute names repeat in every span).
_KEYS: dict[str, bytes] = {}
#: A span attribute's whole record (field 9: tag, length, key and value), by (key,
#: value) for short string values and ints: most attribute values of the gateway's spans
#: repeat too (app, method, route, resource type, adapter kind, outcome).
_SPAN_PAIRS: dict[tuple[str, object], bytes] = {}
_CACHE_SIZE = 4096
_CACHED_VALUE_SIZE = 48


def _varint(n: int) -> bytes:
    """``n`` (0 <= n < 2**64) as a protobuf varint."""
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n > 127:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _length(payload: bytes) -> bytes:
    """The length prefix of a length-delimited field holding ``payload``."""
    size = len(payload)
    return _SMALL[size] if size < 128 else _varint(size)


def _int64(value: int) -> bytes:
    """An ``int64`` field value: negative numbers are ten-byte two's complement varints."""
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError("Value out of range for int64")
    return _varint(value & _MASK64)


def _uint(value: int, bits: int) -> bytes:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"Value out of range for uint{bits}")
    return _varint(value)


def _string(tag: bytes, value: str | None) -> bytes:
    """A proto3 string field: absent when None or empty."""
    if not value:
        return b""
    raw = value.encode()
    return tag + _length(raw) + raw


def _any_value(value: Any) -> bytes:
    """The body of an ``AnyValue``, chosen as ``_encode_value`` does (bool before int)."""
    kind = type(value)
    if kind is str:
        raw: bytes = value.encode()
        return b"\x0a" + _length(raw) + raw
    if kind is int:
        return b"\x18" + _int64(value)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is float:
        return b"\x21" + _double(value)
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        raw = str.encode(value)
        return b"\x0a" + _length(raw) + raw
    if isinstance(value, int):
        return b"\x18" + _int64(int(value))
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, bytes):
        return b"\x3a" + _length(value) + value
    if isinstance(value, Sequence):
        items = b"".join([b"\x0a" + _length(v) + v for v in map(_any_value, value)])
        return b"\x2a" + _length(items) + items
    if isinstance(value, Mapping):
        pairs = b"".join([_key_value(b"\x0a", str(k), v) for k, v in value.items()])
        return b"\x32" + _length(pairs) + pairs
    raise TypeError(f"Invalid type {type(value).__name__}")


def _key(key: str) -> bytes:
    field = _KEYS.get(key)
    if field is None:
        raw = key.encode()
        field = b"\x0a" + _length(raw) + raw if raw else b""
        if type(key) is str:
            if len(_KEYS) >= _CACHE_SIZE:
                _KEYS.clear()
            _KEYS[key] = field
    return field


def _key_value(tag: bytes, key: str, value: Any) -> bytes:
    """One KeyValue as a field ``tag`` of its parent (the value is always present)."""
    body = _key(key)
    encoded = _any_value(value)
    body += b"\x12" + _length(encoded) + encoded
    return tag + _length(body) + body


def _attributes(
    tag: bytes,
    attributes: Mapping[str, Any] | None,
    pairs: dict[tuple[str, object], bytes] | None = None,
) -> bytes:
    """Repeated KeyValue field ``tag``; an attribute that cannot be encoded is left out.

    ``pairs`` caches the whole records of short string and int values (for this
    ``tag`` only). A string value under a known key is written inline: most values
    are, and a call per value is most of what encoding one costs.
    """
    if attributes is None:
        return b""
    out: list[bytes] = []
    append = out.append
    keys = _KEYS
    for key, value in attributes.items():
        kind = type(value)
        if pairs is not None and (kind is str or kind is int):
            record = pairs.get((key, value))
            if record is not None:
                append(record)
                continue
        if kind is str:
            key_field = keys.get(key)
            if key_field is not None:
                try:
                    raw = value.encode()
                except UnicodeEncodeError as error:
                    _left_out(key, value, error)
                    continue
                size = len(raw)
                body_size = len(key_field) + size + 4  # key, value tag, AnyValue size, tag, size
                if body_size < 128:
                    record = b"".join(
                        (
                            tag,
                            _SMALL[body_size],
                            key_field,
                            b"\x12",
                            _SMALL[size + 2],
                            b"\x0a",
                            _SMALL[size],
                            raw,
                        )
                    )
                    if pairs is not None and size <= _CACHED_VALUE_SIZE:
                        _remember(pairs, key, value, record)
                    append(record)
                    continue
        try:
            record = _key_value(tag, key, value)
        except Exception as error:
            _left_out(key, value, error)
            continue
        append(record)
        if pairs is not None and (kind is int or kind is str):
            _remember(pairs, key, value, record)
    return b"".join(out)


def _remember(
    pairs: dict[tuple[str, object], bytes], key: str, value: str | int, record: bytes
) -> None:
    """Keep ``record`` for (key, value): an int, or a string of a size worth keeping."""
    if type(key) is str and (type(value) is int or len(str(value)) <= _CACHED_VALUE_SIZE):
        if len(pairs) >= _CACHE_SIZE:
            pairs.clear()
        pairs[(key, value)] = record


def _left_out(key: object, value: object, error: Exception) -> None:
    """As encode_spans' ``_encode_attributes``: the attribute is left out, and logged.

    By key and type only: the value may be personal data, and so may the error's message.
    """
    _logger.error(
        "OTLP export: attribute %r left out, a %s value cannot be encoded (%s)",
        key,
        type(value).__name__,
        type(error).__name__,
    )


def _events(events: Sequence[Event]) -> bytes:
    out = []
    for event in events:
        name = event.name
        if name == "exception":
            # TypesOnly's copy: a plain dict without the details, so nothing dropped.
            attributes: Mapping[str, Any] | None = {
                k: v for k, v in (event.attributes or {}).items() if k not in EXCEPTION_DETAILS
            }
            dropped = 0
        else:
            attributes = event.attributes
            dropped = event.dropped_attributes
        body = b"".join(
            (
                b"\x09" + _fixed64(event.timestamp) if event.timestamp else b"",
                _string(b"\x12", name),
                _attributes(b"\x1a", attributes),
                b"\x20" + _uint(dropped, 32) if dropped else b"",
            )
        )
        out.append(b"\x5a" + _length(body) + body)
    return b"".join(out)


def _links(links: Sequence[Link]) -> bytes:
    out = []
    for link in links:
        context = link.context
        dropped = link.dropped_attributes
        body = b"".join(
            (
                b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
                b"\x12\x08" + context.span_id.to_bytes(8, "big"),
                _attributes(b"\x22", link.attributes),
                b"\x28" + _uint(dropped, 32) if dropped else b"",
                _LINK_FLAGS[bool(context.is_remote)],
            )
        )
        out.append(b"\x6a" + _length(body) + body)
    return b"".join(out)


def _span(span: ReadableSpan) -> bytes:
    """One ``Span`` record (field 2 of ScopeSpans), as encode_spans' ``_encode_span``."""
    context = span.get_span_context()
    assert context is not None  # encode_spans fails on a span without one, as this does
    parent = span.parent
    parts = [
        b"\x0a\x10",
        context.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        context.span_id.to_bytes(8, "big"),
    ]
    append = parts.append
    trace_state = context.trace_state
    if trace_state:  # encode_spans' "" for an empty one is no field
        append(_string(b"\x1a", ",".join([f"{k}={v}" for k, v in trace_state.items()])))
    if parent:
        append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    name = span.name
    if name:
        raw = name.encode()
        size = len(raw)
        append(b"\x2a" + (_SMALL[size] if size < 128 else _varint(size)) + raw)
    kind = span.kind
    append(
        b"\x30\x01"
        if kind is _INTERNAL
        else b"\x30\x02"
        if kind is _SERVER
        else b"\x30\x03"
        if kind is _CLIENT
        else _KINDS[kind]
    )
    start, end = span.start_time, span.end_time
    if start and end:
        append(_times(0x39, start, 0x41, end))
    elif start:
        append(b"\x39" + _fixed64(start))
    elif end:
        append(b"\x41" + _fixed64(end))
    append(_attributes(b"\x4a", span.attributes, _SPAN_PAIRS))
    events = span.events
    # A span with an exception event is exported by TypesOnly as a copy, and the
    # copy's dropped counts are 0 (they are read from the bounded containers only).
    copied = bool(events) and any(event.name == "exception" for event in events)
    if not copied:
        dropped = span.dropped_attributes
        if dropped:
            append(b"\x50" + _uint(dropped, 32))
    if events:
        append(_events(events))
    if not copied:
        dropped = span.dropped_events
        if dropped:
            append(b"\x60" + _uint(dropped, 32))
    links = span.links
    if links:
        append(_links(links))
    if not copied:
        dropped = span.dropped_links
        if dropped:
            append(b"\x70" + _uint(dropped, 32))
    status = span.status
    if status is not None:
        code = status.status_code
        description = status.description
        if code is _UNSET and not description:
            append(b"\x7a\x00")
        else:
            value = code.value
            body = _string(b"\x12", description) + (b"\x18" + _uint(value, 31) if value else b"")
            append(b"\x7a" + _length(body) + body)
    append(_SPAN_FLAGS[1 if parent and parent.is_remote else 0])
    body = b"".join(parts)
    size = len(body)
    return b"\x12" + (_SMALL[size] if size < 128 else _varint(size)) + body


def _scope(scope: InstrumentationScope | None) -> bytes:
    """The ``scope`` field of a ScopeSpans: always present, empty for no scope."""
    if scope is None:
        return b"\x0a\x00"
    body = (
        _string(b"\x0a", scope.name)
        + _string(b"\x12", scope.version)
        + _attributes(b"\x1a", scope.attributes)
    )
    return b"\x0a" + _length(body) + body


def _grouped(
    spans: Sequence[ReadableSpan], encode: Callable[[ReadableSpan], bytes]
) -> dict[Resource, dict[InstrumentationScope | None, list[bytes]]]:
    """Encoded spans by resource, then scope, each grouped by equality in first-seen order.

    Equality is what encode_spans' dicts use; a Resource hashes by dumping its
    attributes to JSON, so each distinct object is looked up once per batch
    (its id kept with the object, so the id cannot be reused meanwhile), and a
    span with the resource and scope objects of the one before is not looked up.
    """
    groups: dict[Resource, dict[InstrumentationScope | None, list[bytes]]] = {}
    by_resource: dict[int, tuple[Resource, dict[InstrumentationScope | None, list[bytes]]]] = {}
    by_scope: dict[tuple[int, int], tuple[InstrumentationScope | None, list[bytes]]] = {}
    last: tuple[object, object] = (_NOTHING, _NOTHING)
    records: list[bytes] = []
    for span in spans:
        record = encode(span)
        resource = span.resource
        scope = span.instrumentation_scope or None
        if resource is not last[0] or scope is not last[1]:
            known = by_resource.get(id(resource))
            if known is None:
                scopes = groups.setdefault(resource, {})
                by_resource[id(resource)] = (resource, scopes)
            else:
                scopes = known[1]
            seen = by_scope.get((id(scopes), id(scope)))
            if seen is None:
                records = scopes.setdefault(scope, [])
                by_scope[(id(scopes), id(scope))] = (scope, records)
            else:
                records = seen[1]
            last = (resource, scope)
        records.append(record)
    return groups


_NOTHING = object()


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialised ``ExportTraceServiceRequest`` of ``spans``, exceptions cut to types.

    Equal, once parsed, to ``encode_spans(spans).SerializePartialToString()`` of
    opentelemetry-exporter-otlp-proto-common after :class:`gateway.telemetry.TypesOnly`.
    Raises what that raises for a span it cannot encode (the exporter fails the batch).
    """
    out = []
    for resource, scopes in _grouped(spans, _span).items():
        body = [_attributes(b"\x0a", resource.attributes)]
        parts = [b"\x0a" + _length(body[0]) + body[0]]
        for scope, records in scopes.items():
            scope_body = b"".join(
                (
                    _scope(scope),
                    *records,
                    _string(b"\x1a", scope.schema_url if scope else None),
                )
            )
            parts.append(b"\x12" + _length(scope_body) + scope_body)
        parts.append(_string(b"\x1a", resource.schema_url))
        resource_body = b"".join(parts)
        out.append(b"\x0a" + _length(resource_body) + resource_body)
    return b"".join(out)
