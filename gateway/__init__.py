"""The data plane: one OpenAI-compatible endpoint over in-cluster vLLM and external providers.

Reads a GatewayConfig file (switchman.api.gatewayconfig) and never talks to the Kubernetes API.
Entry point: ``switchman.gateway.app.create_app``.
"""
