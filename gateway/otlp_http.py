"""The OTLP/HTTP span exporter, with the request written by :mod:`gateway.otlp_wire`.

Imported only when traces go over OTLP/HTTP (see :func:`gateway.telemetry.span_exporter`).
Over gRPC the library's exporter and encoder stay (the gRPC stub takes a message
object, not bytes), behind :class:`gateway.telemetry.TypesOnly`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from gateway.otlp_wire import encode_spans
from gateway.telemetry import _types_only

try:  # the parent's size-limit error, so the exporter's metrics name it as the parent does
    from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError
except ImportError:  # pragma: no cover - an SDK without it: HttpSpanExporter falls back
    RequestPayloadTooLargeError = None  # type: ignore[assignment,misc]

__all__ = ["HttpSpanExporter"]

_logger = logging.getLogger(__name__)


class _Parent(NamedTuple):
    """What the parent's ``export`` uses besides the encoder (its private attributes)."""

    client: Any  # the HTTP client: export(bytes) -> result with success, error, status_code
    metrics: Any  # the exporter's metrics: export_operation(count) -> context of a result
    max_request_size: int


def _parent(exporter: OTLPSpanExporter) -> _Parent | None:
    """The parent's parts ``export`` needs, or None when this SDK does not have them.

    They are private to opentelemetry-exporter-otlp-proto-http (1.45): checked on
    every batch, so an SDK that renames them gets the parent's own ``export``.
    """
    client = getattr(exporter, "_client", None)
    metrics = getattr(exporter, "_metrics", None)
    limit = getattr(exporter, "_max_request_size", None)
    if (
        RequestPayloadTooLargeError is None
        or not callable(getattr(client, "export", None))
        or not callable(getattr(metrics, "export_operation", None))
        or type(limit) is not int
        or type(getattr(exporter, "_shutdown", None)) is not bool
    ):
        return None
    return _Parent(client, metrics, limit)


class HttpSpanExporter(OTLPSpanExporter):
    """OTLP/HTTP span export with the request bytes from :func:`gateway.otlp_wire.encode_spans`.

    The library's encoder builds a protobuf object per span, attribute and value
    in Python and was most of the export thread's time (holding the GIL the
    request path needs); ours writes the same bytes about four times faster. It
    also cuts exception events down to their type, as
    :class:`gateway.telemetry.TypesOnly` does, without copying the span, so this
    exporter is not wrapped in TypesOnly.

    Everything else is the parent's: endpoint, headers, compression, timeout and
    retries (its HTTP client), the size limit, the exporter's own metrics and
    the results and log lines of each failure. Should the parent's parts no
    longer be where 1.45 keeps them, ``export`` is the parent's, on copies made
    by TypesOnly's rule.
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        parent = _parent(self)
        if parent is None:
            return super().export([_types_only(span) for span in spans])
        if self._shutdown:
            _logger.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with parent.metrics.export_operation(len(spans)) as result:
            try:
                data = encode_spans(spans)
            except Exception as error:
                _logger.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            limit = parent.max_request_size
            if 0 < limit < len(data):
                _logger.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size "
                    "%d bytes.",
                    len(data),
                    limit,
                )
                result.error = RequestPayloadTooLargeError(
                    f"Serialized span request size {len(data)} bytes exceeds "
                    f"max_request_size {limit} bytes."
                )
                return SpanExportResult.FAILURE
            sent = parent.client.export(data)
            if not sent.success:
                result.error = sent.error
                result.error_attrs = (
                    {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                    if sent.status_code is not None
                    else None
                )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
