"""A vLLM-compatible simulator for tests, demos and benchmarks (``switchman sim``).

Speaks vLLM's OpenAI server API and metrics with a latency model and run-time fault injection.
Independent of the gateway: it stands in for the upstreams the gateway talks to.
"""
