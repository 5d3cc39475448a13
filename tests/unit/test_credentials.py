"""Credential references resolved to secrets, with problems described by reference only.

Scenario matrix (``resolve``):

- no ref: (None, None)
- env: set (surrounding whitespace stripped); unset; blank -> problem naming ``env:NAME``
- file: present (trailing newline stripped); missing; empty / whitespace only; a directory;
  not UTF-8 text -> problem naming ``file:PATH``
- every problem: names the reference (``env:NAME`` / ``file:PATH``), never a secret value
"""

from __future__ import annotations

from pathlib import Path

import pytest

from switchman.api.gatewayconfig import CredentialRef
from switchman.gateway.upstreams.credentials import resolve

SECRET = "sk-live-0123456789abcdef"


def test_no_reference_resolves_to_nothing() -> None:
    assert resolve(None, {"OPENAI_API_KEY": SECRET}) == (None, None)


def test_env_reference_reads_the_variable() -> None:
    ref = CredentialRef(env="OPENAI_API_KEY")

    assert resolve(ref, {"OPENAI_API_KEY": f" {SECRET}\n"}) == (SECRET, None)


def test_unset_env_variable_is_a_problem_naming_the_reference() -> None:
    ref = CredentialRef(env="OPENAI_API_KEY")

    secret, problem = resolve(ref, {"OTHER_KEY": SECRET})

    assert secret is None
    assert problem == "credential env:OPENAI_API_KEY is not set"


@pytest.mark.parametrize("value", ["", "   ", "\n"], ids=["empty", "spaces", "newline"])
def test_blank_env_variable_is_a_problem(value: str) -> None:
    secret, problem = resolve(CredentialRef(env="KEY"), {"KEY": value})

    assert secret is None
    assert problem == "credential env:KEY is not set"


def test_file_reference_reads_the_file_without_its_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    path.write_text(SECRET + "\n")

    assert resolve(CredentialRef(file=str(path)), {}) == (SECRET, None)


def test_missing_file_is_a_problem_naming_the_reference(tmp_path: Path) -> None:
    path = tmp_path / "absent"

    secret, problem = resolve(CredentialRef(file=str(path)), {})

    assert secret is None
    assert problem == f"credential file:{path} cannot be read: No such file or directory"


@pytest.mark.parametrize("content", ["", "\n", "  \n\t"], ids=["empty", "newline", "blank"])
def test_empty_file_is_a_problem(tmp_path: Path, content: str) -> None:
    path = tmp_path / "api-key"
    path.write_text(content)

    assert resolve(CredentialRef(file=str(path)), {}) == (
        None,
        f"credential file:{path} is empty",
    )


def test_directory_instead_of_file_is_a_problem(tmp_path: Path) -> None:
    secret, problem = resolve(CredentialRef(file=str(tmp_path)), {})

    assert secret is None
    assert problem is not None
    assert problem.startswith(f"credential file:{tmp_path} cannot be read: ")


def test_file_that_is_not_utf8_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    # A binary Secret key (or a wrong file mounted) must not take the config reload down.
    path = tmp_path / "api-key"
    path.write_bytes(b"\xff\xfe" + SECRET.encode())

    secret, problem = resolve(CredentialRef(file=str(path)), {})

    assert secret is None
    assert problem is not None
    assert problem.startswith(f"credential file:{path}")
    assert SECRET not in problem


def test_every_problem_names_its_reference(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("")
    refs = [
        CredentialRef(env="UNSET"),
        CredentialRef(env="BLANK"),
        CredentialRef(file=str(tmp_path / "absent")),
        CredentialRef(file=str(tmp_path / "empty")),
    ]

    for ref in refs:
        secret, problem = resolve(ref, {"BLANK": "  ", "OTHER": SECRET})
        assert secret is None
        assert problem is not None
        assert ref.describe() in problem
        assert SECRET not in problem
