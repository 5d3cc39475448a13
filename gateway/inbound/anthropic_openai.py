"""Anthropic Messages request -> OpenAI chat.completions body: how ``POST /v1/messages`` enters
the chat pipeline. The inverse of ``providers.openai_anthropic`` (which the Anthropic upstream
uses); the way back is ``anthropic_openai_stream``.

Called by ``messages`` (the endpoint) for every request. Pure functions on dicts, no I/O.
Malformed input raises ``InvalidRequest`` naming the field. What chat.completions cannot carry
is not rejected here (the request may yet be passed untouched to an Anthropic upstream): it is
listed in ``Translated.problems``, and ``translation.Translation`` refuses it with a 400 only
when a translated upstream is about to be called.

Choices where neither API reference decides:
- ``system`` becomes the first message (a string, or text parts for several blocks); a user
  turn's ``tool_result`` blocks become ``tool`` messages before its other content; a single text
  block is sent as a plain string (every chat template accepts that).
- ``image`` blocks become ``image_url`` parts (base64 as a ``data:`` URL); PDF ``document``
  blocks become ``file`` parts, plain-text documents text parts.
- ``tool_use`` ids are kept as the chat ``tool_calls`` ids (and come back unchanged).
- ``cache_control`` is dropped: OpenAI-compatible upstreams cache prefixes on their own (vLLM
  automatic prefix caching, OpenAI prompt caching) and the gateway's prefix affinity keeps a
  repeated prefix on one replica; Anthropic upstreams get the client's body untouched.
- ``top_k`` is passed on (vLLM honours it); ``metadata.user_id`` becomes ``user``.
- Dropped: ``thinking`` and ``redacted_thinking`` blocks of earlier turns, ``thinking``,
  ``service_tier``, ``citations``, ``is_error`` on tool results (the text stays).
- Problems (a 400 for translated upstreams only): server tools (``web_search_*``, ``bash_*``,
  ...), ``mcp_servers``, ``container``, images inside tool results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from switchman.gateway.errors import InvalidRequest

_PASSTHROUGH_ONLY = ("mcp_servers", "container", "context_management")


@dataclass(slots=True)
class Translated:
    """The chat body, and what it could not carry (message, param): refused by ``Translation``."""

    chat: dict[str, Any]
    problems: list[tuple[str, str]] = field(default_factory=list)


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def messages_to_chat(body: dict[str, Any]) -> Translated:
    """The chat.completions body for an Anthropic Messages body (see the module docstring)."""
    out = Translated(chat={})
    chat = out.chat
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model: Field required (a non-empty string)", "model")
    chat["model"] = model
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _invalid("max_tokens: Field required (a positive integer)", "max_tokens")
    chat["max_tokens"] = max_tokens
    messages = _system(body.get("system"))
    messages += _turns(body.get("messages"), out.problems)
    chat["messages"] = messages
    _sampling(body, chat)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid("stream: must be a boolean", "stream")
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # message_delta carries usage
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _invalid("metadata: must be an object", "metadata")
        user = metadata.get("user_id")
        if isinstance(user, str) and user:
            chat["user"] = user
    tools = _tools(body.get("tools"), out.problems)
    if tools:
        chat["tools"] = tools
    _tool_choice(body.get("tool_choice"), chat)
    _output_format(body.get("output_config"), chat)
    for name in _PASSTHROUGH_ONLY:
        if body.get(name) is not None:
            out.problems.append((f"{name}: only Anthropic upstreams support it", name))
    return out


def _sampling(body: dict[str, Any], chat: dict[str, Any]) -> None:
    for name in ("temperature", "top_p", "top_k"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _invalid(f"{name}: must be a number", name)
        chat[name] = value
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _invalid("stop_sequences: must be an array of strings", "stop_sequences")
        if stop:
            chat["stop"] = list(stop)


def _system(system: object) -> list[dict[str, Any]]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if not isinstance(system, list):
        raise _invalid("system: must be a string or an array of text blocks", "system")
    texts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _invalid(f"system.{i}: must be a text block", f"system.{i}")
        texts.append(_text(block, f"system.{i}"))
    if not texts:
        return []
    if len(texts) == 1:
        return [{"role": "system", "content": texts[0]}]
    return [{"role": "system", "content": [{"type": "text", "text": t} for t in texts]}]


def _text(block: dict[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _invalid(f"{where}.text: must be a string", f"{where}.text")
    return text


def _turns(messages: object, problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: must be a non-empty array", "messages")
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise _invalid(f"{where}: must be an object", where)
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise _invalid(f"{where}.content: must be a string or an array", f"{where}.content")
        if role == "user":
            out += _user(content, where, problems)
        elif role == "assistant":
            out.append(_assistant(content, where))
        else:
            raise _invalid(f"{where}.role: must be 'user' or 'assistant'", f"{where}.role")
    return out


def _user(blocks: list[Any], where: str, problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        here = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(block, dict) or not isinstance(kind, str):
            raise _invalid(f"{here}: must be a content block with a 'type'", here)
        if kind == "tool_result":
            results.append(_tool_result(block, here, problems))
        elif kind == "text":
            parts.append({"type": "text", "text": _text(block, here)})
        elif kind == "image":
            parts.append(_image(block.get("source"), f"{here}.source"))
        elif kind == "document":
            parts.append(_document(block.get("source"), block.get("title"), f"{here}.source"))
        else:
            problems.append((f"{here}: content block type {kind!r} needs an Anthropic model", here))
    out = results
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        out = [*results, {"role": "user", "content": parts[0]["text"] if only_text else parts}]
    return out


def _tool_result(
    block: dict[str, Any], where: str, problems: list[tuple[str, str]]
) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(f"{where}.tool_use_id: must be a non-empty string", f"{where}.tool_use_id")
    content = block.get("content", "")
    if isinstance(content, list):
        texts = []
        for k, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(_text(part, f"{where}.content.{k}"))
            else:
                problems.append(
                    (f"{where}.content.{k}: only text tool results can be translated", where)
                )
        content = "".join(texts)
    if not isinstance(content, str):
        raise _invalid(f"{where}.content: must be a string or an array", f"{where}.content")
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _image(source: object, where: str) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise _invalid(f"{where}: must be an object", where)
    if source.get("type") == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str) or not data:
            raise _invalid(f"{where}: needs string media_type and data", where)
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise _invalid(f"{where}.type: must be 'base64' or 'url'", f"{where}.type")


def _document(source: object, title: object, where: str) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise _invalid(f"{where}: must be an object", where)
    kind, data = source.get("type"), source.get("data")
    if kind == "text" and isinstance(data, str):
        return {"type": "text", "text": data}
    if kind == "base64" and source.get("media_type") == "application/pdf" and isinstance(data, str):
        file: dict[str, Any] = {"file_data": f"data:application/pdf;base64,{data}"}
        if isinstance(title, str) and title:
            file["filename"] = title
        return {"type": "file", "file": file}
    raise _invalid(f"{where}: only base64 PDF and text documents can be translated", where)


def _assistant(blocks: list[Any], where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        here = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(block, dict):
            raise _invalid(f"{here}: must be a content block", here)
        if kind == "text":
            texts.append(_text(block, here))
        elif kind == "tool_use":
            calls.append(_tool_use(block, here))
        elif kind in ("thinking", "redacted_thinking"):
            continue  # the model's own scratch work: not part of a chat transcript
        else:
            raise _invalid(f"{here}.type: {kind!r} cannot appear in an assistant turn here", here)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return message


def _tool_use(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(f"{where}.id: must be a non-empty string", f"{where}.id")
    if not isinstance(name, str) or not name:
        raise _invalid(f"{where}.name: must be a non-empty string", f"{where}.name")
    tool_input = block.get("input", {})
    if not isinstance(tool_input, dict):
        raise _invalid(f"{where}.input: must be an object", f"{where}.input")
    arguments = json.dumps(tool_input, separators=(",", ":"), ensure_ascii=False)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tools(tools: object, problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("tools: must be an array", "tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise _invalid(f"{where}: must be an object", where)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            problems.append((f"{where}: server tool {kind!r} needs an Anthropic model", where))
            continue
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise _invalid(f"{where}.name: must be a non-empty string", f"{where}.name")
        if not isinstance(schema, dict):
            raise _invalid(f"{where}.input_schema: must be a JSON Schema object", where)
        function: dict[str, Any] = {"name": name, "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if tool.get("strict") is True:
            function["strict"] = True
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: object, chat: dict[str, Any]) -> None:
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or kind not in ("auto", "any", "tool", "none"):
        raise _invalid("tool_choice.type: must be auto, any, tool or none", "tool_choice")
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid("tool_choice.name: required for type 'tool'", "tool_choice.name")
        chat["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        chat["parallel_tool_calls"] = False


def _output_format(config: object, chat: dict[str, Any]) -> None:
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    if kind != "json_schema" or not isinstance(schema, dict):
        param = "output_config.format"
        raise _invalid(f"{param}: must be {{'type': 'json_schema', 'schema': {{...}}}}", param)
    chat["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
