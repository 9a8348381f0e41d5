"""Serving settings: each declared once, with its variable and default, and everything else derived from that.

The parsing of single variables is tested beside what it configures (rate limits, int8, the S3 store, the
public page, PostgreSQL); these tests hold the declaration itself: that it covers every field, that the
documentation (`cse-serving settings`, the CLI's help, README's Configuration row) says what `from_env`
does, and the reading rules every variable shares.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from cse_models.errors import ConfigError
from cse_serving.cli import _parser, main
from cse_serving.env_fields import declared
from cse_serving.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_field_is_declared_with_its_own_variable() -> None:
    variables = [var.variable for var in declared(Settings).values()]

    assert list(declared(Settings)) == [f.name for f in fields(Settings)]
    assert len(set(variables)) == len(variables)


def test_the_settings_command_prints_each_variable_with_the_default_from_env_uses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["settings"]) == 0
    table = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    defaults = Settings.from_env({"CSE_HOME": "/srv/cse"})

    assert set(table) == {var.variable for var in declared(Settings).values()}
    assert str(defaults.port) in table["CSE_SERVING_PORT"].split()
    assert str(defaults.rate_limit) in table["CSE_SERVING_RATE_LIMIT"].split()
    assert str(defaults.store_root) == "/srv/cse/store"
    assert "$CSE_HOME/store" in table["CSE_STORE"].split()


def test_a_flag_help_quotes_its_variable_and_default() -> None:
    serve = next(action for action in _parser()._actions if action.dest == "command").choices["serve"]
    helps = {action.dest: action.help for action in serve._actions}

    assert "$CSE_SERVING_HEADER_TIMEOUT" in helps["header_timeout"]
    assert f"else {Settings.from_env({}).header_timeout_s:g}]" in helps["header_timeout"]
    assert f"$CSE_SERVING_PORT, else {Settings.from_env({}).port}]" in helps["port"]


def test_the_readme_names_only_declared_serving_variables() -> None:
    row = next(line for line in README.read_text().splitlines() if line.startswith("| serving |"))
    named = set(re.findall(r"`(CSE_[A-Z0-9_*]+)`", row))
    patterns = [re.compile(name.replace("*", "[A-Z]+") + "$") for name in named]
    variables = {var.variable for var in declared(Settings).values()}

    assert len(named) >= 10
    assert all(any(pattern.match(variable) for variable in variables) for pattern in patterns), named


def test_an_empty_variable_counts_as_unset() -> None:
    empty = {var.variable: "" for var in declared(Settings).values()}

    assert Settings.from_env(empty) == Settings.from_env({})


def test_defaults_under_cse_home_follow_the_given_environment() -> None:
    settings = Settings.from_env({"CSE_HOME": "/srv/cse"})

    assert (settings.store_root, settings.db_path, settings.scorecard_path) == (
        Path("/srv/cse/store"),
        Path("/srv/cse/serving.db"),
        Path("/srv/cse/scorecard.db"),
    )


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("CSE_SERVING_PORT", "eighty", "CSE_SERVING_PORT must be an integer, got 'eighty'"),
        ("CSE_SERVING_LIVE_MARGIN", "lots", "CSE_SERVING_LIVE_MARGIN must be a number, got 'lots'"),
        ("CSE_SERVING_PORT", "70000", "port must be in 0..65535, got 70000"),
        ("CSE_SERVING_KEEP_ALIVE", "0", "keep_alive_s must be > 0 seconds, got 0.0"),
    ],
)
def test_an_unreadable_or_out_of_range_variable_is_a_config_error_naming_it(
    variable: str, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env({variable: text})


def test_switches_read_off_words_and_keep_anything_else_on() -> None:
    for text in ("0", "false", " Off ", "NO"):
        assert Settings.from_env({"CSE_SERVING_AUTH": text}).auth is False
    for text in ("1", "yes", "on", "typo"):
        assert Settings.from_env({"CSE_SERVING_AUTH": text}).auth is True
    assert Settings.from_env({"CSE_SERVING_SCORECARD": "off"}).scorecard_path is None


def test_keyword_overrides_win_over_the_environment_unless_none() -> None:
    env = {"CSE_SERVING_PORT": "9000", "CSE_SERVING_HOST": "0.0.0.0"}

    settings = Settings.from_env(env, port=9100, host=None)

    assert (settings.port, settings.host) == (9100, "0.0.0.0")
