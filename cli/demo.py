"""``switchman demo``: the gateway in front of two simulated vLLM backends, no cluster, no keys.

Starts ``small`` (fast, cheap) and ``large`` (slower, pricier) simulators on free ports, writes
the embedded GatewayConfig to a temporary file (edit it while the demo runs to watch a hot
reload), serves the gateway, prints copy-pasteable curl and openai-SDK snippets, and stops
everything cleanly on Ctrl-C. The gateway is composed exactly as ``switchman gateway`` composes
it (``switchman.gateway.app.compose``): the same metric series, tracing from the standard
``OTEL_*`` variables (``OTEL_TRACES_EXPORTER=console switchman demo`` prints spans), and an
access log when ``--access-log`` asks for one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from switchman.api.gatewayconfig import ConfigError
from switchman.cli import demo_tenants
from switchman.gateway.acceptor import AcceptorSite
from switchman.gateway.app import compose
from switchman.gateway.listener import GatewayRunner
from switchman.gateway.telemetry.tracing import TracingConfigError
from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

EMBEDDED_CONFIG = """\
# Switchman demo config (GatewayConfig v1). Edit and save: the gateway reloads it.
version: 1
upstreams:
  - name: sim-small
    kind: openai
    base_url: http://127.0.0.1:{small_port}/v1
    scrape: {{interval_s: 1}}            # the simulator exposes vLLM's metrics
    health_check: {{interval_s: 2}}
    continuation: vllm                  # a cut stream continues with continue_final_message
  - name: sim-large
    kind: openai
    base_url: http://127.0.0.1:{large_port}/v1
    scrape: {{interval_s: 1}}
    health_check: {{interval_s: 2}}
    continuation: vllm
models:
  - name: small
    upstream: sim-small
    tier: small
    capabilities: {{tools: true, context_window: 8192}}
    price: {{input_per_mtok: 0.10, output_per_mtok: 0.40}}
  - name: large
    upstream: sim-large
    tier: large
    capabilities: {{vision: true, tools: true, json_schema: true, context_window: 32768}}
    price: {{input_per_mtok: 2.50, output_per_mtok: 10.00}}
routes:
  - name: auto                          # easy prompts to small, hard ones to large
    candidates: [small, large]
    strategy: complexity
    complexity: {{mode: balanced}}      # quality | balanced | cost (docs/classifier.md)
  - name: cheap                         # always the cheapest that can serve the request
    candidates: [large, small]
    strategy: cheapest
  - name: canary                        # 90/10 split, the other one as the fallback
    candidates: [small, large]
    strategy: weighted
    split: {{small: 90, large: 10}}
"""

# Latency profiles: a small model answers sooner and faster than a large one.
SMALL = SimSettings(model="small", ttft_s=0.02, itl_s=0.01, max_model_len=8192)
LARGE = SimSettings(model="large", ttft_s=0.12, itl_s=0.03, max_model_len=32768)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="gateway address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="gateway port (default 8080)")
    parser.add_argument(
        "--access-log",
        choices=("json", "text", "off"),
        default="off",
        help="one line per request on stdout (default off: the demo prints its guide there)",
    )
    parser.add_argument(
        "--tenants",
        action="store_true",
        help="require keys: two example tenants, team-a (5 requests/minute) and team-b (a small "
        "daily budget); prints their keys",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="with --tenants: share limits and budgets through this Redis (redis://host:6379/0)",
    )


def snippets(gateway: str, small: str, config: Path) -> str:
    return f"""
Switchman demo is running.
  gateway     {gateway}   (routes "auto" (complexity), "cheap", "canary"; models "small", "large")
  config      {config}   (edit it: the gateway hot-reloads)
  simulators  small {small}

Try it:

  curl -s {gateway}/v1/chat/completions -H 'content-type: application/json' -D - \\
    -d '{{"model": "auto", "messages": [{{"role": "user", "content": "Hello"}}]}}'

  curl -sN {gateway}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{{"model": "auto", "stream": true, "messages": [{{"role": "user", "content": "Hi"}}]}}'

  python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{gateway}/v1", api_key="unused")
reply = client.chat.completions.with_raw_response.create(
    model="auto", messages=[{{"role": "user", "content": "Hello"}}])
print(reply.headers["x-switchman-route"], "->", reply.parse().choices[0].message.content)
PY

The same routes speak Anthropic's Messages API and OpenAI's Responses API:

  python - <<'PY'
import anthropic, openai
claude = anthropic.Anthropic(base_url="{gateway}", api_key="unused")
print(claude.messages.create(model="auto", max_tokens=64,
                             messages=[{{"role": "user", "content": "Hello"}}]).content[0].text)
print(openai.OpenAI(base_url="{gateway}/v1", api_key="unused").responses.create(
    model="auto", input="Hello").output_text)
PY

A hard prompt goes to the large model (x-switchman-route gives the complexity score):

  curl -s {gateway}/v1/chat/completions -H 'content-type: application/json' -D - -o /dev/null \
    -d '{{"model": "auto", "messages": [{{"role": "user", "content": "Prove step by step that \
the halting problem is undecidable, then design a distributed algorithm for consensus."}}]}}'

Break the small backend and watch "auto" fail over to large (x-switchman-route says why):

  curl -s -X POST {small}/admin/faults -d '{{"down": true}}'
  curl -s -X POST {small}/admin/faults -d '{{"down": false}}'

Cut streams mid-way and watch them continue on the other model, as one stream:

  curl -s -X POST {small}/admin/faults -d '{{"cut_after_tokens": 3}}'

Recent decisions with candidates, scores and filters: {gateway}/debug/decisions
Also: {gateway}/v1/models  {gateway}/readyz  {gateway}/metrics
Press Ctrl-C to stop.
"""


async def _serve(args: argparse.Namespace) -> int:
    sims: list[RunningSim] = []
    runner: web.AppRunner | None = None
    try:
        small = await start(SMALL)
        sims.append(small)
        large = await start(LARGE)
        sims.append(large)
        config = Path(tempfile.mkdtemp(prefix="switchman-demo-")) / "gateway.yaml"
        text = EMBEDDED_CONFIG.format(small_port=small.port, large_port=large.port)
        keys: dict[str, str] = {}
        if args.tenants:
            block, keys = demo_tenants.write(config.parent, args.redis)
            text += block
        config.write_text(text)
        try:
            app = compose(config, os.environ, access_log=args.access_log)
        except (ConfigError, TracingConfigError) as exc:
            print(f"switchman demo: {exc}", file=sys.stderr)
            return 2
        # The production listener: the demo gets the same edge guards as ``switchman gateway``.
        runner = GatewayRunner(app, access_log=None, shutdown_timeout=5)
        await runner.setup()
        try:
            await AcceptorSite(runner, args.host, args.port).start()
        except OSError as exc:
            print(
                f"switchman demo: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
                "pick another port with --port",
                file=sys.stderr,
            )
            return 1
        print(snippets(f"http://{args.host}:{args.port}", small.url, config), flush=True)
        if keys:
            print(demo_tenants.guide(keys, f"http://{args.host}:{args.port}"), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        print("\nstopping: draining in-flight requests...", flush=True)
        return 0
    finally:
        if runner is not None:
            await runner.cleanup()
        for sim in sims:
            await sim.close()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(_serve(args))
