"""The gateway's exceptions; each one declares the SCIM Error response it becomes.

    ScimError                      500
    ├── BadRequest                 400  (scimType given per instance)
    │   ├── InvalidFilter          400 invalidFilter
    │   ├── InvalidPath            400 invalidPath
    │   ├── InvalidValue           400 invalidValue
    │   ├── InvalidSyntax          400 invalidSyntax
    │   ├── NoTarget               400 noTarget
    │   ├── Mutability             400 mutability
    │   ├── TooMany                400 tooMany
    │   └── InvalidVersion         400 invalidVers
    ├── Unauthorized               401
    ├── Forbidden                  403
    ├── NotFound                   404
    ├── MethodNotAllowed           405
    ├── Conflict                   409 uniqueness
    ├── PreconditionFailed         412
    ├── PayloadTooLarge            413
    ├── TooManyRequests            429  (Retry-After)
    ├── NotImplementedByServer     501
    ├── StoreUnavailable           503  the gateway's own state store (Retry-After)
    └── UpstreamError              502  the legacy app answered something we cannot use
        ├── UpstreamUnavailable    503  (Retry-After)
        └── UpstreamTimeout        504

Adapters raise these (through ``gateway.sdk``); one middleware turns them into
SCIM Error JSON. Messages never carry attribute values, tokens or passwords.
"""

from __future__ import annotations

ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    status: int = 500
    scim_type: str | None = None
    #: For a write of several legacy calls: the step that failed, and those done
    #: before it (gateway/steps.py); names only.
    failed_step: str | None = None
    steps_done: tuple[str, ...] = ()

    def __init__(self, detail: str = "", *, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if scim_type is not None:
            self.scim_type = scim_type

    @property
    def headers(self) -> dict[str, str]:
        return {}

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"schemas": [ERROR_URN], "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        if self.detail:
            body["detail"] = self.detail
        return body


class BadRequest(ScimError):
    status = 400


class InvalidFilter(BadRequest):
    scim_type = "invalidFilter"


class InvalidPath(BadRequest):
    scim_type = "invalidPath"


class InvalidValue(BadRequest):
    scim_type = "invalidValue"


class InvalidSyntax(BadRequest):
    scim_type = "invalidSyntax"


class NoTarget(BadRequest):
    scim_type = "noTarget"


class Mutability(BadRequest):
    scim_type = "mutability"


class TooMany(BadRequest):
    scim_type = "tooMany"


class InvalidVersion(BadRequest):
    scim_type = "invalidVers"


class Unauthorized(ScimError):
    """401 with a challenge per accepted scheme (RFC 7235); ``error`` is RFC 6750's code.

    RFC 6750 3.1: a request with no credentials gets the challenge without an error
    code; one with a bad token gets ``error="invalid_token"``.
    """

    status = 401

    def __init__(
        self, detail: str = "", *, error: str | None = None, schemes: tuple[str, ...] = ("Bearer",)
    ) -> None:
        super().__init__(detail)
        self.error = error
        self.schemes = schemes

    @property
    def headers(self) -> dict[str, str]:
        challenges = []
        for scheme in self.schemes:
            params = 'realm="scim-gateway"'
            if scheme == "Bearer" and self.error:
                params += f', error="{self.error}"'
            challenges.append(f"{scheme} {params}")
        return {"WWW-Authenticate": ", ".join(challenges)}


class Forbidden(ScimError):
    status = 403


class NotFound(ScimError):
    status = 404


class MethodNotAllowed(ScimError):
    status = 405

    def __init__(self, detail: str = "", *, allow: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.allow = allow

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allow)} if self.allow else {}


class Conflict(ScimError):
    status = 409
    scim_type = "uniqueness"


class PreconditionFailed(ScimError):
    status = 412


class PayloadTooLarge(ScimError):
    status = 413


class TooManyRequests(ScimError):
    """The client sent more requests than its app's rate limit allows."""

    status = 429

    def __init__(self, detail: str = "", *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class NotImplementedByServer(ScimError):
    status = 501


class StoreUnavailable(ScimError):
    """The gateway's state store (audit trail, guard, journal) cannot be used right now.

    Not an upstream error: the legacy app was not asked. IdPs retry a 503 with
    Retry-After, where a 500 would count as a failure of the account."""

    status = 503

    def __init__(
        self, detail: str = "the gateway's state store is unavailable", *, retry_after: int = 10
    ) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class UpstreamError(ScimError):
    """The legacy app answered with something the adapter could not use."""

    status = 502
    #: The request may have reached the app, so a write may have happened
    #: (a timeout, a connection lost after sending); gateway/dedupe.py acts on it.
    outcome_unknown: bool = False


class UpstreamUnavailable(UpstreamError):
    status = 503

    def __init__(self, detail: str = "", *, retry_after: int = 30) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class UpstreamTimeout(UpstreamError):
    status = 504
    outcome_unknown = True
