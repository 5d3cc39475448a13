"""Wire protocols of upstream APIs: how one OpenAI-shaped request becomes an upstream HTTP request
and how the answer (whole or streamed) becomes OpenAI-shaped again. Used by switchman.gateway.proxy.
"""
