"""Settings, read once from ``HOOKLEDGER_*`` environment variables, in the
composition root, and passed down as typed values: every setting is checked
here, so a bad one stops the start with an error naming its variable."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import platformdirs

PREFIX = "HOOKLEDGER_"
TIMER_BACKENDS = ("postgres", "cloudtasks")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def default_data_dir() -> Path:
    """Where the embedded database and local secrets live unless
    HOOKLEDGER_DATA_DIR says otherwise: the user's data folder
    (~/.local/share/hookledger on Linux), the same whichever folder a command
    runs in."""
    return platformdirs.user_data_path("hookledger")


class Settings(msgspec.Struct, frozen=True):
    database_url: str | None = None
    # Absolute, and the same from every folder: see default_data_dir.
    data_dir: Path = msgspec.field(default_factory=default_data_dir)
    max_body_bytes: int = 1024 * 1024
    # Refused signatures per source address per minute before 429s (0: no limit),
    # and how many proxies in front append to X-Forwarded-For (Cloud Run: 1).
    signature_failures_per_minute: int = 60
    trusted_proxies: int = 0
    # Outbound circuit breakers: failures in a row before a provider's breaker
    # opens, and how long it stays open before one probe.
    breaker_failures: int = 5
    breaker_cool_down: timedelta = timedelta(seconds=30)
    # A request must arrive whole within this of its connection opening (or of
    # the previous answer on it): slow clients cannot hold connections for ever.
    request_timeout: timedelta = timedelta(seconds=30)
    veriff_secret: str = ""
    post_purchase_secret: str = ""
    shopify_secret: str = ""
    stripe_secret: str = ""
    authorizenet_secret: str = ""
    sendgrid_public_key: str = ""
    providers_file: str = ""
    api_token: str = ""
    metrics_token: str = ""  # /metrics needs it as a bearer token when set (secret)
    # Bearer token(s) that may erase personal data (POST /api/v1/erasures;
    # secret). Empty: the API erases nothing (the CLI still can).
    operator_tokens: str = ""
    # Bearer token(s) that sign in to the console as an auditor: reads
    # everything, changes nothing (secret).
    auditor_tokens: str = ""
    # Behind Identity-Aware Proxy (Cloud Run): the backend's audience
    # ("/projects/NUMBER/global/backendServices/ID"; empty: IAP's header is not
    # read), where IAP's keys are published, and which e-mails get which role.
    iap_audience: str = ""
    iap_keys_url: str = "https://www.gstatic.com/iap/verify/public_key"
    operator_emails: str = ""
    auditor_emails: str = ""
    safe_mode: bool = True
    log_level: str = "INFO"  # one of LOG_LEVELS
    group_commit: bool = True
    max_batch: int = 512
    # Load shedding: beyond this many events waiting for the appender, or when
    # the oldest has waited this long, new deliveries get 503 at once.
    max_queued_events: int = 10_000
    max_queue_wait: timedelta = timedelta(seconds=2)
    pool_size: int = 8
    # The countdown: how long an order has to pass verification, when to remind
    # the customer (before the due time), and how long a verification submitted
    # by the due time may take to be decided.
    countdown_window: timedelta = timedelta(hours=72)
    countdown_reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))
    countdown_grace: timedelta = timedelta(hours=24)
    # Run the projections, the policy, the timers and the actions in this process.
    background: bool = True
    # Outbound actions (scheduler.actions); secrets accept `file:/path`.
    sendgrid_api_key: str = ""
    sendgrid_base_url: str = "https://api.sendgrid.com"
    email_from: str = "verification@example.com"
    verification_url: str = "https://example.com/verify?order={order_id}"
    payments_base_url: str = "https://api.authorize.net"
    authorizenet_login_id: str = ""
    authorizenet_transaction_key: str = ""
    action_max_attempts: int = 5
    action_backoff_seconds: float = 2.0
    action_backoff_max_seconds: float = 300.0
    action_timeout_seconds: float = 10.0
    bigquery_project: str = ""
    bigquery_dataset: str = "hookledger"
    bigquery_table: str = "events"
    bigquery_location: str = ""
    bigquery_endpoint: str = ""
    export_policy_file: str = ""
    # Which values are personal and how long each stays readable (TOML; the
    # built-in default when empty): personal/default_policy.toml.
    personal_data_policy: str = ""
    # How often the retention sweep looks for personal values whose time is up.
    retention_interval: timedelta = timedelta(seconds=60)
    export_hash_key: str = ""
    export_interval: float = 10.0
    # Timers: `postgres` (a worker claims due rows) or `cloudtasks` (one Cloud
    # Task per timer; the Postgres claim stays on as a reconciler for timers
    # overdue by more than `tasks_reconcile_lag`).
    timer_backend: str = "postgres"
    tasks_queue: str = ""  # projects/P/locations/L/queues/Q
    tasks_target_url: str = ""  # this service's public base URL, as Cloud Tasks calls it
    tasks_service_account: str = ""  # OIDC token: the email Cloud Tasks signs as
    tasks_audience: str = ""  # OIDC audience; default: the target URL
    tasks_endpoint: str = ""  # host:port of an emulator (plain gRPC); empty: Google
    tasks_secret: str = ""  # shared-secret header, for callers without OIDC (secret)
    tasks_max_retries: int = 20
    tasks_reconcile_lag: timedelta = timedelta(seconds=60)
    tasks_oidc_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    # Secret Manager: an endpoint override (REST, e.g. a local stand-in) and how
    # often references (`sm://`, `file:`) are read again.
    secrets_endpoint: str = ""
    secrets_refresh: timedelta = timedelta(minutes=5)
    # Google Cloud project: log lines carry Cloud Logging's trace field.
    gcp_project: str = ""
    # Signed checkpoints of the ledger's Merkle tree (issue 13). The key is a
    # secret like the others (a PEM, `file:`, `sm://`) or a Cloud KMS key version
    # (`kms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V`);
    # on the embedded database a local key pair is generated once.
    checkpoint_key: str = ""
    checkpoint_origin: str = "hookledger"  # the log's name in every checkpoint
    checkpoint_interval: timedelta = timedelta(seconds=60)
    checkpoint_dir: str = ""  # a folder every signed checkpoint is also written to
    kms_endpoint: str = ""  # a Cloud KMS endpoint override (REST, e.g. a local stand-in)

    @property
    def embedded(self) -> bool:
        """No database URL: run the embedded Postgres under ``data_dir``."""
        return not self.database_url


_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}  # fmt: skip


def variable(field: str) -> str:
    """The environment variable of a ``Settings`` field."""
    return PREFIX + field.upper()


def from_env(environ: Mapping[str, str]) -> Settings:
    """Build settings from an environment mapping; unknown keys are ignored."""
    values: dict[str, object] = {}
    for name, field_type in _fields().items():
        raw = environ.get(variable(name))
        if raw is None or raw == "":
            continue
        value = _convert(name, raw, field_type)
        check = _CHECKS.get(name)
        values[name] = check(value, variable(name)) if check else value
    try:
        settings = Settings(**values)  # type: ignore[arg-type]
    except (TypeError, msgspec.ValidationError) as exc:
        raise SettingsError(str(exc)) from exc
    if settings.timer_backend == "cloudtasks":
        for name in ("tasks_queue", "tasks_target_url"):
            if not getattr(settings, name):
                raise SettingsError(f"{variable(name)} is required with cloudtasks timers")
    return settings


def _fields() -> dict[str, object]:
    return {f.name: f.type for f in msgspec.structs.fields(Settings)}


def _convert(name: str, raw: str, field_type: object) -> object:
    setting = PREFIX + name.upper()
    if field_type is bool:
        if raw.strip().lower() not in _BOOL:
            raise SettingsError(f"{setting} must be true or false, not {raw!r}")
        return _BOOL[raw.strip().lower()]
    if field_type is int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{setting} must be an integer, not {raw!r}") from None
        if value <= 0:
            raise SettingsError(f"{setting} must be positive")
        return value
    if field_type is float:
        try:
            number = float(raw)
        except ValueError:
            raise SettingsError(f"{setting} must be a number, not {raw!r}") from None
        if not number > 0 or number == float("inf"):
            raise SettingsError(f"{setting} must be a positive number")
        return number
    if field_type is Path:
        # Resolved once, here: a command run from another folder means the same place.
        return Path(raw).expanduser().absolute()
    if field_type is timedelta:
        return parse_duration(raw, setting)
    if field_type == tuple[timedelta, ...]:
        return parse_durations(raw, setting)
    return raw


def _one_of(choices: tuple[str, ...], *, upper: bool = False) -> Callable[[object, str], str]:
    def check(value: object, setting: str) -> str:
        text = str(value).strip()
        text = text.upper() if upper else text
        if text not in choices:
            raise SettingsError(f"{setting} must be one of {', '.join(choices)}, not {value!r}")
        return text

    return check


def _web_url(value: object, setting: str) -> str:
    """An http(s) URL with a host (a template's ``{order_id}`` stays as it is)."""
    text = str(value)
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"{setting} must be an http(s) URL like https://host/path, not {text!r}"
        )
    return text


def _database_url(value: object, setting: str) -> str:
    """A ``postgresql://`` URL, or a libpq ``key=value`` connection string."""
    text = str(value)
    scheme, found, _ = text.partition("://")
    if found and scheme not in ("postgresql", "postgres"):
        raise SettingsError(f"{setting} must be a postgresql:// URL, not one of {scheme}://")
    if not found and "=" not in text:
        raise SettingsError(
            f"{setting} must be a postgresql:// URL or a key=value connection string"
        )
    return text


def _host_port(value: object, setting: str) -> str:
    host, found, port = str(value).rpartition(":")
    if not (found and host and port.isdigit()):
        raise SettingsError(f"{setting} must be host:port, not {value!r}")
    return str(value)


def _origin(value: object, setting: str) -> str:
    # The origin is also the key's name in signed notes: no spaces, no '+'.
    text = str(value)
    if len(text) > 200 or not text.isprintable() or any(c.isspace() or c == "+" for c in text):
        raise SettingsError(
            f"{setting} must be one word of at most 200 printable characters without '+',"
            f" e.g. shop.example/hookledger, not {text[:50]!r}"
        )
    return text


def _positive(value: object, setting: str) -> object:
    if isinstance(value, timedelta) and value <= timedelta(0):
        raise SettingsError(f"{setting} must be longer than zero")
    return value


def _at_most_a_minute(value: object, setting: str) -> object:
    if isinstance(value, timedelta) and not timedelta(0) < value <= timedelta(minutes=1):
        raise SettingsError(f"{setting} must be longer than zero and at most 60s")
    return value


def _email(value: object, setting: str) -> str:
    local, found, domain = str(value).rpartition("@")
    if not (found and local and domain) or any(c.isspace() for c in str(value)):
        raise SettingsError(f"{setting} must be an e-mail address, not {value!r}")
    return str(value)


# What a setting read from the environment must look like beyond its type; each
# check returns the value to keep (a log level in capitals).
_CHECKS: dict[str, Callable[[object, str], object]] = {
    "database_url": _database_url,
    "log_level": _one_of(LOG_LEVELS, upper=True),
    "timer_backend": _one_of(TIMER_BACKENDS),
    "sendgrid_base_url": _web_url,
    "payments_base_url": _web_url,
    "verification_url": _web_url,
    "email_from": _email,
    "bigquery_endpoint": _web_url,
    "tasks_target_url": _web_url,
    "tasks_endpoint": _host_port,
    "tasks_oidc_certs_url": _web_url,
    "secrets_endpoint": _web_url,
    "kms_endpoint": _web_url,
    "checkpoint_origin": _origin,
    "checkpoint_interval": _positive,
    "request_timeout": _at_most_a_minute,
    "max_queue_wait": _positive,
    "breaker_cool_down": _positive,
}


def split_values(value: str) -> tuple[str, ...]:
    """Several secrets or tokens in one setting, separated by spaces or commas."""
    return tuple(part for part in re.split(r"[\s,]+", value) if part)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, setting: str) -> timedelta:
    """A duration such as ``72h``, ``5m``, ``30s`` or ``1h30m``."""
    value = text.strip().lower()
    parts = _DURATION_PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise SettingsError(f"{setting} must be a duration like 72h, 5m or 30s, not {text!r}")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def parse_durations(text: str, setting: str) -> tuple[timedelta, ...]:
    """Several durations separated by commas or spaces; empty or ``none`` for none."""
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(parse_duration(part, setting) for part in split_values(text))
