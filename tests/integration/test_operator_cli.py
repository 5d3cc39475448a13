"""``switchman operator`` without a cluster to log in to: one clear line and exit 2, as a process.

What a real run showed: with no kubeconfig, kopf logged a traceback every 60 s forever. Each
case starts the real CLI (``python -m switchman.cli.main operator``) in a scratch directory with
a scrubbed environment (no ``KUBECONFIG``, an empty ``HOME``, no service-account variables) and
expects it to exit on its own, well inside the timeout, with exactly one line on stderr that
names what to set, and no traceback. ``missing_credentials`` itself is checked to accept the two
sources that do work (a kubeconfig with a current context; a Pod's service-account token), so the
check can not refuse a real cluster.

    case                          | environment                        | expect
    ------------------------------|------------------------------------|-------------------------
    nothing                       | no KUBECONFIG, empty HOME          | exit 2, one line
    KUBECONFIG names no file      | KUBECONFIG=/nonexistent            | exit 2, one line, path
    KUBECONFIG without a context  | a kubeconfig with no contexts      | exit 2, one line
    a usable kubeconfig           | server, user, current context      | no problem found
    in a Pod                      | KUBERNETES_SERVICE_HOST + token    | no problem found
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from switchman.operator.kube import missing_credentials

TIMEOUT = 60.0  # the CLI imports kopf and the client; generous for a loaded CI box


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
    }
    argv = [sys.executable, "-m", "switchman.cli.main", "operator", "--namespace", "team-a"]
    # cwd: not the repository root, whose operator/ folder would shadow the module name.
    return subprocess.run(
        argv,
        cwd=tmp_path,
        env={**clean, "HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("switchman operator: no Kubernetes credentials"), lines[0]
    assert "Set KUBECONFIG" in lines[0]
    return lines[0]


def test_no_kubeconfig_at_all(tmp_path: Path) -> None:
    line = _one_clear_line(_run(tmp_path))
    assert "~/.kube/config" in line


def test_kubeconfig_naming_no_file(tmp_path: Path) -> None:
    line = _one_clear_line(_run(tmp_path, KUBECONFIG=str(tmp_path / "nonexistent")))
    assert str(tmp_path / "nonexistent") in line


def test_kubeconfig_without_a_context(tmp_path: Path) -> None:
    empty = tmp_path / "kubeconfig"
    empty.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": []}))
    _one_clear_line(_run(tmp_path, KUBECONFIG=str(empty)))


def test_a_usable_kubeconfig_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert missing_credentials(tmp_path / "no-token") is None


def test_a_pods_service_account_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nonexistent"))
    assert missing_credentials(token) is None
    assert missing_credentials(tmp_path / "no-token") is not None
