"""Where ldap3's failures become gateway errors: the one place (STYLE habit 5).

    entryAlreadyExists (68)                 -> Conflict 409 uniqueness
    noSuchObject (32)                       -> NotFound 404
    objectClassViolation (65), constraintViolation (19), invalidAttributeSyntax (21),
    undefinedAttributeType (17), invalidDNSyntax (34), namingViolation (64),
    notAllowedOnRDN (67)                    -> InvalidValue 400, naming the result
    timeLimitExceeded (3), no answer in time
                                            -> UpstreamTimeout 504
    busy (51), unavailable (52), cannot connect, connection lost, TLS failure
                                            -> UpstreamUnavailable 503 with Retry-After
    invalidCredentials (49), insufficientAccessRights (50), anything else
                                            -> UpstreamError 502 naming the result code

Messages name result codes and the server (``host:port``), never a value, a DN or
the bind DN: a directory's diagnostic text may quote the entry, so it is not
passed on. The original exception is chained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ldap3.core import exceptions as ldap_errors

from gateway.sdk import (
    Conflict,
    InvalidValue,
    NotFound,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = ["CONNECTION_ERRORS", "map_ldap_errors"]

_INVALID: tuple[type[Exception], ...] = (
    ldap_errors.LDAPObjectClassViolationResult,
    ldap_errors.LDAPConstraintViolationResult,
    ldap_errors.LDAPInvalidAttributeSyntaxResult,
    ldap_errors.LDAPUndefinedAttributeTypeResult,
    ldap_errors.LDAPInvalidDNSyntaxResult,
    ldap_errors.LDAPNamingViolationResult,
    ldap_errors.LDAPNotAllowedOnRDNResult,
    ldap_errors.LDAPInvalidDnError,
    ldap_errors.LDAPAttributeOrValueExistsResult,
)
_UNAVAILABLE: tuple[type[Exception], ...] = (
    ldap_errors.LDAPBusyResult,
    ldap_errors.LDAPUnavailableResult,
    ldap_errors.LDAPServerPoolExhaustedError,
)
#: The connection itself failed: it is dropped, and a fresh one opened next time.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    ldap_errors.LDAPCommunicationError,
    ldap_errors.LDAPSocketOpenError,
    ldap_errors.LDAPSessionTerminatedByServerError,
    ldap_errors.LDAPStartTLSError,
    ldap_errors.LDAPSSLConfigurationError,
    ldap_errors.LDAPResponseTimeoutError,
    OSError,
)


def _code(exc: Exception) -> str:
    result = getattr(exc, "result", None)
    description = getattr(exc, "description", None)
    return f"{description} ({result})" if result is not None else type(exc).__name__


@contextmanager
def map_ldap_errors(where: str, retry_after: int) -> Iterator[None]:
    """Translate what ldap3 raises while talking to the directory ``where`` (host:port)."""
    try:
        yield
    except ldap_errors.LDAPEntryAlreadyExistsResult as exc:
        raise Conflict("the directory already holds an entry with that name") from exc
    except ldap_errors.LDAPNoSuchObjectResult as exc:
        raise NotFound("no such entry in the directory") from exc
    except _INVALID as exc:
        raise InvalidValue(f"the directory refused the change: {_code(exc)}") from exc
    except (ldap_errors.LDAPTimeLimitExceededResult, ldap_errors.LDAPResponseTimeoutError) as exc:
        raise UpstreamTimeout(f"the directory at {where} did not answer in time") from exc
    except _UNAVAILABLE as exc:
        raise UpstreamUnavailable(
            f"the directory at {where} is unavailable: {_code(exc)}", retry_after=retry_after
        ) from exc
    except CONNECTION_ERRORS as exc:
        raise UpstreamUnavailable(
            f"cannot reach the directory at {where} ({type(exc).__name__})",
            retry_after=retry_after,
        ) from exc
    except ldap_errors.LDAPException as exc:
        raise UpstreamError(f"the directory at {where} failed: {_code(exc)}") from exc
