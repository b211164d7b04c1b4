"""``python -m bench.no_otel serve ...``: the gateway with its OpenTelemetry hooks cut out.

The baseline of the tracing suite's "off" row: before the gateway is imported,
the telemetry module's span helpers are replaced by functions that return the
shared do-nothing context at once, so the request path keeps not even the
``TRACER is None`` checks those helpers make. What remains is the gateway
without OpenTelemetry; "tracing off" (nothing configured) is measured against it.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry.trace import Span

from gateway import telemetry


def _no_span(*args: Any, **kwargs: Any) -> AbstractContextManager[Span]:
    return telemetry.NO_SPAN


def main() -> int:
    telemetry.span = _no_span
    telemetry.operation_span = _no_span
    telemetry.current_ids = lambda: (None, None)
    from gateway.cli import main as cli_main  # imported after: its modules bind the stubs

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
