"""`resywatch auth`: log in to Resy, check the token, log out."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.options import AccountOption, JsonFlag
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
    account: AccountOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Log in with email and password and keep the token, and the refresh cookie Resy sets
    beside it, in the config file (mode 0600) as the account's (`default`, or --account NAME:
    one token per account). The `tokens` job of run-forever/cron refreshes it before it lapses.

    The config file (and its directory) is created when missing. The password is asked for
    on the terminal, or read from stdin with --password-stdin; it is never a flag. Without
    a terminal, give --email too. Example: pass show resy | resywatch auth login --email
    me@x.com --password-stdin
    """
    run = use(ctx, json_output=json_output)
    from resywatch.accounts import account_name

    name = account_name(account or run.settings().account)  # a new account is no error
    if email is None:
        if not sys.stdin.isatty():  # a prompt would read the piped password as the email
            also = "" if password_stdin else " and --password-stdin"
            raise InvalidInput(f"no terminal to ask for the email: use --email{also}")
        email = typer.prompt("Email", err=True)  # stdout is for data
    password = _read_password(password_stdin)
    run.add_secret(password)  # masked in every message, traceback and envelope
    from datetime import datetime

    from resywatch.services import auth

    store = run.tokens()
    result = run.with_resy(
        lambda resy: auth.login(
            resy=resy, email=email, password=password, store=store, account=name
        ),
        auth_token=None,
    )
    if run.output.json_mode:
        run.output.json(result)
        return
    expiry = f", expires {result.expires_at:%Y-%m-%d}" if result.expires_at else ""
    who = result.account.name or result.account.email
    run.output.note(
        f"logged in as {who} (account {result.account_name}); token saved to "
        f"{result.config_file}{expiry}"
    )
    if not result.refresh_kept:
        run.output.warn("Resy set no refresh cookie: log in again before the token lapses")
    if result.expires_at and result.expires_at - datetime.now(result.expires_at.tzinfo) < (
        auth.EXPIRY_WARNING
    ):
        run.output.warn("the token expires within 7 days")


@app.command()
def status(
    ctx: typer.Context, account: AccountOption = None, json_output: JsonFlag = False
) -> None:
    """Show who the account's token belongs to, when it expires, and whether Resy accepts
    it; then every account with its token's expiry (`accounts` in --json).

    Exit 0 when Resy accepts the token, 1 when it does not or there is none, 2 for an
    unknown account.
    """
    run = use(ctx, json_output=json_output)
    from datetime import UTC, datetime

    from resywatch.services import auth

    name = run.choose_account(account)
    tokens = run.tokens().all()
    result = run.with_resy(
        lambda resy: auth.status(resy=resy, now=datetime.now(UTC), tokens=tokens, account=name)
    )
    if result.expiring_soon:
        flag = "" if name == "default" else f" --account {name}"
        run.output.warn(
            f"the Resy token expires in {result.expires_in_days:.1f} days: "
            f"run `resywatch auth login{flag}`"
        )
    if run.output.json_mode:
        run.output.json(result)
        return
    run.output.fields(
        [
            ("account", result.account_name),
            ("user", result.account.name),
            ("email", result.account.email),
            ("payment method", result.account.payment_method_id),
            ("expires", result.expires_at),
            ("accepted by Resy", result.accepted),
        ]
    )
    if len(result.accounts) > 1:
        run.output.table(
            ["account", "expires", "days left", "refreshable"],
            [(a.name, a.expires_at, a.expires_in_days, a.refreshable) for a in result.accounts],
            title="accounts",
        )


@app.command()
def logout(
    ctx: typer.Context, account: AccountOption = None, json_output: JsonFlag = False
) -> None:
    """Remove the account's saved token and refresh cookie from the config file."""
    run = use(ctx, json_output=json_output)
    from resywatch.accounts import DEFAULT_ACCOUNT, account_name
    from resywatch.services import auth

    name = account_name(account or run.settings().account)
    store = run.tokens()
    removed = auth.logout(store=store, account=name)
    config_file = store.path
    still_set = name == DEFAULT_ACCOUNT and store.environment_token()
    if run.output.json_mode:
        run.output.json(
            {
                "account": name,
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
