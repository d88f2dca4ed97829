"""`resywatch sandbox`: the fake Resy that tests, benchmarks and the demo talk to."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.options import JsonFlag
from resywatch.errors import ResywatchError

if TYPE_CHECKING:
    from resywatch.config import Settings

app = typer.Typer(
    help="A faithful fake Resy, for trying things with no account.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you mean it).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port).")] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of the generated world.")] = 42,
    speed: Annotated[
        float, typer.Option(min=0, help="Clock speed: 60 makes a real second a sandbox minute.")
    ] = 1.0,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="API key to accept [default: a configured RESYWATCH_RESY_API_KEY, else the "
            "demo key]."
        ),
    ] = None,
    auth_token: Annotated[
        str | None,
        typer.Option(
            help="Auth token to accept [default: RESYWATCH_RESY_AUTH_TOKEN, else the demo token]."
        ),
    ] = None,
    control: Annotated[
        bool,
        typer.Option(help="Enable the /__sandbox/ control routes (clock, faults, counters)."),
    ] = False,
    refuse_refresh: Annotated[
        bool,
        typer.Option(
            "--refuse-refresh",
            help="Refuse every refresh cookie at /3/auth/refresh (419): tokens then lapse.",
        ),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Serve the sandbox until interrupted.

    It accepts the same API key and token as the client settings, so pointing
    RESYWATCH_RESY_BASE_URL at it is all a command needs. With --json, one document on
    stdout: where it listens (port 0: the port it got), or the error. Exit codes: 0
    stopped, 1 cannot listen (port in use), 2 bad option. Example:
    resywatch sandbox serve --port 8765 --speed 60 --control
    """
    run = use(ctx, json_output=json_output)
    from resywatch.sandbox.config import DEMO_API_KEY, SandboxConfig
    from resywatch.sandbox.server import serve as serve_sandbox
    from resywatch.sandbox.tokens import DEMO_AUTH_TOKEN

    key, token = _credentials(run.settings(), api_key, auth_token)
    config = SandboxConfig(
        seed=seed,
        speed=speed,
        api_key=key or DEMO_API_KEY,
        auth_token=token or DEMO_AUTH_TOKEN,
        control_enabled=control,
        refuse_refresh=refuse_refresh,
    )
    if not _is_loopback(host):
        run.output.warn(f"binding to {host}: the sandbox is reachable beyond this machine")

    def listening(url: str) -> None:
        # Only once bound: a port in use leaves stdout with the error envelope alone.
        if run.output.json_mode:
            run.output.json({"url": url, "seed": seed, "speed": speed, "control": control})
            run.output.stdout.file.flush()
        run.output.note(
            f"sandbox listening on {url} (seed {seed}, speed {speed:g}x); Ctrl-C stops it"
        )
        if key is None:
            run.output.note(
                f"  export RESYWATCH_RESY_BASE_URL={url} RESYWATCH_RESY_API_KEY={DEMO_API_KEY}"
            )
        if token is None:
            run.output.note(f"  export RESYWATCH_RESY_AUTH_TOKEN={DEMO_AUTH_TOKEN}")

    try:
        serve_sandbox(config, host=host, port=port, on_listening=listening)
    except OSError as exc:
        raise ResywatchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _credentials(
    settings: Settings, api_key: str | None, auth_token: str | None
) -> tuple[str | None, str | None]:
    """The key and token the sandbox accepts: the options, else the configured ones."""
    from resywatch.config import DEFAULT_RESY_API_KEY

    configured = settings.resy_api_key.get_secret_value() if settings.resy_api_key else None
    # Resy's public key is the client's default, not a choice: the sandbox keeps its own key
    # unless one was configured, so a client that sends none of them is caught.
    key = api_key or (configured if configured != DEFAULT_RESY_API_KEY else None)
    token = auth_token or (
        settings.resy_auth_token.get_secret_value() if settings.resy_auth_token else None
    )
    return key, token


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
