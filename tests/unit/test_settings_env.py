"""tutor/settings.py reads the environment one way (environs): every boolean setting accepts
the same spellings, and a value that does not parse stops the start naming its variable.

The settings file is run afresh (``runpy``) with the environment under test; nothing of the
test process's own Django settings changes.
"""

from __future__ import annotations

import ast
import os
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from environs import EnvError
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.unit

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "tutor" / "settings.py"
TRUE_SPELLINGS = ["1", "true", "yes", "on", "y"]
FALSE_SPELLINGS = ["0", "false", "no", "off", "n"]


def _env_reads(kind: str) -> dict[str, str]:
    """{setting: variable} for every ``SETTING = env.<kind>("VARIABLE", ...)`` in the file."""
    found = {}
    for node in ast.walk(ast.parse(SETTINGS_FILE.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, call = node.targets[0], node.value
        if (
            isinstance(target, ast.Name)
            and isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "env"
            and call.func.attr == kind
            and call.args
            and isinstance(call.args[0], ast.Constant)
        ):
            found[target.id] = call.args[0].value
    return found


BOOLEANS = _env_reads("bool")
INTEGERS = _env_reads("int")
FLOATS = _env_reads("float")


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


def load_settings(var_dir: Path, **variables: str) -> dict[str, Any]:
    """The settings module's names, run with ``variables`` set (and a scratch var folder)."""
    with mock.patch.dict(os.environ, {"TUTOR_VAR_DIR": str(var_dir), **variables}):
        return runpy.run_path(str(SETTINGS_FILE))


@pytest.fixture(scope="module")
def defaults(var_dir: Path) -> dict[str, Any]:
    return load_settings(var_dir)


def test_the_settings_read_booleans_and_numbers_through_environs() -> None:
    # Enough to be sure the AST walk sees the file as it is written.
    assert {"DEBUG", "TUTOR_HIDDEN_PLANNING", "USE_X_FORWARDED_HOST"} <= set(BOOLEANS)
    assert {"TUTOR_MAX_REPLY_TOKENS", "AXES_FAILURE_LIMIT"} <= set(INTEGERS)
    assert {"TUTOR_TEMPERATURE", "TUTOR_CHECK_TIMEOUT_SECONDS"} <= set(FLOATS)


def _environ_reads(tree: ast.AST) -> Iterator[int]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                yield node.lineno


def test_nothing_reads_the_environment_around_environs() -> None:
    """A hand-rolled ``os.environ`` read would parse its booleans its own way."""
    lines = list(_environ_reads(ast.parse(SETTINGS_FILE.read_text(encoding="utf-8"))))
    assert not lines, f"tutor/settings.py reads os.environ directly on lines {lines}: use env.*"


def test_defaults_keep_their_types(defaults: dict[str, Any]) -> None:
    for name in BOOLEANS:
        assert isinstance(defaults[name], bool), name
    for name in INTEGERS:
        assert type(defaults[name]) is int, name
    for name in FLOATS:
        assert isinstance(defaults[name], float), name


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(BOOLEANS)),
    value=st.sampled_from(
        [(s, True) for s in TRUE_SPELLINGS] + [(s, False) for s in FALSE_SPELLINGS]
    ),
    case=st.sampled_from([str.lower, str.upper, str.title]),
)
def test_every_boolean_accepts_the_same_spellings(
    var_dir: Path, name: str, value: tuple[str, bool], case: Any
) -> None:
    spelling, expected = value
    # Single sign-on turned on also needs its client (settings refuse to start without it).
    needs = {"TUTOR_SSO_CLIENT_ID": "id", "TUTOR_SSO_CLIENT_SECRET": "secret"}
    extra = needs if name == "TUTOR_SSO" else {}
    loaded = load_settings(var_dir, **{BOOLEANS[name]: case(spelling)}, **extra)
    assert loaded[name] is expected


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(BOOLEANS)),
    word=st.sampled_from(["maybe", "enabled", "2", "tru", "nope", "-1"]),
)
def test_a_boolean_that_is_no_boolean_fails(var_dir: Path, name: str, word: str) -> None:
    variable = BOOLEANS[name]
    with pytest.raises(EnvError, match=variable):
        load_settings(var_dir, **{variable: word})


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(INTEGERS)),
    number=st.integers(min_value=0, max_value=10**6),
)
def test_integers_parse(var_dir: Path, name: str, number: int) -> None:
    assert load_settings(var_dir, **{INTEGERS[name]: str(number)})[name] == number


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(INTEGERS | FLOATS)),
    junk=st.sampled_from(["lots", "0.8s", "1,5", "ten", "5 min", "--1"]),
)
def test_a_bad_number_fails_naming_its_variable(var_dir: Path, name: str, junk: str) -> None:
    variable = (INTEGERS | FLOATS)[name]
    with pytest.raises(EnvError, match=rf'"{variable}" invalid'):
        load_settings(var_dir, **{variable: junk})


def test_a_fraction_is_no_integer(var_dir: Path) -> None:
    with pytest.raises(EnvError, match="TUTOR_MAX_REPLY_TOKENS"):
        load_settings(var_dir, TUTOR_MAX_REPLY_TOKENS="400.5")


def test_lists_are_stripped_and_drop_empty_items(var_dir: Path) -> None:
    loaded = load_settings(var_dir, DJANGO_ALLOWED_HOSTS=" a.example , ,b.example,")
    assert loaded["ALLOWED_HOSTS"] == ["a.example", "b.example"]
    assert load_settings(var_dir, DJANGO_CSRF_TRUSTED_ORIGINS="")["CSRF_TRUSTED_ORIGINS"] == []


def test_the_https_switch_reaches_the_settings_it_governs(var_dir: Path) -> None:
    on = load_settings(var_dir, DJANGO_SECURE="on", DJANGO_SECURE_COOKIES="No")
    assert on["SECURE_SSL_REDIRECT"] is True
    assert on["SECURE_HSTS_SECONDS"] == 31_536_000
    assert on["SESSION_COOKIE_SECURE"] is False and on["CSRF_COOKIE_SECURE"] is False
    off = load_settings(var_dir, DJANGO_SECURE="FALSE")
    assert off["SECURE_SSL_REDIRECT"] is False and off["SECURE_HSTS_SECONDS"] == 0
