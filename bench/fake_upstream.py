"""A fast fake OpenAI-compatible upstream for the side-by-side benchmark: nginx answering from
memory.

Used by ``bench.compare``. A Python simulator tops out near the gateway's own speed, so it would
measure itself; nginx (one worker process) answers a fixed chat completion at tens of thousands
of requests/s, so what is measured is the proxy in front of it. Each port answers one shape:
``json`` ports a whole chat completion, ``sse`` ports a streamed one (8 content chunks, a
finish chunk, a usage chunk and ``[DONE]``), whatever was posted; the benchmark routes
streamed requests to their own model name, so each proxy picks the right port by model.
nginx is the Debian ``nginx-light`` package (``bench/setup.sh`` installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_WORDS = ["Hello", " there", ",", " how", " can", " I", " help", "?"]


def completion() -> str:
    """The non-streamed answer: an OpenAI chat completion with usage."""
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(_WORDS)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 8, "total_tokens": 17},
        },
        separators=(",", ":"),
    )


def stream() -> str:
    """The streamed answer: SSE events as vLLM sends them, usage chunk last."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000}
    events = []
    for index, word in enumerate(_WORDS):
        delta = {"role": "assistant", "content": word} if index == 0 else {"content": word}
        events.append({**base, "model": "m", "choices": [_choice(delta, None)]})
    events.append({**base, "model": "m", "choices": [_choice({}, "stop")]})
    usage = {"prompt_tokens": 9, "completion_tokens": 8, "total_tokens": 17}
    events.append({**base, "model": "m", "choices": [], "usage": usage})
    lines = [f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events]
    return "".join(lines) + "data: [DONE]\n\n"


def _choice(delta: dict[str, str], finish: str | None) -> dict[str, object]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def _quoted(text: str) -> str:
    """An nginx single-quoted string (nginx turns ``\\n`` back into a newline)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


@dataclass
class FakeUpstream:
    """nginx serving ``json`` answers on ``json_ports`` and streams on ``sse_ports``."""

    workdir: Path
    json_ports: list[int]
    sse_ports: list[int]
    process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        d = self.workdir
        servers = []
        for ports, content_type, body in (
            (self.json_ports, "application/json", completion()),
            (self.sse_ports, "text/event-stream", stream()),
        ):
            for port in ports:
                servers.append(
                    f"  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n"
                    f"    location / {{ default_type {content_type}; "
                    f"return 200 {_quoted(body)}; }}\n  }}"
                )
        temp = " ".join(
            f"{name}_temp_path {d}/{name};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            f"worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\n"
            f"error_log {d}/nginx-error.log warn;\n"
            "events { worker_connections 8192; }\n"
            f"http {{\n  access_log off;\n  {temp}\n  keepalive_requests 100000000;\n"
            "  keepalive_timeout 120s;\n" + "\n".join(servers) + "\n}\n"
        )

    def start(self) -> subprocess.Popen[bytes]:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise RuntimeError(
                "nginx is not installed: run `bash bench/setup.sh` (make bench does)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        self.process = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(self.workdir), "-e", str(self.workdir / "e.log")]
        )
        return self.process
