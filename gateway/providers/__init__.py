"""Wire protocols of upstream APIs: how one OpenAI-shaped request becomes an upstream HTTP request
and how the answer (whole or streamed) becomes OpenAI-shaped again. Used by one attempt,
``switchman.gateway.serve.attempt``, and by the upstream clients in ``switchman.gateway.upstreams``.
"""
