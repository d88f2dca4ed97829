"""Settings: one typed object, built once per invocation by `load_settings`.

Precedence, lowest first: field defaults < the TOML config file < `RESYWATCH_*` environment
variables < command-line flags. The file is `--config PATH`, else `$RESYWATCH_CONFIG`, else
`config.toml` in the platform config dir (`~/.config/resywatch/` on Linux); a file that does
not exist yet is empty configuration. A TOML key
`[section] key` sets the field `section_key`, except `[general]`, whose keys are fields
themselves (`[general] timezone` -> `timezone`). A value that does not parse is a
`ConfigError` (exit 2) naming the variable, flag or file and key it came from.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from contextlib import suppress
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from resywatch.errors import ConfigError, ConfigNotWritable
from resywatch.redact import notify_url_secrets, redact_url, split_userinfo, url_secrets

ENV_PREFIX = "RESYWATCH_"
APP_NAME = "resywatch"
DEFAULT_RESY_BASE_URL = "https://api.resy.com"
# The public API key of resy.com's web app: the same for every visitor, tied to no account,
# unchanged for 5+ years (Cierge's DefaultApiKey, resy/token.go). Overridable, in case Resy
# ever rotates it: `[resy] api_key` or RESYWATCH_RESY_API_KEY.
DEFAULT_RESY_API_KEY = "VbWk7s3L4KiK5fzlO7JD3Q5EYolJI7n5"
# Manhattan, Battery Park to Inwood (the seed's box): south, west, north, east.
MANHATTAN = (40.691, -74.030, 40.882, -73.910)

BoundingBox = tuple[float, float, float, float]

#: The account resywatch always had: `[resy] auth_token` / RESYWATCH_RESY_AUTH_TOKEN.
DEFAULT_ACCOUNT = "default"
#: Account names are TOML bare keys (`[accounts.NAME]`), short and unambiguous.
ACCOUNT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

_SUPPORTED_URL = re.compile(r"^(sqlite(\+pysqlite)?|postgresql(\+psycopg)?|postgres)://")


def _split_list(value: Any) -> Any:
    """Env vars and flags give lists as "a,b"; TOML may give a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _split_urls(value: Any) -> Any:
    # Apprise URLs may hold commas in their query, so split on whitespace, and on a comma
    # only where a new scheme:// follows it.
    if isinstance(value, str):
        return [u for u in re.split(r"\s+|,(?=\s*[a-zA-Z][\w+.-]*://)", value) if u]
    return value


def _parse_hhmm(value: Any) -> Any:
    if isinstance(value, str):
        if not re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
            raise ValueError(f"{value!r} is not a time of day as HH:MM")
        hours, minutes = (int(part) for part in value.strip().split(":"))
        return time(hours, minutes)
    return value


def _parse_bounding_box(value: Any) -> Any:
    box = _split_list(value)
    if not isinstance(box, list | tuple) or len(box) != 4:
        raise ValueError("expected four numbers: south,west,north,east")
    return tuple(box)


def _check_bounding_box(
    box: tuple[float, float, float, float],
) -> tuple[float, float, float, float]:
    south, west, north, east = box
    if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
        raise ValueError("expected south,west,north,east with south < north and west < east")
    return box


def _check_window(window: str | None) -> str | None:
    if window is None:
        return None
    start, _, end = (part.strip() for part in window.partition("-"))
    first, last = _parse_hhmm(start), _parse_hhmm(end)
    if first >= last:
        raise ValueError(f"{window!r} is not a time range HH:MM-HH:MM that ends after it starts")
    return f"{first:%H:%M}-{last:%H:%M}"  # normalised, so HH:MM strings compare as times


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name)") from None
    return name


def check_account_name(name: str) -> str:
    """An account name as given (lower-case letters, digits, `-` and `_`, up to 32)."""
    if not ACCOUNT_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not an account name: use up to 32 lower-case letters, digits, - or _"
        )
    return name


class AccountSecrets(BaseModel):
    """One named account's credentials in the config file (`[accounts.NAME]`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth_token: SecretStr | None = None
    refresh_token: SecretStr | None = None  # Resy's `production_refresh_token` cookie


def _check_accounts(accounts: dict[str, AccountSecrets]) -> dict[str, AccountSecrets]:
    for name in accounts:
        check_account_name(name)
        if name == DEFAULT_ACCOUNT:
            raise ValueError("the default account is [resy] auth_token, not [accounts.default]")
    return accounts


def _check_database_url(url: str) -> str:
    if not _SUPPORTED_URL.match(url):
        raise ValueError(
            f"{redact_url(url)!r} is not a supported database URL: use sqlite:///PATH or "
            "postgresql+psycopg://HOST:PORT/DATABASE (user and password before the host)"
        )
    # An "@" in the password ends the userinfo for SQLAlchemy, which would take the rest of
    # the password for the host (and the driver would print it): the userinfo ends at the
    # last "@" before the host, so encode the ones inside it.
    head, userinfo, rest = split_userinfo(url)
    if userinfo is not None and "@" in userinfo:
        url = f"{head}{userinfo.replace('@', '%40')}@{rest}"
    # Parsed here, so that a malformed part ("host:abc") is this setting's error (exit 2),
    # not a ValueError when the engine is built. Loaded only when a URL is given.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        port = make_url(url).port
    except ArgumentError:
        raise ValueError(f"{redact_url(url)!r} is not a valid database URL") from None
    except ValueError:  # what make_url raises for a port that is not a number
        raise ValueError(f"{redact_url(url)!r} has a port that is not a number") from None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{redact_url(url)!r} has port {port}: ports are 1 to 65535")
    # psycopg 3 is the only PostgreSQL driver we ship: route plain postgres URLs to it.
    return re.sub(r"^(postgresql|postgres)://", "postgresql+psycopg://", url)


AnchorTimes = Annotated[list[Annotated[time, BeforeValidator(_parse_hhmm)]], Field(min_length=1)]
PartySizes = Annotated[list[Annotated[int, Field(ge=1, le=20)]], Field(min_length=1)]


class Settings(BaseModel):
    """Every setting resywatch reads; the names are part of the contract (ARCHITECTURE §6)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # URLs may hold passwords and tokens: kept out of repr(), like the SecretStr fields.
    database_url: Annotated[str, AfterValidator(_check_database_url)] | None = Field(
        default=None, repr=False
    )
    resy_base_url: Annotated[str, Field(pattern=r"^https?://\S+$")] = DEFAULT_RESY_BASE_URL
    resy_api_key: SecretStr | None = SecretStr(DEFAULT_RESY_API_KEY)
    resy_auth_token: SecretStr | None = None  # the `default` account's token
    resy_refresh_token: SecretStr | None = None  # ... and its refresh cookie
    # Accounts beyond `default`, from the config file's `[accounts.NAME]` tables (`auth
    # login --account NAME` writes them), and the one commands act for unless told otherwise.
    accounts: Annotated[dict[str, AccountSecrets], AfterValidator(_check_accounts)] = Field(
        default_factory=dict, repr=False
    )
    account: Annotated[str, AfterValidator(check_account_name)] = DEFAULT_ACCOUNT
    resy_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0  # deadline per attempt
    # Requests a second to the host, every caller and worker together. 10 is the smallest
    # whole rate at which a default cycle (28 buckets x 2 party sizes x 3 pages of a 290-venue
    # Manhattan, the hot buckets' extra scans and a release watch: 222 requests) takes at most
    # 80 % of the 30 s interval (tests/discovery_load.py); at 5 a pass overran it and
    # every bucket was scanned a cycle late. For scale (RESY_API.md section 7): paystub-service
    # re-polls the same 28 buckets every 30 s, snipers poll at 4-20 a second.
    resy_max_rps: Annotated[float, Field(gt=0, le=10_000)] = 10.0
    resy_max_retries: Annotated[int, Field(ge=0, le=10)] = 3  # for idempotent reads
    resy_burst: Annotated[int, Field(ge=1, le=1000)] = 5  # requests at once above max_rps
    # The snipe lane: every snipe's requests together, inside their release windows (when one
    # is open, the other callers of the host wait). 70 keeps 4 snipes at the default interval
    # (15 finds a second each around the instant, and a book request) from ever waiting.
    resy_snipe_max_rps: Annotated[float, Field(gt=0, le=10_000)] = 70.0
    # The circuit breaker: this many transient failures in a row (5xx, timeouts, refused
    # connections, 429, firewall blocks) leave Resy alone for cooldown_s, then one trial call.
    resy_breaker_failures: Annotated[int, Field(ge=1, le=1000)] = 5
    resy_breaker_cooldown_s: Annotated[float, Field(ge=1, le=21_600)] = 30.0
    discovery_days: Annotated[int, Field(ge=1, le=30)] = 14
    discovery_time_slots: Annotated[AnchorTimes, BeforeValidator(_split_list)] = Field(
        default_factory=lambda: [time(15, 0), time(19, 0)]
    )
    discovery_window_hours: Annotated[int, Field(ge=0, le=6)] = 2
    discovery_party_sizes: Annotated[PartySizes, BeforeValidator(_split_list)] = Field(
        default_factory=lambda: [2, 4]
    )
    discovery_bounding_box: Annotated[
        BoundingBox,
        BeforeValidator(_parse_bounding_box),
        AfterValidator(_check_bounding_box),
    ] = MANHATTAN
    discovery_concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    discovery_interval_s: Annotated[float, Field(ge=0.2, le=86_400)] = 30
    discovery_page_size: Annotated[int, Field(ge=1, le=100)] = 100  # venues per search page
    # Where drops happen, look more often: a bucket of the next hot_days days in which a drop
    # opened within hot_hours is due every interval_s / hot_factor (1: every bucket alike).
    discovery_hot_factor: Annotated[int, Field(ge=1, le=10)] = 3
    discovery_hot_hours: Annotated[float, Field(gt=0, le=168)] = 6.0
    discovery_hot_days: Annotated[int, Field(ge=0, le=30)] = 2
    # Release-aware discovery: a venue whose release habit (`discover patterns`) is this
    # sure is looked at around its predicted instant (the releases job); above 1: never.
    discovery_release_confidence: Annotated[float, Field(ge=0, le=1.01)] = 0.6
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "America/New_York"
    # How often each scheduled job runs (discovery's is discovery_interval_s), and how long
    # a job's lease lives without renewal before another pass may take the job over.
    jobs_watches_interval_s: Annotated[float, Field(ge=0.2, le=86_400)] = 60
    jobs_notify_interval_s: Annotated[float, Field(ge=0.2, le=86_400)] = 60
    jobs_delivery_interval_s: Annotated[float, Field(ge=0.2, le=86_400)] = 10
    jobs_snipes_interval_s: Annotated[float, Field(ge=0.2, le=3600)] = 5
    jobs_retention_interval_s: Annotated[int, Field(ge=60, le=7 * 86_400)] = 86_400
    jobs_tokens_interval_s: Annotated[float, Field(ge=0.2, le=86_400)] = 3600
    jobs_releases_interval_s: Annotated[float, Field(ge=0.2, le=3600)] = 60
    # Tokens that lapse within this many days are refreshed (with the refresh cookie); a
    # refresh refused this close to the lapse is told to the user at once.
    auth_refresh_margin_days: Annotated[float, Field(gt=0, le=44)] = 7.0
    jobs_lease_ttl_s: Annotated[int, Field(ge=5, le=3600)] = 30
    # What retention keeps, in days.
    retention_drop_events_days: Annotated[int, Field(ge=1, le=3650)] = 30
    retention_notifications_days: Annotated[int, Field(ge=1, le=3650)] = 30
    retention_api_calls_days: Annotated[int, Field(ge=1, le=3650)] = 7
    retention_job_runs_days: Annotated[int, Field(ge=1, le=3650)] = 7
    # Health thresholds: a job is critical when its last pass is older than this many of its
    # intervals; a bucket not scanned successfully for warn_s is WARN, for crit_s CRIT.
    health_job_crit_intervals: Annotated[float, Field(ge=1, le=100)] = 3.0
    health_bucket_warn_s: Annotated[int, Field(ge=10)] = 600
    health_bucket_crit_s: Annotated[int, Field(ge=10)] = 4 * 3600
    health_feed_warn_s: Annotated[int, Field(ge=10)] = 600
    health_backlog_warn_s: Annotated[int, Field(ge=10)] = 300
    notify_urls: Annotated[list[str], BeforeValidator(_split_urls)] = Field(
        default_factory=list, repr=False
    )
    # Which drops become notifications (watches, notify requests and bookings always do).
    notify_drops: Literal["all", "hotspots", "none"] = "all"
    notify_drop_venues: Annotated[list[str], BeforeValidator(_split_list)] = Field(
        default_factory=list  # names (or parts of names); empty: every venue
    )
    notify_drop_party_sizes: Annotated[list[int], BeforeValidator(_split_list)] = Field(
        default_factory=list  # empty: any party size
    )
    notify_drop_window: Annotated[str | None, AfterValidator(_check_window)] = None  # 18:00-21:00
    # Outbox delivery: tries per notification, the retry delay that doubles from base up to
    # max (jittered), and the deadline of one send to one channel.
    notify_max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    notify_retry_base_s: Annotated[float, Field(gt=0, le=3600)] = 15.0
    notify_retry_max_s: Annotated[float, Field(gt=0, le=86_400)] = 900.0
    notify_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    # Booking: fee ceilings a quote must stay under (quotes above them are refused), and how
    # a snipe runs: it wakes prepare_s before the release instant (checks, predicted tokens, a
    # warm connection), polls from lead_s before it every poll_interval_s, waits up to late_s
    # past it for a late drop, then keeps trying deadline_s after the drop is seen, within
    # request_budget requests in all.
    book_max_total: Annotated[float, Field(ge=0)] = 0.0
    book_max_cancel_fee: Annotated[float, Field(ge=0)] = 50.0
    book_prepare_s: Annotated[float, Field(ge=1, le=600)] = 30.0
    book_lead_s: Annotated[float, Field(ge=0, le=300)] = 0.1
    book_poll_interval_s: Annotated[float, Field(ge=0.01, le=60)] = 0.2
    book_late_s: Annotated[float, Field(ge=0, le=3600)] = 120.0
    book_deadline_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    book_request_budget: Annotated[int, Field(ge=10, le=100_000)] = 900
    # Book requests on predicted tokens before the drop is seen: how Resy answers them is
    # unseen in any public client (findings 5 and 10), so they are opt-in.
    book_speculate: bool = False

    @field_validator(
        "database_url", "resy_api_key", "resy_auth_token", "resy_refresh_token", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any, info: ValidationInfo) -> Any:
        if value != "":
            return value
        # Unset: the API key falls back to the public one, everything else to nothing.
        return DEFAULT_RESY_API_KEY if info.field_name == "resy_api_key" else None

    @property
    def default_database_path(self) -> Path:
        from platformdirs import user_data_path

        return user_data_path(APP_NAME) / f"{APP_NAME}.db"

    @property
    def uses_default_database(self) -> bool:
        return self.database_url is None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.default_database_path}"

    def secrets(self) -> list[str]:
        """Secret values to mask wherever text leaves the process: the Resy key and token,
        the database URL's password and the tokens in the notification URLs."""
        held = [self.resy_api_key, self.resy_auth_token, self.resy_refresh_token]
        for account in self.accounts.values():
            held += [account.auth_token, account.refresh_token]
        secrets = [s.get_secret_value() for s in held if s]
        secrets += url_secrets(self.database_url)
        for url in self.notify_urls:
            secrets += notify_url_secrets(url)
        return secrets


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def env_var(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def load_settings(
    *,
    config_path: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings for one invocation (see the module docstring for precedence).

    `flags` holds only the options the user actually gave; `environ` defaults to os.environ.
    """
    environ = os.environ if environ is None else environ
    path = config_file(config_path, environ)
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}

    for field, value in read_config_file(path).items():
        values[field], origins[field] = value, f"{path} {_toml_key(field)}"
    for field in Settings.model_fields:
        if field in _FILE_ONLY:
            continue
        if (raw := environ.get(env_var(field))) is not None:
            values[field], origins[field] = raw, env_var(field)
    for field, value in (flags or {}).items():
        if value is not None:
            values[field], origins[field] = value, flag_name(field)

    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        where = origins.get(field, field or "settings")
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid value for {where}: {message}") from None


def config_file(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The config file in effect: named by --config or $RESYWATCH_CONFIG, else the default.
    It may not exist yet: that is empty configuration (`auth login` creates it)."""
    environ = os.environ if environ is None else environ
    if explicit is not None:
        return explicit.expanduser()
    if named := environ.get(env_var("config")):
        return Path(named).expanduser()
    return default_config_path()


def _toml_key(field: str) -> str:
    section, _, key = field.partition("_")
    return f"[{section}] {key}" if key and section in _SECTIONS else f"[general] {field}"


_FILE_ONLY = {"accounts"}  # tables of the config file, no environment variable
_SECTIONS = {
    "database",
    "resy",
    "discovery",
    "notify",
    "jobs",
    "retention",
    "health",
    "book",
    "auth",
}


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's values keyed by field name (none when it does not exist yet); unknown
    sections or keys are errors."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):  # cannot exist (yet)
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None

    values: dict[str, Any] = {}
    for section, table in document.items():
        if section == "accounts" and isinstance(table, dict):
            values["accounts"] = table  # [accounts.NAME] tables, checked by Settings
            continue
        if section not in _SECTIONS | {"general"} or not isinstance(table, dict):
            raise ConfigError(f"config file {path}: unknown section [{section}]")
        for key, value in table.items():
            field = key if section == "general" else f"{section}_{key}"
            if field not in Settings.model_fields or _toml_key(field) != f"[{section}] {key}":
                raise ConfigError(f"config file {path}: unknown key [{section}] {key}")
            values[field] = value
    return values


def set_config_value(path: Path, section: str, key: str, value: str | None) -> None:
    """Set `[section] key = "value"` (see `set_config_values`)."""
    set_config_values(path, section, {key: value})


def set_config_values(path: Path, section: str, values: Mapping[str, str | None]) -> None:
    """Set `[section] key = "value"` for each key in one write (a key is removed, with None,
    and a section left empty is removed too), keeping
    every other line and comment. The file, and its directory (0700), are created when
    missing; a symlink is written through to its target. The file is replaced atomically
    (a temporary file in the same directory, then a rename) and left readable by its owner
    only (mode 0600): it may hold the Resy token. A file that cannot be read or written is
    a ConfigNotWritable naming it, and nothing is left half-written."""
    target = path.resolve()  # through symlinks: replacing the link would cut it
    try:
        lines = target.read_text(encoding="utf-8").splitlines() if target.exists() else []
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigNotWritable(f"cannot read the config file {path}: {_reason(exc)}") from None
    for key, value in values.items():
        lines = _with_value(lines, section, key, value)
    lines = _without_empty_section(lines, section)
    text = "\n".join(lines) + "\n" if lines else ""
    tomllib.loads(text)  # never write a file we could not read back

    check_config_writable(path)
    temporary: str | None = None
    try:
        descriptor, temporary = tempfile.mkstemp(  # mode 0600
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        temporary = None
        os.chmod(target, 0o600)
    except OSError as exc:
        raise ConfigNotWritable(f"cannot write the config file {path}: {_reason(exc)}") from None
    finally:
        if temporary is not None:
            with suppress(OSError):
                os.unlink(temporary)


def check_config_writable(path: Path) -> None:
    """Make sure the config file can be written (its directory is created, 0700, if
    missing), before work whose result would be lost otherwise (a login's token)."""
    target = path.resolve()
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigNotWritable(f"cannot write the config file {path}: {_reason(exc)}") from None
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise ConfigNotWritable(
            f"cannot write the config file {path}: its directory {target.parent} is not writable"
        )


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


_HEADER = re.compile(r"^\s*\[([^\]]+)\]\s*(#.*)?$")


def _without_empty_section(lines: list[str], section: str) -> list[str]:
    """The lines without `[section]` when nothing but blank lines follow it."""
    header = _HEADER
    start = next(
        (i for i, row in enumerate(lines) if (m := header.match(row)) and m[1].strip() == section),
        None,
    )
    if start is None:
        return lines
    end = next((i for i in range(start + 1, len(lines)) if header.match(lines[i])), len(lines))
    if any(line.strip() for line in lines[start + 1 : end]):
        return lines
    kept = lines[:start] + lines[end:]
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def _with_value(lines: list[str], section: str, key: str, value: str | None) -> list[str]:
    header = _HEADER
    assignment = re.compile(rf"^\s*{re.escape(key)}\s*=")
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if (m := header.match(line)) and m[1].strip() == section
        ),
        None,
    )
    new_line = f"{key} = {json.dumps(value)}" if value is not None else None
    if start is None:
        if new_line is not None:
            lines += ([""] if lines else []) + [f"[{section}]", new_line]
    else:
        end = next((i for i in range(start + 1, len(lines)) if header.match(lines[i])), len(lines))
        found = next((i for i in range(start + 1, end) if assignment.match(lines[i])), None)
        if found is not None and new_line is None:
            del lines[found]
        elif found is not None and new_line is not None:
            lines[found] = new_line
        elif new_line is not None:
            lines.insert(start + 1, new_line)
    return lines
