"""Request bodies → the few parameters the simulator acts on, validated like vLLM validates them.

Parses ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings`` bodies into
``GenerationParams`` / ``EmbeddingParams``, checks the context length with vLLM's rules and
messages, and decides how many tokens an answer has. Every problem is raised as a vLLM-shaped
400 (``switchman.sim.errors``). Called by ``switchman.sim.generation`` and
``switchman.sim.embeddings``; everything else in a body is accepted and ignored, as vLLM does.

vLLM's chat extras ``continue_final_message`` and ``add_generation_prompt`` are honoured: with
the first set (which requires the second to be ``false``, and the last message to be the
assistant's), the model continues that message. Its prompt tokens include the partial text; its
answer is the rest of the answer it would give the conversation without the partial message,
after as many words as the partial has (``seed`` and ``partial``), so a cut answer plus its
continuation equals the uncut one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from switchman.sim import errors
from switchman.sim.text import render_chat, tokenize


@dataclass(slots=True, frozen=True)
class GenerationParams:
    """A chat or text completion request, reduced to what shapes the simulated answer."""

    kind: Literal["chat", "completion"]
    model: str | None
    prompt: str
    tokens: list[str]
    max_tokens: int | None
    stream: bool
    include_usage: bool
    ignore_eos: bool
    min_tokens: int
    seed: str  # the prompt whose deterministic answer is given: ``prompt`` unless continuing
    partial: str  # the assistant text being continued ("" when not continuing)
    continued: int  # answer words already in ``partial``


@dataclass(slots=True, frozen=True)
class EmbeddingParams:
    model: str | None
    inputs: list[str]
    base64: bool


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise errors.bad_request(f"JSON decode error: {exc}") from exc
    if not isinstance(body, dict):
        raise errors.bad_request("The request body must be a JSON object.")
    return body


def chat_params(body: dict[str, Any]) -> GenerationParams:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise errors.bad_request("`messages` must be a non-empty list.", param="messages")
    turns: list[tuple[str, str]] = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise errors.bad_request("Each message needs a string `role`.", param="messages")
        turns.append((message["role"], _content_text(message.get("content"))))
    max_tokens = _optional_int(body, "max_completion_tokens") or _optional_int(body, "max_tokens")
    prompt = render_chat(turns)
    if not _continues(body, turns):
        return _generation(body, "chat", prompt, max_tokens)
    return _generation(body, "chat", prompt, max_tokens, render_chat(turns[:-1]), turns[-1][1])


def completion_params(body: dict[str, Any]) -> GenerationParams:
    return _generation(body, "completion", _prompt_text(body.get("prompt")), None)


def embedding_params(body: dict[str, Any]) -> EmbeddingParams:
    raw = body.get("input")
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        inputs = list(raw)
    elif isinstance(raw, list) and raw and all(isinstance(item, int) for item in raw):
        inputs = [_ids_text(raw)]
    elif isinstance(raw, list) and raw and all(isinstance(item, list) for item in raw):
        inputs = [_ids_text(item) for item in raw]
    else:
        raise errors.bad_request(
            "`input` must be a string, a list of strings or token ids.", param="input"
        )
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise errors.bad_request("`encoding_format` must be float or base64.", param="encoding")
    return EmbeddingParams(model=_model(body), inputs=inputs, base64=encoding == "base64")


def check_context(limit: int, prompt_tokens: int, max_tokens: int | None) -> None:
    """vLLM's rules: the prompt must leave room for one token, and for ``max_tokens`` if set."""
    if prompt_tokens >= limit:
        raise errors.prompt_too_long(limit, prompt_tokens)
    if max_tokens is not None and prompt_tokens + max_tokens > limit:
        raise errors.max_tokens_too_large(limit, prompt_tokens, max_tokens)


def answer_length(params: GenerationParams, natural: int, limit: int) -> tuple[int, str]:
    """Tokens to generate and the finish reason.

    The simulated model "stops" after ``natural`` tokens unless ``max_tokens`` (by default the
    room left in the context, as in vLLM) cuts it first; ``ignore_eos`` makes it run to the
    budget and ``min_tokens`` lengthens short answers.
    """
    budget = params.max_tokens if params.max_tokens is not None else limit - len(params.tokens)
    if params.continued:  # the words already written count towards the natural length
        natural = max(natural - params.continued, 1)
    count = budget if params.ignore_eos else min(max(natural, params.min_tokens), budget)
    return count, "length" if count >= budget else "stop"


def _generation(
    body: dict[str, Any],
    kind: Literal["chat", "completion"],
    prompt: str,
    max_tokens: int | None,
    seed: str | None = None,
    partial: str = "",
) -> GenerationParams:
    if max_tokens is None:
        max_tokens = _optional_int(body, "max_tokens")
    if max_tokens is not None and max_tokens < 1:
        raise errors.bad_request(f"max_tokens must be at least 1, got {max_tokens}.", "max_tokens")
    stream = body.get("stream") is True
    options = body.get("stream_options")
    if options is not None and not stream:
        raise errors.bad_request(
            "Stream options can only be defined when `stream=True`.", param="stream_options"
        )
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    tokens = tokenize(prompt)
    return GenerationParams(
        kind=kind,
        model=_model(body),
        prompt=prompt,
        tokens=tokens,
        max_tokens=max_tokens,
        stream=stream,
        include_usage=include_usage,
        ignore_eos=body.get("ignore_eos") is True,
        min_tokens=_optional_int(body, "min_tokens") or 0,
        seed=prompt if seed is None else seed,
        partial=partial,
        continued=len(partial.split()),
    )


def _continues(body: dict[str, Any], turns: list[tuple[str, str]]) -> bool:
    """Whether the model continues the final (assistant) message, checked as vLLM checks it."""
    add_prompt = _optional_bool(body, "add_generation_prompt")
    if not _optional_bool(body, "continue_final_message"):
        return False
    if add_prompt is not False:  # omitted means true: vLLM's request model passes it, the
        # chat template (transformers) refuses it
        raise errors.bad_request(
            "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
            if add_prompt
            else "continue_final_message and add_generation_prompt are not compatible "
            "(add_generation_prompt defaults to true: set it to false to continue the final "
            "message).",
            param="add_generation_prompt",
        )
    if turns[-1][0] != "assistant":
        raise errors.bad_request(
            "continue_final_message is set but the final message is not from the assistant "
            f"(its role is {turns[-1][0]!r}).",
            param="messages",
        )
    return True


def _model(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise errors.bad_request("`model` must be a string.", param="model")
    return model


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.bad_request(f"`{key}` must be an integer.", param=key)
    return value


def _optional_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise errors.bad_request(f"`{key}` must be a boolean.", param=key)


def _content_text(content: object) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    raise errors.bad_request("Message `content` must be a string or a list of parts.", "messages")


def _prompt_text(prompt: object) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        return _prompt_text(prompt[0])
    if isinstance(prompt, list) and prompt and all(isinstance(item, int) for item in prompt):
        return _ids_text(prompt)
    raise errors.bad_request(
        "`prompt` must be one string or one list of token ids (the simulator serves one "
        "prompt per request).",
        param="prompt",
    )


def _ids_text(ids: list[Any]) -> str:
    """Token ids as text with one word per id, so the token count is preserved."""
    return " ".join(str(token) for token in ids)
