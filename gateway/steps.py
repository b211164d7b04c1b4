"""Writes that take several legacy calls either complete or say exactly which step failed.

One SCIM write may be several calls to the legacy app: a PUT or PATCH
updates fields, removes members, then adds members (gateway/service.py
``_save``); a create adds the first members; the REST adapter may deactivate
through an endpoint of its own after the update. When a later step fails, the
earlier ones have happened (unless the adapter has transactions and rolled
them back), and the IdP and the operator must know which:

* the SCIM error's detail names the resource, the steps done and the step
  that failed: ``Group g7: update done, then add_members failed: ...``, or
  ``... failed; the earlier steps (update) were rolled back: ...``;
* the operation records ``failed_step`` and ``extra["steps_done"]``, and the
  outcome ``unknown`` when the failed step may still have happened (a timeout).

Only ids and step names go into details, never values. An adapter reports
its own inner steps with :func:`partial_failure`; the service keeps what the
adapter said and adds nothing.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.errors import ScimError, UpstreamError
from gateway.operation import Operation


def partial_failure(
    exc: ScimError,
    resource: str,
    done: tuple[str, ...],
    failed: str,
    *,
    rolled_back: bool = False,
) -> ScimError:
    """A copy of ``exc`` (same status and scimType) saying which step failed after which.

    ``resource`` names it by type and id (``Group g7``), never by a value.
    """
    error = copy.copy(exc)
    if not done:
        error.detail = f"{resource}: {failed} failed: {exc.detail}"
    elif rolled_back:
        error.detail = (
            f"{resource}: {failed} failed; the earlier steps ({', '.join(done)}) "
            f"were rolled back: {exc.detail}"
        )
    else:
        error.detail = f"{resource}: {', '.join(done)} done, then {failed} failed: {exc.detail}"
    error.args = (error.detail,)
    error.failed_step = failed
    error.steps_done = () if rolled_back else done
    return error


class Steps:
    """The legacy steps of one SCIM write, run in order with :meth:`step`.

    ``planned``: the steps this write will take; a write of one step keeps its
    error as it is (there is nothing partial to tell) and only records the step.
    """

    def __init__(
        self,
        op: Operation,
        resource_type: str,
        id: str | None,
        planned: list[str],
        *,
        atomic: bool,
    ) -> None:
        self.op = op
        self.resource_type = resource_type
        self.id = id
        self.planned = planned
        self.atomic = atomic
        self.done: list[str] = []

    @asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[None]:
        try:
            yield
        except ScimError as exc:
            raise self._failed(name, exc) from exc
        self.done.append(name)

    def _failed(self, name: str, exc: ScimError) -> ScimError:
        error = exc
        inner = exc.steps_done  # steps the adapter did inside this one
        if exc.failed_step is None and len(self.planned) > 1:
            where = f"{self.resource_type} {self.id}" if self.id else self.resource_type
            error = partial_failure(
                exc, where, tuple(self.done), name, rolled_back=self.atomic and bool(self.done)
            )
        self.op.failed_step = error.failed_step or name
        if isinstance(exc, UpstreamError) and exc.outcome_unknown:
            self.op.outcome = "unknown"  # the step may have happened
        done = [] if self.atomic else [*self.done, *inner]
        if done:
            self.op.extra["steps_done"] = ",".join(done)
        return error
