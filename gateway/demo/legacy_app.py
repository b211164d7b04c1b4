"""Acme HR: the demo legacy app that the gateway provisions into. Deliberately not SCIM-shaped.

Run it alone with ``python -m gateway.demo.legacy_app --port 8081 --db acme.sqlite --api-key KEY``
(``--db`` defaults to ``:memory:``, ``--api-key`` to ``$ACME_HR_API_KEY`` or ``acme-demo-key``),
or build it with ``create_legacy_app(db_path, api_key)``. The API below is the contract that the
REST adapter and its mappings are written against.

Conventions
    Every JSON answer is ``application/json``. Ids in paths match exactly (case-sensitive).
    Timestamps are ISO 8601 UTC with second precision: ``2024-05-01T12:00:00Z``.
    "Case-insensitive" means SQLite's ``lower()``: ASCII letters only.
    Request bodies are one JSON object holding the root key (``account`` or ``team``); other root
    keys are ignored. In optional string fields ``null`` clears the field, and so does ``""``.

Errors (status, body, when)
    400 ``{"error": "bad_request", "detail": "..."}``  body not JSON or root missing; bad paging
    401 ``{"error": "unauthorized"}``     ``X-Api-Key`` missing or wrong, on any path under /api
    404 ``{"error": "not_found"}``        unknown id; also any other path or method under /api
    409 ``{"error": "duplicate", "field": "login"}``   ``login``, ``mail`` or ``name`` is taken
    413 ``{"error": "payload_too_large"}``             body over 1 MiB
    422 ``{"errors": ["login is required", ...]}``     every problem in the body at once: unknown
                                          or read-only fields, wrong types, missing values
    507 ``{"error": "id_space_exhausted"}``            the id counter ran out of digits

Auth
    ``X-Api-Key: <key>`` on every /api route, compared in constant time. ``GET /healthz`` is open.

Accounts (users)
    ``{"account_id": "acc_000001", "login", "given", "family", "display", "mail", "mail_kind",
    "mail_label", "mail_primary", "phone", "phone_kind", "phone_label", "phone_primary",
    "title", "dept", "employee_no", "manager_id", "ext_ref",
    "status": "enabled" | "suspended" | null, "created_at", "updated_at"}``. The app assigns
    ``account_id`` from a counter (never reused) and the timestamps; those three are read-only
    (422 when sent). ``login`` is required, a non-blank string of at most 64 characters, unique
    case-insensitively, and cannot be cleared; ``mail`` is unique case-insensitively when set.
    ``status`` is ``enabled`` when a new account's body lacks it; an explicit null means "not
    set" (HR has not decided), on create and on PATCH alike. ``mail_primary`` and
    ``phone_primary`` are ``"y"``, ``"n"`` or null. The other fields are strings or null:
    ``mail_kind`` and ``phone_kind`` say what the mail or phone is (free text, e.g. ``work``,
    ``home``, ``mobile``), ``mail_label`` and ``phone_label`` how to show it. ``manager_id`` is
    not checked against the accounts.

    GET    /api/v1/accounts?offset=0&limit=50[&login=][&mail=][&ext_ref=][&status=]
           200 ``{"items": [...], "total": N, "offset": 0, "limit": 50}``, ordered by account_id.
           login and mail match exactly but case-insensitively, ext_ref (the provisioning
           system's reference) exactly, status as enabled or suspended (an account whose
           status is not set matches neither); filters combine with AND.
           offset >= 0, limit >= 0 (0 gives only the total), limit above 200 becomes 200.
    GET    /api/v1/accounts/{account_id}      200 ``{"account": {...}}`` (suspended ones too)
    POST   /api/v1/accounts ``{"account": {...}}``
           201 ``{"account": {...}}`` and ``Location: <absolute URL of the account>``
    PATCH  /api/v1/accounts/{account_id} ``{"account": {only the fields to change}}``
           200 ``{"account": {...}}``; updated_at moves only when a value changes
    DELETE /api/v1/accounts/{account_id}      204; its team memberships go with it

Teams (groups)
    ``{"team_id": "team_0001", "name", "description", "ext_ref", "created_at",
    "updated_at"}``; ``name`` is required, non-blank, unique case-insensitively. Single-team
    answers (GET, POST, PUT) add ``"member_ids": ["acc_000001", ...]`` ordered by
    account_id; list items have no members.

    GET    /api/v1/teams?page=1&per_page=25[&name=]
           200 ``{"teams": [...], "page": 1, "per_page": 25, "total": N}``, ordered by team_id.
           page >= 1, per_page >= 1, per_page above 100 becomes 100; name matches like login.
    GET    /api/v1/teams/{team_id}            200 ``{"team": {..., "member_ids": [...]}}``
    POST   /api/v1/teams ``{"team": {"name", "description"}}``   201 and ``Location``
    PUT    /api/v1/teams/{team_id} ``{"team": {"name", "description"}}``
           200; replaces both fields (a missing description is cleared)
    DELETE /api/v1/teams/{team_id}            204; its memberships go with it
    PUT    /api/v1/teams/{team_id}/members/{account_id}
           204, also when already a member; 404 for an unknown team or account
    DELETE /api/v1/teams/{team_id}/members/{account_id}
           204, also when not a member (or no such account); 404 for an unknown team

Storage
    One sqlite3 connection per app, opened in a ``cleanup_ctx``; the schema is created if missing
    (it is not migrated: a file written before the ``mail_kind``... columns must be started anew).
    Statements run synchronously on the event loop, one transaction per request, with no await
    inside it: on a local database each takes microseconds, less than a hop to a worker thread,
    and one connection serves one request at a time without a lock. (A file shared with a
    process holding a write lock could stall the loop up to sqlite3's 5 s busy timeout.)
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.demo.faults import Faults

__all__ = [
    "DEFAULT_API_KEY",
    "ApiError",
    "Store",
    "bad_request",
    "create_legacy_app",
    "duplicate",
    "main",
    "not_found",
    "validate_account",
    "validate_team",
]

log = logging.getLogger("gateway.demo.legacy_app")

DEFAULT_API_KEY = "acme-demo-key"
STATUSES = ("enabled", "suspended")
FLAGS = ("y", "n")
ACCOUNT_FIELDS = (
    "login",
    "given",
    "family",
    "display",
    "mail",
    "mail_kind",
    "mail_label",
    "mail_primary",
    "phone",
    "phone_kind",
    "phone_label",
    "phone_primary",
    "title",
    "dept",
    "employee_no",
    "manager_id",
    "ext_ref",
    "status",
)
ACCOUNT_READ_ONLY = ("account_id", "created_at", "updated_at")
TEAM_FIELDS = ("name", "description", "ext_ref")
TEAM_READ_ONLY = ("team_id", "created_at", "updated_at", "member_ids")
MAX_LOGIN_LENGTH = 64
MAX_LIMIT = 200
MAX_PER_PAGE = 100
MAX_QUERY_INT = 2**31 - 1

Json = dict[str, Any]
Clock = Callable[[], datetime]

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    login TEXT NOT NULL,
    given TEXT, family TEXT, display TEXT,
    mail TEXT, mail_kind TEXT, mail_label TEXT,
    mail_primary TEXT CHECK (mail_primary IN ('y', 'n')),
    phone TEXT, phone_kind TEXT, phone_label TEXT,
    phone_primary TEXT CHECK (phone_primary IN ('y', 'n')),
    title TEXT, dept TEXT, employee_no TEXT, manager_id TEXT, ext_ref TEXT,
    status TEXT CHECK (status IN ('enabled', 'suspended')),  -- NULL: not set
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS accounts_login_ci ON accounts (lower(login));
CREATE UNIQUE INDEX IF NOT EXISTS accounts_mail_ci ON accounts (lower(mail));
CREATE TABLE IF NOT EXISTS teams (
    team_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    ext_ref TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS teams_name_ci ON teams (lower(name));
CREATE TABLE IF NOT EXISTS team_members (
    team_id TEXT NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, account_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS team_members_account ON team_members (account_id);
"""

# Column lists are built from the constants above (identifiers only); values are always bound.
_ACCOUNT_COLUMNS = ("account_id", *ACCOUNT_FIELDS, "created_at", "updated_at")
_TEAM_COLUMNS = ("team_id", *TEAM_FIELDS, "created_at", "updated_at")
_SELECT_ACCOUNTS = f"SELECT {', '.join(_ACCOUNT_COLUMNS)} FROM accounts"
_SELECT_TEAMS = f"SELECT {', '.join(_TEAM_COLUMNS)} FROM teams"
_INSERT_ACCOUNT = (
    f"INSERT INTO accounts ({', '.join(_ACCOUNT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _ACCOUNT_COLUMNS)})"
)
_UPDATE_ACCOUNT = (
    f"UPDATE accounts SET {', '.join(f'{c} = :{c}' for c in _ACCOUNT_COLUMNS[1:])} "
    "WHERE account_id = :account_id"
)
_ACCOUNT_FILTERS = {
    "login": "lower(login) = lower(?)",
    "mail": "lower(mail) = lower(?)",
    "ext_ref": "ext_ref = ?",
    "status": "status = ?",
}
_NEXT_ID = (
    "INSERT INTO counters (name, value) VALUES (?, 1) "
    "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"
)


class ApiError(Exception):
    """Any answer but success: ``body`` is sent as JSON with ``status``."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, {"error": "bad_request", "detail": detail})


def not_found() -> ApiError:
    return ApiError(404, {"error": "not_found"})


def duplicate(field: str) -> ApiError:
    return ApiError(409, {"error": "duplicate", "field": field})


def _utc_now() -> datetime:
    return datetime.now(UTC)


# -- validation: JSON body -> column values ------------------------------------------------------


def _optional_string(errors: list[str], field: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors.append(f"{field} must be a string or null")
    return value if isinstance(value, str) else None


def _required_string(errors: list[str], field: str, value: Any, max_length: int | None) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.append(f"{field} is required")
    elif not isinstance(value, str):
        errors.append(f"{field} must be a string")
    elif max_length is not None and len(value) > max_length:
        errors.append(f"{field} must be at most {max_length} characters")
    return value if isinstance(value, str) else ""


def _check_keys(
    errors: list[str], data: Json, fields: tuple[str, ...], read_only: tuple[str, ...]
) -> None:
    for key in data:
        if key in read_only:
            errors.append(f"{key} is read-only")
        elif key not in fields:
            errors.append(f"unknown field: {key}")


def validate_account(data: Json, *, partial: bool) -> dict[str, str | None]:
    """The column values in ``data``; raises 422 listing every problem."""
    errors: list[str] = []
    _check_keys(errors, data, ACCOUNT_FIELDS, ACCOUNT_READ_ONLY)
    values: dict[str, str | None] = {}
    if not partial and "login" not in data:
        errors.append("login is required")
    for field in ACCOUNT_FIELDS:
        if field not in data:
            continue
        value = data[field]
        if field == "login":
            values[field] = _required_string(errors, field, value, MAX_LOGIN_LENGTH)
        elif field == "status":
            if not (value is None or (isinstance(value, str) and value in STATUSES)):
                errors.append("status must be one of: enabled, suspended, null")
            values[field] = value if isinstance(value, str) else None
        elif field in ("mail_primary", "phone_primary"):
            flag = None if value == "" else value
            if not (flag is None or (isinstance(flag, str) and flag in FLAGS)):
                errors.append(f'{field} must be "y", "n" or null')
            values[field] = flag if isinstance(flag, str) else None
        else:
            values[field] = _optional_string(errors, field, value)
    if errors:
        raise ApiError(422, {"errors": errors})
    return values


def validate_team(data: Json) -> dict[str, str | None]:
    """Both team fields (a missing description is null); raises 422 listing every problem."""
    errors: list[str] = []
    _check_keys(errors, data, TEAM_FIELDS, TEAM_READ_ONLY)
    values: dict[str, str | None] = {
        "name": _required_string(errors, "name", data.get("name"), None),
        "description": _optional_string(errors, "description", data.get("description")),
        "ext_ref": _optional_string(errors, "ext_ref", data.get("ext_ref")),
    }
    if errors:
        raise ApiError(422, {"errors": errors})
    return values


# -- storage ----------------------------------------------------------------------------------


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Json:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class Store:
    """Acme HR's tables. Each public method is one transaction and raises ApiError."""

    def __init__(self, db_path: str, clock: Clock = _utc_now) -> None:
        self.db_path = db_path
        self._clock = clock
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        db.row_factory = _dict_row
        db.execute("PRAGMA foreign_keys = ON")
        db.executescript(SCHEMA)
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        if db is None:
            raise RuntimeError("the Acme HR store is not open")
        db.execute("BEGIN")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _now(self) -> str:
        return self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def _next_id(db: sqlite3.Connection, prefix: str, digits: int) -> str:
        (row,) = db.execute(_NEXT_ID, (prefix,)).fetchall()
        if row["value"] >= 10**digits:
            raise ApiError(507, {"error": "id_space_exhausted"})
        return f"{prefix}{row['value']:0{digits}d}"

    # accounts

    @staticmethod
    def _account(db: sqlite3.Connection, account_id: str) -> Json:
        row: Json | None = db.execute(
            f"{_SELECT_ACCOUNTS} WHERE account_id = ?", (account_id,)
        ).fetchone()
        if row is None:
            raise not_found()
        return row

    @staticmethod
    def _check_account_unique(
        db: sqlite3.Connection, values: Mapping[str, Any], own_id: str | None
    ) -> None:
        for field in ("login", "mail"):
            if values.get(field) is None:
                continue
            taken = db.execute(
                f"SELECT 1 FROM accounts WHERE {_ACCOUNT_FILTERS[field]} AND account_id IS NOT ?",
                (values[field], own_id),
            ).fetchone()
            if taken is not None:
                raise duplicate(field)

    def list_accounts(
        self, offset: int, limit: int, filters: Mapping[str, str]
    ) -> tuple[list[Json], int]:
        where = " AND ".join(_ACCOUNT_FILTERS[name] for name in filters) or "1"
        params = tuple(filters.values())
        with self._transaction() as db:
            total = db.execute(f"SELECT count(*) AS n FROM accounts WHERE {where}", params)
            count: int = total.fetchone()["n"]
            items = db.execute(
                f"{_SELECT_ACCOUNTS} WHERE {where} ORDER BY account_id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return items, count

    def get_account(self, account_id: str) -> Json:
        with self._transaction() as db:
            return self._account(db, account_id)

    def create_account(self, values: Mapping[str, str | None]) -> Json:
        with self._transaction() as db:
            self._check_account_unique(db, values, None)
            now = self._now()
            row: Json = dict.fromkeys(_ACCOUNT_COLUMNS)
            row.update(values, status=values.get("status", "enabled"))
            row.update(account_id=self._next_id(db, "acc_", 6), created_at=now, updated_at=now)
            db.execute(_INSERT_ACCOUNT, row)
            return row

    def update_account(self, account_id: str, values: Mapping[str, str | None]) -> Json:
        with self._transaction() as db:
            current = self._account(db, account_id)
            changed = {k: v for k, v in values.items() if current[k] != v}
            if not changed:
                return current
            self._check_account_unique(db, changed, account_id)
            row = {**current, **changed, "updated_at": self._now()}
            db.execute(_UPDATE_ACCOUNT, row)
            return row

    def delete_account(self, account_id: str) -> None:
        with self._transaction() as db:
            if db.execute("DELETE FROM accounts WHERE account_id = ?", (account_id,)).rowcount == 0:
                raise not_found()

    # teams

    @staticmethod
    def _team(db: sqlite3.Connection, team_id: str) -> Json:
        row: Json | None = db.execute(f"{_SELECT_TEAMS} WHERE team_id = ?", (team_id,)).fetchone()
        if row is None:
            raise not_found()
        return row

    @staticmethod
    def _with_members(db: sqlite3.Connection, team: Json) -> Json:
        rows = db.execute(
            "SELECT account_id FROM team_members WHERE team_id = ? ORDER BY account_id",
            (team["team_id"],),
        ).fetchall()
        return {**team, "member_ids": [row["account_id"] for row in rows]}

    @staticmethod
    def _check_team_unique(db: sqlite3.Connection, name: str | None, own_id: str | None) -> None:
        taken = db.execute(
            "SELECT 1 FROM teams WHERE lower(name) = lower(?) AND team_id IS NOT ?",
            (name, own_id),
        ).fetchone()
        if taken is not None:
            raise duplicate("name")

    def list_teams(self, page: int, per_page: int, name: str | None) -> tuple[list[Json], int]:
        where, params = ("lower(name) = lower(?)", (name,)) if name is not None else ("1", ())
        with self._transaction() as db:
            total = db.execute(f"SELECT count(*) AS n FROM teams WHERE {where}", params)
            count: int = total.fetchone()["n"]
            items = db.execute(
                f"{_SELECT_TEAMS} WHERE {where} ORDER BY team_id LIMIT ? OFFSET ?",
                (*params, per_page, (page - 1) * per_page),
            ).fetchall()
        return items, count

    def get_team(self, team_id: str) -> Json:
        with self._transaction() as db:
            return self._with_members(db, self._team(db, team_id))

    def create_team(self, values: Mapping[str, str | None]) -> Json:
        with self._transaction() as db:
            self._check_team_unique(db, values["name"], None)
            now = self._now()
            row = {"team_id": self._next_id(db, "team_", 4), **values}
            row.update(created_at=now, updated_at=now)
            db.execute(
                f"INSERT INTO teams ({', '.join(_TEAM_COLUMNS)}) "
                f"VALUES ({', '.join(':' + c for c in _TEAM_COLUMNS)})",
                row,
            )
            return {**row, "member_ids": []}

    def replace_team(self, team_id: str, values: Mapping[str, str | None]) -> Json:
        with self._transaction() as db:
            current = self._team(db, team_id)
            if any(current[k] != v for k, v in values.items()):
                self._check_team_unique(db, values["name"], team_id)
                current = {**current, **values, "updated_at": self._now()}
                db.execute(
                    f"UPDATE teams SET {', '.join(f'{c} = :{c}' for c in TEAM_FIELDS)}, "
                    "updated_at = :updated_at WHERE team_id = :team_id",
                    current,
                )
            return self._with_members(db, current)

    def delete_team(self, team_id: str) -> None:
        with self._transaction() as db:
            if db.execute("DELETE FROM teams WHERE team_id = ?", (team_id,)).rowcount == 0:
                raise not_found()

    def add_member(self, team_id: str, account_id: str) -> None:
        with self._transaction() as db:
            self._team(db, team_id)
            self._account(db, account_id)
            db.execute(
                "INSERT INTO team_members (team_id, account_id) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (team_id, account_id),
            )

    def remove_member(self, team_id: str, account_id: str) -> None:
        with self._transaction() as db:
            self._team(db, team_id)
            db.execute(
                "DELETE FROM team_members WHERE team_id = ? AND account_id = ?",
                (team_id, account_id),
            )


# -- HTTP ---------------------------------------------------------------------------------------

STORE = web.AppKey("acme_hr_store", Store)
API_KEY_DIGEST = web.AppKey("acme_hr_api_key_digest", bytes)


_HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _json(status: int, body: Json, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def _authorized(request: web.Request) -> bool:
    given = request.headers.get("X-Api-Key")
    # Digests have one length, so compare_digest's time does not depend on the given key.
    return given is not None and hmac.compare_digest(_digest(given), request.app[API_KEY_DIGEST])


@web.middleware
async def _errors_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    under_api = request.path == "/api" or request.path.startswith("/api/")
    try:
        if under_api and not _authorized(request):
            raise ApiError(401, {"error": "unauthorized"})
        return await handler(request)
    except ApiError as exc:
        return _json(exc.status, exc.body)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if under_api and exc.status in (404, 405):
            return _json(404, {"error": "not_found"})
        return _json(exc.status, {"error": _HTTP_ERRORS.get(exc.status, f"http_{exc.status}")})
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _json(500, {"error": "internal"})


async def _read_root(request: web.Request, root: str) -> Json:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise bad_request("the body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get(root), dict):
        raise bad_request(f'the body must be a JSON object with an object under "{root}"')
    value: Json = body[root]
    return value


def _int_param(request: web.Request, name: str, default: int, minimum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not minimum <= int(raw) <= MAX_QUERY_INT:
        raise bad_request(f"{name} must be an integer from {minimum} to {MAX_QUERY_INT}")
    return int(raw)


def _store(request: web.Request) -> Store:
    return request.app[STORE]


def _location(request: web.Request, path: str) -> dict[str, str]:
    return {"Location": str(request.url.with_path(path))}


async def healthz(request: web.Request) -> web.Response:
    return _json(200, {"status": "ok"})


async def list_accounts(request: web.Request) -> web.Response:
    offset = _int_param(request, "offset", 0, 0)
    limit = min(_int_param(request, "limit", 50, 0), MAX_LIMIT)
    filters = {name: request.query[name] for name in _ACCOUNT_FILTERS if name in request.query}
    if "status" in filters and filters["status"] not in STATUSES:
        raise bad_request("status must be enabled or suspended")
    items, total = _store(request).list_accounts(offset, limit, filters)
    return _json(200, {"items": items, "total": total, "offset": offset, "limit": limit})


async def get_account(request: web.Request) -> web.Response:
    account = _store(request).get_account(request.match_info["account_id"])
    return _json(200, {"account": account})


async def create_account(request: web.Request) -> web.Response:
    values = validate_account(await _read_root(request, "account"), partial=False)
    account = _store(request).create_account(values)
    headers = _location(request, f"/api/v1/accounts/{account['account_id']}")
    return _json(201, {"account": account}, headers)


async def update_account(request: web.Request) -> web.Response:
    values = validate_account(await _read_root(request, "account"), partial=True)
    account = _store(request).update_account(request.match_info["account_id"], values)
    return _json(200, {"account": account})


async def delete_account(request: web.Request) -> web.Response:
    _store(request).delete_account(request.match_info["account_id"])
    return web.Response(status=204)


async def list_teams(request: web.Request) -> web.Response:
    page = _int_param(request, "page", 1, 1)
    per_page = min(_int_param(request, "per_page", 25, 1), MAX_PER_PAGE)
    if (page - 1) * per_page > MAX_QUERY_INT:
        raise bad_request("page is past any possible team")
    teams, total = _store(request).list_teams(page, per_page, request.query.get("name"))
    return _json(200, {"teams": teams, "page": page, "per_page": per_page, "total": total})


async def get_team(request: web.Request) -> web.Response:
    return _json(200, {"team": _store(request).get_team(request.match_info["team_id"])})


async def create_team(request: web.Request) -> web.Response:
    team = _store(request).create_team(validate_team(await _read_root(request, "team")))
    return _json(201, {"team": team}, _location(request, f"/api/v1/teams/{team['team_id']}"))


async def replace_team(request: web.Request) -> web.Response:
    values = validate_team(await _read_root(request, "team"))
    return _json(200, {"team": _store(request).replace_team(request.match_info["team_id"], values)})


async def delete_team(request: web.Request) -> web.Response:
    _store(request).delete_team(request.match_info["team_id"])
    return web.Response(status=204)


async def add_member(request: web.Request) -> web.Response:
    _store(request).add_member(request.match_info["team_id"], request.match_info["account_id"])
    return web.Response(status=204)


async def remove_member(request: web.Request) -> web.Response:
    _store(request).remove_member(request.match_info["team_id"], request.match_info["account_id"])
    return web.Response(status=204)


def create_legacy_app(
    db_path: str = ":memory:",
    api_key: str = DEFAULT_API_KEY,
    *,
    clock: Clock = _utc_now,
    faults: Faults | None = None,
) -> web.Application:
    """Acme HR on ``db_path`` (a file, or ``":memory:"`` for one private database per app).

    ``faults``: make calls fail on purpose, in front of everything else (gateway/demo/faults.py).
    """
    if not api_key:
        raise ValueError("api_key must not be empty")
    outer = [faults.middleware] if faults is not None else []
    app = web.Application(middlewares=[*outer, _errors_and_auth])
    store = Store(db_path, clock)
    app[STORE] = store
    app[API_KEY_DIGEST] = _digest(api_key)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store.open()
        try:
            yield
        finally:
            store.close()

    app.cleanup_ctx.append(store_ctx)
    router = app.router
    router.add_get("/healthz", healthz)
    router.add_get("/api/v1/accounts", list_accounts)
    router.add_post("/api/v1/accounts", create_account)
    router.add_get("/api/v1/accounts/{account_id}", get_account)
    router.add_patch("/api/v1/accounts/{account_id}", update_account)
    router.add_delete("/api/v1/accounts/{account_id}", delete_account)
    router.add_get("/api/v1/teams", list_teams)
    router.add_post("/api/v1/teams", create_team)
    router.add_get("/api/v1/teams/{team_id}", get_team)
    router.add_put("/api/v1/teams/{team_id}", replace_team)
    router.add_delete("/api/v1/teams/{team_id}", delete_team)
    router.add_put("/api/v1/teams/{team_id}/members/{account_id}", add_member)
    router.add_delete("/api/v1/teams/{team_id}/members/{account_id}", remove_member)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.demo.legacy_app", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--db", default=":memory:", help="SQLite file, or :memory: (the default)")
    parser.add_argument("--api-key", help="default: $ACME_HR_API_KEY, else " + DEFAULT_API_KEY)
    args = parser.parse_args(argv)
    api_key = args.api_key or os.environ.get("ACME_HR_API_KEY") or DEFAULT_API_KEY
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    web.run_app(
        create_legacy_app(args.db, api_key), host=args.host, port=args.port, access_log=None
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
