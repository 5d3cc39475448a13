"""Client API formats other than OpenAI's chat/completions, met at the edges of the chat pipeline.

The mirror of ``providers/`` (upstream formats). Translators are named ``{in}_{out}``:
``anthropic_openai`` (an Anthropic Messages request as a chat.completions body) and
``anthropic_openai_stream`` (the chat pipeline's answers back as Anthropic Messages and events);
``responses_openai`` / ``responses_openai_stream`` the same for the OpenAI Responses API. The
endpoints (``messages``, ``responses``) hand the translated request to the same ``serve.proxy``
as chat, so routes, capability filters, failover and mid-stream continuation work unchanged;
``translation`` is what they give the proxy, ``writer`` the stream response that re-encodes
chat chunks in the client's format, ``native`` the decoder that relays an Anthropic upstream's
stream to an Anthropic client as it is. Beside them: ``count_tokens`` (Messages token counts by
the model's own tokenizer), ``models`` (``/v1/models[/{id}]`` in OpenAI's or Anthropic's shape)
and ``passthrough`` / ``passthrough_body`` (images, audio, moderations and rerank, forwarded to
models that declare them).
"""
