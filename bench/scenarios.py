"""The five measured requests, described once and rendered for wrk (Lua) and the Python loader.

A request is a method, a path and an optional body. Paths and bodies may hold
placeholders that change per request:

* ``{prefix}`` a string unique to one load-generator run (so POSTs of a later
  run never collide with an earlier one's userNames),
* ``{tid}`` the load-generator thread (wrk) or worker (Python loader) number,
* ``{n}`` a per-thread request counter, starting at 1,
* ``{id}`` one of the seeded user ids, chosen round-robin from ``{tid}`` and ``{n}``.

A request without placeholders is *static*: wrk builds it once and replays it,
which keeps the load generator as cheap as possible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

SCIM_JSON = "application/scim+json"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

_PLACEHOLDER = re.compile(r"\{(prefix|tid|n|id)\}")


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str  #: short name, used on the command line (``--scenarios get,post``)
    label: str  #: what the table shows
    method: str
    path: str  #: below the SCIM base, e.g. ``/Users/{id}``; may hold placeholders
    body: str | None = None  #: may hold placeholders
    status: int = 200  #: the status every response must have

    @property
    def static(self) -> bool:
        return not _PLACEHOLDER.search(self.path + (self.body or ""))


def user_body(user_name: str, given: str = "Bench", family: str = "User") -> str:
    """A realistic create body (the shape Entra and Okta send), as compact JSON text."""
    return (
        f'{{"schemas":["{USER_URN}"],"userName":"{user_name}","active":true,'
        f'"displayName":"{given} {family}",'
        f'"name":{{"givenName":"{given}","familyName":"{family}"}},'
        f'"emails":[{{"value":"{user_name}@example.com","type":"work","primary":true}}]}}'
    )


def patch_body(display_name: str) -> str:
    return (
        f'{{"schemas":["{PATCH_URN}"],'
        f'"Operations":[{{"op":"replace","path":"displayName","value":"{display_name}"}}]}}'
    )


def seed_user_name(index: int) -> str:
    return f"seed{index:06d}"


def build_scenarios(first_id: str, filter_user_name: str) -> list[Scenario]:
    """The scenarios in the order they run.

    Order matters for the memory adapter, whose filter and list cost grows
    with the number of users: the reads run first, on the seeded store, and
    POST (which grows the store) runs after them. PATCH targets seeded users,
    rotating over them, and changes displayName to a new value every time
    (an unchanged value would skip the adapter write).
    """
    filter_expr = f'userName eq "{filter_user_name}"'
    return [
        Scenario("get", "GET /Users/{id}", "GET", f"/Users/{first_id}"),
        Scenario(
            "filter",
            "GET /Users?filter=userName eq",
            "GET",
            "/Users?filter=" + quote(filter_expr, safe=""),
        ),
        Scenario("list", "GET /Users?count=100", "GET", "/Users?count=100"),
        Scenario(
            "post",
            "POST /Users",
            "POST",
            "/Users",
            user_body("bench-{prefix}-{tid}-{n}"),
            status=201,
        ),
        Scenario(
            "patch",
            "PATCH /Users/{id} displayName",
            "PATCH",
            "/Users/{id}",
            patch_body("Bench {prefix} {tid} {n}"),
        ),
    ]


SCENARIO_KEYS = ("get", "filter", "list", "post", "patch")


def render(template: str, values: Mapping[str, str | int]) -> str:
    """Fill the placeholders of ``template`` (the Python loader's side)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def rendered(scenario: Scenario, values: Mapping[str, str | int]) -> tuple[str, bytes | None]:
    """One request of ``scenario`` (Python side): its path below the SCIM base, its body."""
    body = None if scenario.body is None else render(scenario.body, values).encode()
    return render(scenario.path, values), body


def pick_id(ids: Sequence[str], tid: int, n: int) -> str:
    """The same round-robin choice the Lua script makes (1-based ``tid`` and ``n``)."""
    return ids[(tid * 7919 + n) % len(ids)]


# -- Lua ----------------------------------------------------------------------------------


def lua_string(text: str) -> str:
    """A Lua string literal holding ``text``."""
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def lua_concat(template: str) -> str:
    """A Lua expression building ``template`` from the per-request variables."""
    parts: list[str] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > pos:
            parts.append(lua_string(template[pos : match.start()]))
        name = match.group(1)
        parts.append({"prefix": "prefix", "tid": "tid", "n": "n", "id": "pick_id()"}[name])
        pos = match.end()
    if pos < len(template) or not parts:
        parts.append(lua_string(template[pos:]))
    return " .. ".join(parts)


_LUA_COMMON = """
-- generated by bench/scenarios.py for one wrk run
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
  thread:set("unexpected", 0)
  thread:set("bad_status", 0)
end

function init(args)
  n = 0
end

function response(status, headers, body)
  if status ~= EXPECTED then
    unexpected = unexpected + 1
    if bad_status == 0 then
      bad_status = status
    end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("unexpected")
    local s = t:get("bad_status")
    if first == 0 and s ~= 0 then
      first = s
    end
  end
  local e = summary.errors
  local out = {}
  for _, p in ipairs(PERCENTILES) do
    table.insert(out, string.format("[%s,%d]", p, latency:percentile(p)))
  end
  io.write(string.format(
    '\\n@@BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"unexpected":%d,"bad_status":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"min_us":%d,"max_us":%d,"mean_us":%.1f,"percentiles":[%s]}\\n',
    summary.requests, summary.duration, summary.bytes, bad, first,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, table.concat(out, ",")))
end
"""


def lua_script(
    scenario: Scenario,
    *,
    base_path: str,
    headers: Mapping[str, str],
    ids: Sequence[str],
    prefix: str,
    percentiles: Sequence[float],
) -> str:
    """The wrk script for one run of ``scenario``.

    ``response`` counts every status other than the scenario's expected one
    (wrk itself only counts statuses above 399); ``done`` prints one
    ``@@BENCH {json}`` line with the counts and a grid of latency percentiles,
    which :mod:`bench.stats` merges across alternating runs.
    """
    lines = [
        f"EXPECTED = {scenario.status}",
        "PERCENTILES = {" + ", ".join(repr(float(p)) for p in percentiles) + "}",
        f"prefix = {lua_string(prefix)}",
        "local hdrs = {"
        + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items())
        + "}",
    ]
    if scenario.body is not None:
        lines.append(f'hdrs["Content-Type"] = {lua_string(SCIM_JSON)}')
    if scenario.static:
        lines += [
            f"wrk.method = {lua_string(scenario.method)}",
            f"wrk.path = {lua_string(base_path + scenario.path)}",
            "for k, v in pairs(hdrs) do wrk.headers[k] = v end",
        ]
        if scenario.body is not None:
            lines.append(f"wrk.body = {lua_string(scenario.body)}")
    else:
        lines += [
            "local ids = {" + ", ".join(lua_string(i) for i in ids) + "}",
            "function pick_id() return ids[(tid * 7919 + n) % #ids + 1] end",
            f"local method = {lua_string(scenario.method)}",
            "function request()",
            "  n = n + 1",
            f"  local path = {lua_concat(base_path + scenario.path)}",
        ]
        body = "nil" if scenario.body is None else lua_concat(scenario.body)
        lines += [
            f"  return wrk.format(method, path, hdrs, {body})",
            "end",
        ]
    return "\n".join(lines) + "\n" + _LUA_COMMON
