"""Settings from the environment, and secrets given directly, in files, or generated."""

from __future__ import annotations

import base64
import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.providers import BUILT_IN
from api.providers.sendgrid import SendGrid
from api.sendgrid_signature import load_public_key, sendgrid_sign, verify_sendgrid
from api.signatures import standard_webhooks_key
from hookledger.secrets import (
    LOCAL_SECRETS_FILE,
    local_secrets,
    provider_secrets,
    resolve,
)
from hookledger.settings import Settings, SettingsError, from_env, split_values

PROVIDERS = set(BUILT_IN)
SENDGRID_SIGNING_KEY = SendGrid.SIGNING_KEY

# --- from_env -----------------------------------------------------------------------


def test_from_env_gives_defaults_for_an_empty_environment() -> None:
    assert from_env({}) == Settings()
    assert Settings().embedded is True


def test_from_env_reads_every_setting() -> None:
    loaded = from_env(
        {
            "HOOKLEDGER_DATABASE_URL": "postgresql://db/hl",
            "HOOKLEDGER_DATA_DIR": "/var/lib/hl",
            "HOOKLEDGER_MAX_BODY_BYTES": "2048",
            "HOOKLEDGER_VERIFF_SECRET": "v-secret",
            "HOOKLEDGER_POST_PURCHASE_SECRET": "whsec_c2VjcmV0",
            "HOOKLEDGER_API_TOKEN": "t1,t2",
            "HOOKLEDGER_SAFE_MODE": "off",
            "HOOKLEDGER_LOG_LEVEL": "DEBUG",
            "HOOKLEDGER_GROUP_COMMIT": "no",
            "HOOKLEDGER_MAX_BATCH": "64",
            "HOOKLEDGER_POOL_SIZE": "3",
            "HOOKLEDGER_SHOPIFY_SECRET": "shpss_1",
            "HOOKLEDGER_STRIPE_SECRET": "whsec_stripe",
            "HOOKLEDGER_AUTHORIZENET_SECRET": "AB12",
            "HOOKLEDGER_SENDGRID_PUBLIC_KEY": "MFkw",
            "HOOKLEDGER_PROVIDERS_FILE": "/etc/hl/providers.toml",
        }
    )
    assert loaded == Settings(
        database_url="postgresql://db/hl",
        data_dir=Path("/var/lib/hl"),
        max_body_bytes=2048,
        veriff_secret="v-secret",
        post_purchase_secret="whsec_c2VjcmV0",
        api_token="t1,t2",
        safe_mode=False,
        log_level="DEBUG",
        group_commit=False,
        max_batch=64,
        pool_size=3,
        shopify_secret="shpss_1",
        stripe_secret="whsec_stripe",
        authorizenet_secret="AB12",
        sendgrid_public_key="MFkw",
        providers_file="/etc/hl/providers.toml",
    )
    assert loaded.embedded is False
    assert isinstance(loaded.data_dir, Path)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("On", True),
        ("0", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("OFF", False),
    ],
)
def test_from_env_reads_booleans(raw: str, expected: bool) -> None:
    assert from_env({"HOOKLEDGER_SAFE_MODE": raw}).safe_mode is expected
    assert from_env({"HOOKLEDGER_GROUP_COMMIT": raw}).group_commit is expected


@pytest.mark.parametrize("raw", ["maybe", "2", "y", "enabled", "truee", "-1"])
def test_from_env_rejects_a_boolean_it_cannot_read_and_names_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match="HOOKLEDGER_SAFE_MODE") as caught:
        from_env({"HOOKLEDGER_SAFE_MODE": raw})
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("512", 512), (" 42 ", 42)])
def test_from_env_reads_positive_integers(raw: str, expected: int) -> None:
    assert from_env({"HOOKLEDGER_MAX_BATCH": raw}).max_batch == expected


@pytest.mark.parametrize(
    "variable", ["HOOKLEDGER_MAX_BODY_BYTES", "HOOKLEDGER_MAX_BATCH", "HOOKLEDGER_POOL_SIZE"]
)
@pytest.mark.parametrize("raw", ["ten", "1.5", "1e6", "0x10", "12kb"])
def test_from_env_rejects_a_non_integer_and_names_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable} must be an integer"):
        from_env({variable: raw})


@pytest.mark.parametrize("raw", ["0", "-1", "-512"])
def test_from_env_rejects_integers_that_are_not_positive(raw: str) -> None:
    with pytest.raises(SettingsError, match="HOOKLEDGER_POOL_SIZE must be positive"):
        from_env({"HOOKLEDGER_POOL_SIZE": raw})


def test_from_env_treats_empty_values_as_unset_and_ignores_unknown_keys() -> None:
    loaded = from_env(
        {
            "HOOKLEDGER_DATABASE_URL": "",
            "HOOKLEDGER_MAX_BATCH": "",
            "HOOKLEDGER_SAFE_MODE": "",
            "HOOKLEDGER_NOT_A_SETTING": "x",
            "DATABASE_URL": "postgresql://elsewhere/db",
            "hookledger_max_batch": "3",
        }
    )
    assert loaded == Settings()


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


# --- split_values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("  ,, ", ()),
        ("one", ("one",)),
        ("one two", ("one", "two")),
        ("one,two", ("one", "two")),
        (" one ,\ttwo\nthree,,four ", ("one", "two", "three", "four")),
        ("whsec_YQ== whsec_Yg==", ("whsec_YQ==", "whsec_Yg==")),
    ],
)
def test_split_values_splits_on_spaces_and_commas(value: str, expected: tuple[str, ...]) -> None:
    assert split_values(value) == expected


tokens = st.text(
    alphabet=st.characters(blacklist_categories=["Z", "Cc"], blacklist_characters=","),
    min_size=1,
    max_size=12,
)
separators = st.text(alphabet=" ,\t\n", min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(tokens, max_size=5), glue=st.lists(separators, min_size=6, max_size=6))
def test_split_values_recovers_every_token_whatever_the_separators(
    parts: list[str], glue: list[str]
) -> None:
    text = glue[0] + "".join(part + sep for part, sep in zip(parts, glue[1:], strict=False))
    assert split_values(text) == tuple(parts)


# --- secrets.resolve ----------------------------------------------------------------


def test_resolve_returns_direct_values() -> None:
    assert resolve("a, b c", "HOOKLEDGER_VERIFF_SECRET") == ("a", "b", "c")
    assert resolve("", "HOOKLEDGER_VERIFF_SECRET") == ()


def test_resolve_reads_file_values_and_mixes_them_with_direct_ones(tmp_path: Path) -> None:
    current = tmp_path / "veriff.secret"
    current.write_text("new-secret\nold-secret\n")
    rotated = tmp_path / "rotated.secret"
    rotated.write_text("  extra  ")
    value = f"direct file:{current},file:{rotated}"
    assert resolve(value, "HOOKLEDGER_VERIFF_SECRET") == (
        "direct",
        "new-secret",
        "old-secret",
        "extra",
    )


def test_resolve_of_an_empty_file_gives_no_secret(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert resolve(f"file:{empty}", "HOOKLEDGER_VERIFF_SECRET") == ()


def test_resolve_names_the_setting_and_path_of_an_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.secret"
    with pytest.raises(SettingsError, match="HOOKLEDGER_POST_PURCHASE_SECRET") as caught:
        resolve(f"file:{missing}", "HOOKLEDGER_POST_PURCHASE_SECRET")
    assert str(missing) in str(caught.value)


def test_resolve_does_not_put_secret_values_in_its_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        resolve(f"very-secret-value file:{tmp_path / 'nope'}", "HOOKLEDGER_API_TOKEN")
    assert "very-secret-value" not in str(caught.value)


# --- generated local secrets --------------------------------------------------------


def test_local_secrets_creates_the_file_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "nested"
    made = local_secrets(data_dir)
    path = data_dir / LOCAL_SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == made
    assert set(made) == {*PROVIDERS, SENDGRID_SIGNING_KEY}


def test_local_secrets_reuses_the_file_it_made(tmp_path: Path) -> None:
    first = local_secrets(tmp_path)
    second = local_secrets(tmp_path)
    assert first == second
    assert local_secrets(tmp_path / "elsewhere") != first


def test_local_secrets_are_usable_by_their_schemes(tmp_path: Path) -> None:
    made = local_secrets(tmp_path)
    assert len(bytes.fromhex(made["veriff"])) == 32
    assert made["post-purchase"].startswith("whsec_")
    key = standard_webhooks_key(made["post-purchase"])
    assert len(key) == 24
    assert base64.b64encode(key).decode() == made["post-purchase"].removeprefix("whsec_")


def test_provider_secrets_on_embedded_fall_back_to_local_secrets(tmp_path: Path) -> None:
    loaded = Settings(data_dir=tmp_path, veriff_secret="configured-1 configured-2")
    result = provider_secrets(loaded)
    local = local_secrets(tmp_path)
    assert result["veriff"] == ("HOOKLEDGER_VERIFF_SECRET", ("configured-1", "configured-2"))
    assert result["post-purchase"] == (
        "HOOKLEDGER_POST_PURCHASE_SECRET",
        (local["post-purchase"],),
    )


def test_provider_secrets_with_a_database_url_make_nothing_up(tmp_path: Path) -> None:
    loaded = Settings(database_url="postgresql://db/hl", data_dir=tmp_path)
    assert provider_secrets(loaded) == {
        "veriff": ("HOOKLEDGER_VERIFF_SECRET", ()),
        "post-purchase": ("HOOKLEDGER_POST_PURCHASE_SECRET", ()),
        "shopify": ("HOOKLEDGER_SHOPIFY_SECRET", ()),
        "stripe": ("HOOKLEDGER_STRIPE_SECRET", ()),
        "authorizenet": ("HOOKLEDGER_AUTHORIZENET_SECRET", ()),
        "sendgrid": ("HOOKLEDGER_SENDGRID_PUBLIC_KEY", ()),
    }
    assert not (tmp_path / LOCAL_SECRETS_FILE).exists()


def test_local_secrets_of_the_new_providers_look_like_the_providers_own(tmp_path: Path) -> None:
    made = local_secrets(tmp_path)
    assert made["stripe"].startswith("whsec_")
    assert len(made["authorizenet"]) == 128
    assert made["authorizenet"] == made["authorizenet"].upper()
    bytes.fromhex(made["authorizenet"])
    # The SendGrid pair: the public half verifies what the private half signs.
    headers = sendgrid_sign(made[SENDGRID_SIGNING_KEY], 1_700_000_000, b"[]")
    verify_sendgrid([load_public_key(made["sendgrid"])], headers, b"[]", 1_700_000_000)


def test_local_secrets_made_before_a_provider_existed_gain_it_and_keep_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / LOCAL_SECRETS_FILE
    path.write_text(json.dumps({"veriff": "old-veriff", "post-purchase": "whsec_b2xk"}))
    made = local_secrets(tmp_path)
    assert made["veriff"] == "old-veriff"
    assert made["post-purchase"] == "whsec_b2xk"
    assert set(made) == {*PROVIDERS, SENDGRID_SIGNING_KEY}
    assert json.loads(path.read_text()) == made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_secrets(tmp_path) == made


def test_the_timer_backend_is_postgres_or_cloudtasks_which_needs_a_queue_and_a_target() -> None:
    assert from_env({}).timer_backend == "postgres"
    with pytest.raises(SettingsError, match="HOOKLEDGER_TIMER_BACKEND"):
        from_env({"HOOKLEDGER_TIMER_BACKEND": "cron"})
    with pytest.raises(SettingsError, match="HOOKLEDGER_TASKS_QUEUE"):
        from_env({"HOOKLEDGER_TIMER_BACKEND": "cloudtasks"})
    settings = from_env({
        "HOOKLEDGER_TIMER_BACKEND": "cloudtasks",
        "HOOKLEDGER_TASKS_QUEUE": "projects/p/locations/l/queues/q",
        "HOOKLEDGER_TASKS_TARGET_URL": "https://hookledger.example",
    })  # fmt: skip
    assert settings.tasks_reconcile_lag == timedelta(seconds=60)
    with pytest.raises(SettingsError, match="HOOKLEDGER_TASKS_RECONCILE_LAG"):
        from_env({"HOOKLEDGER_TASKS_RECONCILE_LAG": "soon"})


# --- typed and checked values ---------------------------------------------------------


def test_durations_are_read_as_timedeltas_and_reminders_as_a_tuple_of_them() -> None:
    loaded = from_env({
        "HOOKLEDGER_COUNTDOWN_WINDOW": "1h30m",
        "HOOKLEDGER_COUNTDOWN_REMINDERS": "30m, 5m",
        "HOOKLEDGER_COUNTDOWN_GRACE": "0s",
        "HOOKLEDGER_SECRETS_REFRESH": "250ms",
    })  # fmt: skip
    assert loaded.countdown_window == timedelta(minutes=90)
    assert loaded.countdown_reminders == (timedelta(minutes=30), timedelta(minutes=5))
    assert loaded.countdown_grace == timedelta(0)
    assert loaded.secrets_refresh == timedelta(milliseconds=250)
    assert from_env({"HOOKLEDGER_COUNTDOWN_REMINDERS": "none"}).countdown_reminders == ()
    assert from_env({}).countdown_window == timedelta(hours=72)


@pytest.mark.parametrize(
    "variable",
    ["HOOKLEDGER_COUNTDOWN_WINDOW", "HOOKLEDGER_COUNTDOWN_REMINDERS", "HOOKLEDGER_SECRETS_REFRESH"],
)
def test_a_duration_that_cannot_be_read_is_refused_naming_its_variable(variable: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable} must be a duration"):
        from_env({variable: "3 days"})


def test_the_log_level_is_one_of_the_known_levels_in_any_case() -> None:
    assert from_env({"HOOKLEDGER_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    with pytest.raises(SettingsError, match="HOOKLEDGER_LOG_LEVEL must be one of") as caught:
        from_env({"HOOKLEDGER_LOG_LEVEL": "verbose"})
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in str(caught.value)
    assert "'verbose'" in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("HOOKLEDGER_SENDGRID_BASE_URL", "api.sendgrid.com"),
        ("HOOKLEDGER_PAYMENTS_BASE_URL", "ftp://api.authorize.net"),
        ("HOOKLEDGER_VERIFICATION_URL", "/verify?order={order_id}"),
        ("HOOKLEDGER_TASKS_OIDC_CERTS_URL", "https://"),
        ("HOOKLEDGER_SECRETS_ENDPOINT", "127.0.0.1:9000"),
        ("HOOKLEDGER_BIGQUERY_ENDPOINT", "localhost"),
        ("HOOKLEDGER_TASKS_ENDPOINT", "http://127.0.0.1"),
        ("HOOKLEDGER_EMAIL_FROM", "nobody"),
        ("HOOKLEDGER_DATABASE_URL", "mysql://db/hl"),
        ("HOOKLEDGER_DATABASE_URL", "db.example"),
    ],
)
def test_a_setting_of_the_wrong_shape_is_refused_naming_its_variable(
    variable: str, raw: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        from_env({variable: raw})


def test_settings_of_the_right_shape_are_kept_as_given() -> None:
    loaded = from_env({
        "HOOKLEDGER_DATABASE_URL": "host=/tmp dbname=hl",
        "HOOKLEDGER_VERIFICATION_URL": "https://shop.example/verify/{order_id}",
        "HOOKLEDGER_SECRETS_ENDPOINT": "http://127.0.0.1:9000",
        "HOOKLEDGER_TASKS_ENDPOINT": "localhost:8123",
        "HOOKLEDGER_EMAIL_FROM": "checks@shop.example",
    })  # fmt: skip
    assert loaded.database_url == "host=/tmp dbname=hl"
    assert loaded.verification_url == "https://shop.example/verify/{order_id}"
    assert loaded.tasks_endpoint == "localhost:8123"


def test_a_bad_log_level_stops_the_command_line_with_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hookledger.cli import main

    monkeypatch.setenv("HOOKLEDGER_LOG_LEVEL", "loud")
    assert main(["worker"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hookledger: HOOKLEDGER_LOG_LEVEL must be one of DEBUG, INFO")
    assert "Traceback" not in error


def test_a_secret_asked_for_twice_is_one_holder_so_both_users_follow_its_refreshes(
    tmp_path: Path,
) -> None:
    from hookledger.secrets import SecretStore

    path = tmp_path / "task-secret"
    path.write_text("first")
    store = SecretStore()
    checked = store.live(f"file:{path}", "HOOKLEDGER_TASKS_SECRET")
    sent = store.live(f"file:{path}", "HOOKLEDGER_TASKS_SECRET")
    assert sent is checked
    assert store.live("other", "HOOKLEDGER_TASKS_SECRET") is not checked
