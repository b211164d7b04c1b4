"""The ``scim-gateway`` command: serve, check, demo and token."""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import secrets
import sys

from aiohttp import web

from gateway.app import build_runtimes, create_app
from gateway.config import ConfigError, Settings, load_settings, parse_settings

DEMO_TOKEN_ENV = "SCIM_GATEWAY_DEMO_TOKEN"


def _load(path: str) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        app = create_app(settings, source=args.config)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    web.run_app(app, host=host, port=port, access_log=None, print=None)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    try:
        build_runtimes(settings, source=args.config)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    print(f"{args.config}: OK ({len(settings.apps)} app(s): {', '.join(settings.apps)})")
    return 0


def demo_settings(token: str, port: int) -> Settings:
    digest = hashlib.sha256(token.encode()).hexdigest()
    return parse_settings(
        {
            "server": {"host": "127.0.0.1", "port": port},
            "apps": {
                "demo": {
                    "adapter": "memory",
                    "auth": {"tokens": [{"name": "demo-idp", "sha256": digest}]},
                }
            },
        },
        source="<demo>",
    )


def cmd_demo(args: argparse.Namespace) -> int:
    token = os.environ.get(DEMO_TOKEN_ENV) or secrets.token_urlsafe(24)
    settings = demo_settings(token, args.port)
    base = f"http://127.0.0.1:{args.port}/apps/demo/scim/v2"
    auth = f"-H 'Authorization: Bearer {token}'"
    ctype = "-H 'Content-Type: application/scim+json'"
    user = (
        '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen",'
        '"name":{"givenName":"Barbara","familyName":"Jensen"},'
        '"emails":[{"value":"bjensen@example.com","type":"work","primary":true}]}'
    )
    deactivate = (
        '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
        '"Operations":[{"op":"Replace","path":"active","value":"False"}]}'
    )
    print(
        f"""scim-gateway demo: app 'demo' on the in-memory adapter at {base}
Bearer token for this run: {token}

Try:
  curl -s {auth} {base}/ServiceProviderConfig
  curl -s {auth} {ctype} -d '{user}' {base}/Users
  curl -s {auth} '{base}/Users?filter=userName%20eq%20%22bjensen%22'
  curl -s {auth} {ctype} -X PATCH -d '{deactivate}' {base}/Users/<id>

Ctrl-C stops it.""",
        flush=True,
    )
    logging.basicConfig(level="INFO")
    web.run_app(create_app(settings, source="<demo>"), host="127.0.0.1", port=args.port, print=None)
    return 0


def cmd_token_new(args: argparse.Namespace) -> int:
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    print(f"token (shown once, give it to the IdP): {token}")
    print("config lines for this token, under apps.<app>.auth.tokens:")
    print(f"  - name: {args.name}\n    sha256: {digest}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="scim-gateway", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", "-c", default=os.environ.get("SCIM_GATEWAY_CONFIG", "gateway.yaml")
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check", help="validate a config file and its adapters' settings")
    check.add_argument(
        "--config", "-c", default=os.environ.get("SCIM_GATEWAY_CONFIG", "gateway.yaml")
    )
    check.set_defaults(func=cmd_check)

    demo = sub.add_parser("demo", help="run a gateway on the in-memory adapter, with curl examples")
    demo.add_argument("--port", type=int, default=8080)
    demo.set_defaults(func=cmd_demo)

    token = sub.add_parser("token", help="inbound token tools")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    new = token_sub.add_parser("new", help="make a strong token and print its config digest")
    new.add_argument("--name", required=True, help="the credential's name, shown in the audit")
    new.set_defaults(func=cmd_token_new)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
