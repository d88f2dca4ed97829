"""`resywatch auth`: log in to Resy, check the token, log out."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.options import JsonFlag
from resywatch.errors import InvalidInput

app = typer.Typer(help="Resy credentials.", no_args_is_help=True, rich_markup_mode=None)


@app.command()
def login(
    ctx: typer.Context,
    email: Annotated[
        str | None, typer.Option("--email", help="Your Resy email (asked for when left out).")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from standard input."),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Log in with email and password and keep the token in the config file (mode 0600).

    The config file (and its directory) is created when missing. The password is asked for
    on the terminal, or read from stdin with --password-stdin; it is never a flag. Without
    a terminal, give --email too. Example: pass show resy | resywatch auth login --email
    me@x.com --password-stdin
    """
    run = use(ctx, json_output=json_output)
    if email is None:
        if not sys.stdin.isatty():  # a prompt would read the piped password as the email
            also = "" if password_stdin else " and --password-stdin"
            raise InvalidInput(f"no terminal to ask for the email: use --email{also}")
        email = typer.prompt("Email", err=True)  # stdout is for data
    password = _read_password(password_stdin)
    run.add_secret(password)  # masked in every message, traceback and envelope
    from datetime import datetime

    from resywatch.services import auth

    result = run.with_resy(
        lambda resy: auth.login(
            resy=resy, email=email, password=password, config_file=run.config_file()
        )
    )
    if run.output.json_mode:
        run.output.json(result)
        return
    expiry = f", expires {result.expires_at:%Y-%m-%d}" if result.expires_at else ""
    who = result.account.name or result.account.email
    run.output.note(f"logged in as {who}; token saved to {result.config_file}{expiry}")
    if result.expires_at and result.expires_at - datetime.now(result.expires_at.tzinfo) < (
        auth.EXPIRY_WARNING
    ):
        run.output.warn("the token expires within 7 days")


@app.command()
def status(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Show who is logged in, when the token expires, and whether Resy accepts it.

    Exit 0 when Resy accepts the token, 1 when it does not or there is none.
    """
    run = use(ctx, json_output=json_output)
    from datetime import UTC, datetime

    from resywatch.services import auth

    result = run.with_resy(lambda resy: auth.status(resy=resy, now=datetime.now(UTC)))
    if result.expiring_soon:
        run.output.warn(
            f"the Resy token expires in {result.expires_in_days:.1f} days: "
            "run `resywatch auth login`"
        )
    if run.output.json_mode:
        run.output.json(result)
        return
    run.output.fields(
        [
            ("user", result.account.name),
            ("email", result.account.email),
            ("payment method", result.account.payment_method_id),
            ("expires", result.expires_at),
            ("accepted by Resy", result.accepted),
        ]
    )


@app.command()
def logout(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Remove the saved token from the config file."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import auth

    config_file = run.config_file()
    removed = auth.logout(config_file=config_file)
    from resywatch.config import env_var

    still_set = bool(os.environ.get(env_var("resy_auth_token")))
    if run.output.json_mode:
        run.output.json(
            {
                "removed": removed,
                "config_file": config_file,
                "token_still_in_environment": still_set,
            }
        )
    else:
        run.output.note(
            f"removed the token from {config_file}" if removed else "no saved token to remove"
        )
    if still_set:
        run.output.warn("RESYWATCH_RESY_AUTH_TOKEN still provides a token")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, err=True)
    else:
        raise InvalidInput("no terminal to ask for the password: use --password-stdin")
    if not password:
        raise InvalidInput("the password is empty")
    return password
