"""HOOKLEDGER_PROVIDERS_FILE: named Standard Webhooks sources, declared without code."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hookledger.settings import SettingsError
from hookledger.sources import load_sources

SECRET = "whsec_" + base64.b64encode(b"returns secret").decode()
OTHER = "whsec_" + base64.b64encode(b"rotated secret").decode()


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "providers.toml"
    path.write_text(text)
    return str(path)


def test_no_file_means_no_sources() -> None:
    assert load_sources("") == {}


def test_sources_are_built_with_their_secrets_and_paths(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(OTHER + "\n")
    file = write(
        tmp_path,
        f"""
        [sources.returns]
        secret = "{SECRET} file:{secret_file}"
        order_path = "data.order.id"
        type_path = "type"

        [sources.reviews]
        secret = "{SECRET}"
        type = "review.posted"
        time_path = "created_at"
        """,
    )
    sources = load_sources(file)
    assert set(sources) == {"returns", "reviews"}
    returns = sources["returns"]
    assert returns.name == "returns"
    assert returns.secrets == (SECRET, OTHER)
    assert (returns.order_path, returns.type_path, returns.fixed_type) == (
        "data.order.id", "type", None
    )  # fmt: skip
    assert "[sources.returns].secret" in returns.secret_setting
    assert sources["reviews"].fixed_type == "review.posted"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[sources.returns\n", "not valid TOML"),
        ('[sources.returns]\ntype = "x"\n', "missing required field `secret`"),
        (f'[sources.returns]\nsecret = "{SECRET}"\ntype = "x"\ncolour = "red"\n',
         "unknown field `colour`"),
        (f'[sources.returns]\nsecret = "{SECRET}"\n', "exactly one of type_path"),
        (f'[sources.returns]\nsecret = "{SECRET}"\ntype = "x"\ntype_path = "t"\n',
         "exactly one of type_path"),
        (f'[sources.veriff]\nsecret = "{SECRET}"\ntype = "x"\n', "'veriff' is a built-in"),
        (f'[sources.stripe]\nsecret = "{SECRET}"\ntype = "x"\n', "'stripe' is a built-in"),
        (f'[sources.hookledger]\nsecret = "{SECRET}"\ntype = "x"\n', "reserved"),
        (f'[sources.Returns]\nsecret = "{SECRET}"\ntype = "x"\n', "lowercase letters"),
        (f'[sources."a/b"]\nsecret = "{SECRET}"\ntype = "x"\n', "lowercase letters"),
        (f'[sources.returns]\nsecret = "{SECRET}"\ntype = "not a type"\n', "not 'not a type'"),
        (f'[sources.returns]\nsecret = "{SECRET}"\ntype_path = "a..b"\n', "dotted path"),
        ('[sources.returns]\nsecret = "whsec_not base64!"\ntype = "x"\n', "whsec_"),
        ("[other]\nx = 1\n", "unknown field `other`"),
        ('[sources.returns]\nsecret = "file:/nonexistent/secret"\ntype = "x"\n',
         "cannot read /nonexistent/secret"),
    ],
)  # fmt: skip
def test_a_bad_file_fails_with_an_error_naming_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    file = write(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_sources(file)
    message = str(caught.value)
    assert message.startswith(f"HOOKLEDGER_PROVIDERS_FILE {file}: ") or file in message
    assert problem in message, message


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read it"):
        load_sources(str(tmp_path / "absent.toml"))


def test_errors_never_show_the_secret(tmp_path: Path) -> None:
    file = write(tmp_path, f'[sources.veriff]\nsecret = "{SECRET}"\ntype = "x"\n')
    with pytest.raises(SettingsError) as caught:
        load_sources(file)
    assert SECRET not in str(caught.value)
