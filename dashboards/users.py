"""Account administration: ``python -m dashboards.users create-analyst --username U``.

The password comes from an interactive prompt (asked twice) or, for scripts, from the
first line of standard input with ``--password-stdin``. There is no default password.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from dashboards.auth import AccountError, Role, create_user
from fma_platform.mongo import platform_db


def read_password(*, from_stdin: bool) -> str:
    """The new password, from stdin's first line or a confirmed prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise AccountError("the two passwords differ")
    return first


def create_analyst(username: str, *, password_stdin: bool) -> str:
    """Create the analyst account; return a confirmation line."""
    user = create_user(platform_db(), username, read_password(from_stdin=password_stdin), role=Role.ANALYST)
    return f"created analyst {user.username!r} (user_id {user.user_id})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboards.users", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    analyst = commands.add_parser("create-analyst", help="create an analyst account")
    analyst.add_argument("--username", required=True)
    analyst.add_argument("--password-stdin", action="store_true",
                         help="read the password from the first line of standard input")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(create_analyst(args.username, password_stdin=args.password_stdin))
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
