"""Client API formats other than OpenAI's chat/completions, met at the edges of the chat pipeline.

The mirror of ``providers/`` (upstream formats). Translators are named ``{in}_{out}``:
``anthropic_openai`` (an Anthropic Messages request as a chat.completions body) and
``anthropic_openai_stream`` (the chat pipeline's answers back as Anthropic Messages and events);
``responses_openai`` / ``responses_openai_stream`` the same for the OpenAI Responses API. The
endpoints (``messages``, ``responses``, ``models``) hand the translated request to the same
``serve.proxy`` as chat, so routes, capability filters, failover and mid-stream continuation
work unchanged; ``translation`` is what they give the proxy, ``writer`` the stream response that
re-encodes chat chunks in the client's format.
"""
