"""Credential references resolved to secrets, with problems described by reference only.

Scenario matrix (``resolve``):

- no ref: (None, None)
- env: set (surrounding whitespace stripped); unset; blank -> problem naming ``env:NAME``
- file: present (one trailing newline stripped); missing; empty; a directory; not UTF-8 text;
  an inner newline, CRLF, two newlines, surrounding spaces, a control character -> problem naming
  ``file:PATH`` (never the value)
- env: a newline or control character inside the value -> problem
- Redactor: masks every secret (bytes and text), longest first; ignores values under 8 chars
- every problem: names the reference (``env:NAME`` / ``file:PATH``), never a secret value
"""

from __future__ import annotations

from pathlib import Path

import pytest

from switchman.api.gatewayconfig import CredentialRef
from switchman.gateway.upstreams.credentials import MASK, Redactor, resolve

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


@pytest.mark.parametrize("content", ["", "\n"], ids=["empty", "newline"])
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


@pytest.mark.parametrize(
    "content",
    [SECRET + "\nsecond", SECRET + "\r\n", SECRET + "\n\n", " " + SECRET, SECRET + "\x00", "\t\n"],
    ids=["inner-newline", "crlf", "two-newlines", "leading-space", "nul", "blank"],
)
def test_file_with_anything_but_one_trailing_newline_is_refused(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "api-key"
    path.write_text(content)

    secret, problem = resolve(CredentialRef(file=str(path)), {})

    assert secret is None
    assert problem == (
        f"credential file:{path} holds whitespace or a control character (only one trailing "
        "newline is allowed)"
    )


def test_env_value_with_an_inner_newline_is_refused() -> None:
    secret, problem = resolve(CredentialRef(env="KEY"), {"KEY": SECRET + "\nX-Evil: 1"})

    assert secret is None
    assert problem == "credential env:KEY holds a newline or control character"


def test_redactor_masks_every_secret_in_bytes_and_text() -> None:
    other = "sk-ant-9876543210"
    redactor = Redactor([SECRET, other, None, "short"])
    leaked = f"bad key Bearer {SECRET}; also {other}; short stays"

    assert redactor.text(leaked) == f"bad key Bearer {MASK}; also {MASK}; short stays"
    assert redactor.data(leaked.encode()) == redactor.text(leaked).encode()
    assert redactor
    assert not Redactor([None, "tiny"])


def test_redactor_masks_the_longer_of_overlapping_secrets_whole() -> None:
    redactor = Redactor([SECRET, SECRET + "-extended"])

    assert redactor.text(f"k={SECRET}-extended") == f"k={MASK}"
