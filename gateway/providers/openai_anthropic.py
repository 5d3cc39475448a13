"""OpenAI chat.completions -> Anthropic Messages: the request body. The way back (whole and
streamed responses, upstream errors) is ``openai_anthropic_stream``; its public names are
re-exported here so the Anthropic provider in this package imports one module.

The provider calls ``chat_to_messages`` to build the ``POST /v1/messages`` body, then
``messages_to_chat`` / ``MessagesStreamTranslator`` on the answer and ``error_to_openai`` on a
non-2xx one. Pure functions on dicts, no I/O.

Choices where neither API reference decides:
- ``system``/``developer`` messages, wherever they appear, become the top-level ``system`` (a
  string for one text, else text blocks in order); consecutive same-role turns are merged; ``tool``
  messages become ``tool_result`` blocks of a user turn, placed before its other blocks.
- ``temperature``/``top_p`` pass under ``anthropic-version`` 2023-06-01 when within Anthropic's
  0..1 (OpenAI allows temperature up to 2: beyond 1 is an ``InvalidRequest``, not a silent clamp).
  Version 2026-10-21 removed both (a 400 even at default values): from it on they are dropped.
- ``response_format`` ``json_schema`` becomes ``output_config.format`` (structured outputs);
  ``json_object`` has no Anthropic equivalent and is rejected.
- Rejected (``InvalidRequest`` naming the field): ``n`` > 1, ``logprobs``, ``top_logprobs``,
  ``functions``/``function_call``/role ``function`` (use tools), ``audio`` and audio
  ``modalities``, ``web_search_options``, custom tools, an ``allowed_tools`` tool choice, audio
  input, file ids and non-PDF files.
- Dropped: ``frequency_penalty``, ``presence_penalty``, ``logit_bias``, ``seed``,
  ``stream_options`` (the caller reads ``include_usage``), ``store``, ``metadata``,
  ``service_tier``, ``prediction``, ``prompt_cache_*``, ``reasoning_effort``, ``verbosity``,
  ``moderation``, image ``detail``, message ``name``, any field not named here, and
  ``tool_choice``/``parallel_tool_calls`` when no tools are given.
"""

from __future__ import annotations

import json
from typing import Any

from switchman.gateway.errors import InvalidRequest
from switchman.gateway.providers.openai_anthropic_stream import (
    MessagesStreamTranslator,
    StreamError,
    error_to_openai,
    messages_to_chat,
)

__all__ = [
    "DEFAULT_API_VERSION",
    "MessagesStreamTranslator",
    "StreamError",
    "chat_to_messages",
    "error_to_openai",
    "messages_to_chat",
]

DEFAULT_API_VERSION = "2023-06-01"
_SAMPLING_REMOVED = "2026-10-21"  # the anthropic-version that removed temperature and top_p
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_UNSUPPORTED = {
    "functions": "'functions' is deprecated and not supported for Anthropic models; use 'tools'",
    "function_call": "'function_call' is not supported for Anthropic models; use 'tool_choice'",
    "audio": "audio output is not supported by Anthropic models",
    "web_search_options": "'web_search_options' is not supported for Anthropic models",
    "top_logprobs": "'top_logprobs' is not supported by Anthropic models",
}


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def chat_to_messages(
    body: dict[str, Any],
    model_id: str,
    *,
    default_max_tokens: int,
    api_version: str = DEFAULT_API_VERSION,
) -> dict[str, Any]:
    """Anthropic Messages request body for an OpenAI chat.completions body.

    ``api_version`` is the ``anthropic-version`` header the request will carry.
    Raises ``InvalidRequest`` (with ``param``) for malformed or untranslatable input.
    """
    _reject_unsupported(body)
    system, messages = _conversation(body.get("messages"))
    request: dict[str, Any] = {
        "model": model_id,
        "max_tokens": _max_tokens(body, default_max_tokens),
        "messages": messages,
    }
    if system:
        request["system"] = system
    request.update(_sampling(body, api_version))
    stop = _stop_sequences(body.get("stop"))
    if stop:
        request["stop_sequences"] = stop
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean", "stream")
    if stream:
        request["stream"] = True
    for field in ("safety_identifier", "user"):  # OpenAI's current name first
        user = body.get(field)
        if user is not None and not isinstance(user, str):
            raise _invalid(f"'{field}' must be a string", field)
        if user:
            request["metadata"] = {"user_id": user}
            break
    tools = _tools(body.get("tools"))
    if tools:
        request["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            request["tool_choice"] = choice
    output_format = _output_format(body.get("response_format"))
    if output_format is not None:
        request["output_config"] = {"format": output_format}
    return request


def _reject_unsupported(body: dict[str, Any]) -> None:
    for field, message in _UNSUPPORTED.items():
        if body.get(field) is not None:
            raise _invalid(message, field)
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n != 1):
        raise _invalid("Anthropic models return one choice: 'n' must be 1", "n")
    if body.get("logprobs"):
        raise _invalid("'logprobs' is not supported by Anthropic models", "logprobs")
    modalities = body.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        raise _invalid("audio output is not supported by Anthropic models", "modalities")


def _max_tokens(body: dict[str, Any], default: int) -> int:
    found: list[int] = []
    for field in ("max_completion_tokens", "max_tokens"):  # the first is OpenAI's current name
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _invalid(f"'{field}' must be a positive integer", field)
        found.append(value)
    return found[0] if found else default


def _sampling(body: dict[str, Any], api_version: str) -> dict[str, float]:
    result: dict[str, float] = {}
    for field in ("temperature", "top_p"):
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _invalid(f"'{field}' must be a number", field)
        if api_version >= _SAMPLING_REMOVED:
            continue
        if not 0 <= value <= 1:
            raise _invalid(f"'{field}' must be between 0 and 1 for Anthropic models", field)
        result[field] = value
    return result


def _stop_sequences(stop: object) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return [item for item in stop if item]
    raise _invalid("'stop' must be a string or an array of strings", "stop")


def _conversation(messages: object) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(messages, list) or not messages:
        raise _invalid("'messages' must be a non-empty array", "messages")
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid(f"{where} must be an object", where)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_texts(_required(message, where), f"{where}.content"))
            continue
        if role == "user":
            turn_role, blocks = "user", _user_blocks(_required(message, where), f"{where}.content")
        elif role == "assistant":
            turn_role, blocks = "assistant", _assistant_blocks(message, where)
        elif role == "tool":
            turn_role, blocks = "user", [_tool_result(message, where)]
        elif role == "function":
            raise _invalid(
                "role 'function' is deprecated and not supported; use 'tool'", f"{where}.role"
            )
        else:
            raise _invalid(
                f"{where}.role must be system, developer, user, assistant or tool", f"{where}.role"
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})
    _trim_prefill(turns)
    if not turns:
        raise _invalid("'messages' needs a user or assistant message with content", "messages")
    for turn in turns:
        # Anthropic requires tool_result blocks first in their user turn (a stable sort).
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    if len(system) == 1:
        return system[0], turns
    return [{"type": "text", "text": text} for text in system], turns


def _trim_prefill(turns: list[dict[str, Any]]) -> None:
    """A final assistant turn is a prefill Anthropic continues; it must not end in whitespace.

    Streams cut after a space or newline token are continued this way (mid-stream failover).
    """
    if not turns or turns[-1]["role"] != "assistant":
        return
    blocks = turns[-1]["content"]
    if blocks and blocks[-1].get("type") == "text":
        text = blocks[-1]["text"].rstrip()
        if text:
            blocks[-1] = {**blocks[-1], "text": text}
        else:
            blocks.pop()
    if not blocks:
        turns.pop()


def _required(message: dict[str, Any], where: str) -> object:
    content = message.get("content")
    if content is None:
        raise _invalid(f"{where}.content is required", f"{where}.content")
    return content


def _texts(content: object, where: str) -> list[str]:
    """Non-empty texts of a string or text-part array (Anthropic rejects empty text blocks)."""
    if isinstance(content, str):
        return [content] if content else []
    if not isinstance(content, list):
        raise _invalid(f"{where} must be a string or an array of text parts", where)
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise _invalid(f"{where}[{j}] must be a text part", f"{where}[{j}]")
        texts.append(_text_of(part, f"{where}[{j}]"))
    return [text for text in texts if text]


def _text_of(part: dict[str, Any], where: str) -> str:
    text = part.get("text")
    if not isinstance(text, str):
        raise _invalid(f"{where}.text must be a string", f"{where}.text")
    return text


def _user_blocks(content: object, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _invalid(f"{where} must be a string or an array of content parts", where)
    blocks = []
    for j, part in enumerate(content):
        here = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part, dict):
            text = _text_of(part, here)
            if text:
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url" and isinstance(part, dict):
            blocks.append(_image(part.get("image_url"), f"{here}.image_url"))
        elif kind == "file" and isinstance(part, dict):
            blocks.append(_document(part.get("file"), f"{here}.file"))
        elif kind == "input_audio":
            raise _invalid("audio input is not supported by Anthropic models", here)
        else:
            raise _invalid(f"{here} must be a text, image_url or file part", here)
    return blocks


def _data_url(url: str, where: str) -> tuple[str, str]:
    header, comma, data = url[len("data:") :].partition(",")
    params = header.split(";")
    if not comma or "base64" not in params[1:] or not data:
        raise _invalid(f"{where} must be a base64 data: URL", where)
    return params[0].strip().lower(), data


def _image(image_url: object, where: str) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else None
    if not isinstance(url, str) or not url:
        raise _invalid(f"{where}.url must be a string", f"{where}.url")
    scheme = url[:8].lower()
    if scheme.startswith("data:"):
        media_type, data = _data_url(url, f"{where}.url")
        if media_type not in _IMAGE_TYPES:
            raise _invalid(
                f"image type {media_type!r} is not supported (jpeg, png, gif, webp)", f"{where}.url"
            )
        source = {"type": "base64", "media_type": media_type, "data": data}
        return {"type": "image", "source": source}
    if scheme.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _invalid(f"{where}.url must be an http(s) URL or a base64 data: URL", f"{where}.url")


def _document(file: object, where: str) -> dict[str, Any]:
    if not isinstance(file, dict):
        raise _invalid(f"{where} must be an object", where)
    data_url = file.get("file_data")
    if not isinstance(data_url, str) or not data_url.lower().startswith("data:"):
        raise _invalid(
            "only PDF files given inline as 'file_data' data: URLs can be sent to Anthropic",
            f"{where}.file_data",
        )
    media_type, data = _data_url(data_url, f"{where}.file_data")
    if media_type != "application/pdf":
        raise _invalid(f"file type {media_type!r} is not supported (PDF)", f"{where}.file_data")
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }
    if isinstance(file.get("filename"), str) and file["filename"]:
        block["title"] = file["filename"]
    return block


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    content = message.get("content")
    tool_calls = message.get("tool_calls")
    refusal = message.get("refusal")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, list):
        for j, part in enumerate(content):
            here = f"{where}.content[{j}]"
            if isinstance(part, dict) and part.get("type") == "refusal":
                text = part.get("refusal")
                if not isinstance(text, str):
                    raise _invalid(f"{here}.refusal must be a string", f"{here}.refusal")
            elif isinstance(part, dict) and part.get("type") == "text":
                text = _text_of(part, here)
            else:
                raise _invalid(f"{here} must be a text or refusal part", here)
            if text:
                blocks.append({"type": "text", "text": text})
    elif isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif content is not None:
        raise _invalid(f"{where}.content must be a string or an array", f"{where}.content")
    elif isinstance(refusal, str) and refusal:
        blocks.append({"type": "text", "text": refusal})
    elif not tool_calls:
        raise _invalid(f"{where}.content is required without tool_calls", f"{where}.content")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise _invalid(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
        for j, call in enumerate(tool_calls):
            blocks.append(_tool_use(call, f"{where}.tool_calls[{j}]"))
    return blocks


def _tool_use(call: object, where: str) -> dict[str, Any]:
    if not isinstance(call, dict) or call.get("type", "function") != "function":
        raise _invalid(f"{where} must be a function tool call", where)
    call_id = call.get("id")
    function = call.get("function")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(f"{where}.id must be a non-empty string", f"{where}.id")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(function, dict) or not isinstance(name, str) or not name:
        raise _invalid(f"{where}.function.name must be a non-empty string", f"{where}.function")
    arguments = function.get("arguments")
    param = f"{where}.function.arguments"
    if not isinstance(arguments, str):
        raise _invalid(f"{param} must be a string of JSON", param)
    try:
        tool_input = json.loads(arguments) if arguments.strip() else {}
    except ValueError as exc:
        raise _invalid(f"{param} is not valid JSON", param) from exc
    if not isinstance(tool_input, dict):
        raise _invalid(f"{param} must be a JSON object", param)
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input}


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(f"{where}.tool_call_id must be a non-empty string", f"{where}.tool_call_id")
    content = _required(message, where)
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        texts = _texts(content, f"{where}.content")
        if texts:
            block["content"] = [{"type": "text", "text": text} for text in texts]
    return block


def _tools(tools: object) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("'tools' must be an array", "tools")
    result = []
    for j, tool in enumerate(tools):
        where = f"tools[{j}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise _invalid(f"{where}: only function tools can be sent to Anthropic", where)
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(name, str) or not name:
            raise _invalid(f"{where}.function.name must be a non-empty string", f"{where}.function")
        schema = function.get("parameters")
        if schema is not None and not isinstance(schema, dict):
            param = f"{where}.function.parameters"
            raise _invalid(f"{param} must be a JSON Schema object", param)
        entry: dict[str, Any] = {
            "name": name,
            # OpenAI: omitted parameters mean no parameters; Anthropic needs an object schema.
            "input_schema": schema or {"type": "object", "properties": {}},
        }
        description = function.get("description")
        if isinstance(description, str) and description:
            entry["description"] = description
        if function.get("strict") is True:
            entry["strict"] = True
        result.append(entry)
    return result


def _tool_choice(choice: object, parallel: object) -> dict[str, Any] | None:
    result: dict[str, Any] | None
    if choice is None:
        result = None
    elif choice in ("auto", "none"):
        result = {"type": choice}
    elif choice == "required":
        result = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise _invalid("'tool_choice.function.name' must be a string", "tool_choice")
        result = {"type": "tool", "name": name}
    else:
        raise _invalid(
            "'tool_choice' must be auto, none, required or a named function", "tool_choice"
        )
    if parallel is not None and not isinstance(parallel, bool):
        raise _invalid("'parallel_tool_calls' must be a boolean", "parallel_tool_calls")
    if parallel is False:
        result = result or {"type": "auto"}
        if result["type"] != "none":  # Anthropic's "none" choice has no such field
            result["disable_parallel_tool_use"] = True
    return result


def _output_format(response_format: object) -> dict[str, Any] | None:
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_schema" and isinstance(response_format, dict):
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            param = "response_format.json_schema.schema"
            raise _invalid(f"'{param}' must be a JSON Schema object", param)
        return {"type": "json_schema", "schema": schema}
    raise _invalid(
        f"response_format type {kind!r} is not supported for Anthropic models; use 'json_schema'",
        "response_format",
    )
