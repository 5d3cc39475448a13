"""OpenAI Responses request -> chat.completions body: how ``POST /v1/responses`` enters the chat
pipeline. The way back is ``responses_openai_stream``.

Called by ``responses`` (the endpoint) for every request. Pure functions on dicts, no I/O;
malformed or unsupported input raises ``InvalidRequest`` naming the field.

Choices where the API reference leaves room:
- The gateway is stateless: ``previous_response_id``, ``conversation``, ``store: true`` and
  ``background: true`` are refused with a 400 that says so (send the whole conversation as
  ``input`` items instead); an absent ``store`` is taken as ``false`` and reported so.
- ``instructions`` becomes the first (system) message; ``input`` items map one to one:
  ``message`` items (``input_text``/``output_text``/``input_image``/``input_file`` parts),
  ``function_call`` items (consecutive ones merged into one assistant turn's ``tool_calls``,
  ``call_id`` kept as the tool call id) and ``function_call_output`` items (``tool`` messages);
  ``reasoning`` items are dropped.
- ``text.format`` becomes ``response_format`` (``json_schema`` keeps its name, schema and
  strictness); ``max_output_tokens`` becomes ``max_tokens``; ``reasoning.effort`` becomes
  ``reasoning_effort``; ``prompt_cache_key``, ``service_tier``, ``top_logprobs`` pass as they are.
- Only ``function`` tools can be served by chat upstreams: built-in tools (web search, file
  search, computer use, MCP, ...) are refused.
"""

from __future__ import annotations

from typing import Any

from switchman.gateway.errors import InvalidRequest
from switchman.gateway.inbound.anthropic_openai import Translated

_STATEFUL = {
    "previous_response_id": "previous_response_id: this gateway keeps no response state; send "
    "the earlier turns as 'input' items instead",
    "conversation": "conversation: this gateway keeps no conversation state; send the earlier "
    "turns as 'input' items instead",
}
_COPIED = (
    *("temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier", "seed"),
    *("prompt_cache_key", "service_tier", "top_logprobs"),
)
_ROLES = ("user", "assistant", "system", "developer")


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def responses_to_chat(body: dict[str, Any]) -> Translated:
    """The chat.completions body for a Responses body (see the module docstring)."""
    for name, message in _STATEFUL.items():
        if body.get(name) is not None:
            raise _invalid(message, name)
    for name in ("store", "background"):
        if body.get(name) is True:
            raise _invalid(
                f"{name}: this gateway is stateless and cannot keep responses; set it to false",
                name,
            )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("'model' is required and must be a non-empty string", "model")
    chat: dict[str, Any] = {"model": model}
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif instructions is not None and not isinstance(instructions, str):
        raise _invalid("'instructions' must be a string", "instructions")
    messages += _input(body.get("input"))
    chat["messages"] = messages
    for name in _COPIED:
        if body.get(name) is not None:
            chat[name] = body[name]
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise _invalid("'max_output_tokens' must be a positive integer", "max_output_tokens")
        chat["max_tokens"] = limit
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # response.completed carries usage
    elif body.get("stream") not in (None, False):
        raise _invalid("'stream' must be a boolean", "stream")
    tools = _tools(body.get("tools"))
    if tools:
        chat["tools"] = tools
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    _text_format(body.get("text"), chat)
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        chat["reasoning_effort"] = reasoning["effort"]
    return Translated(chat=chat)


def _input(value: object) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise _invalid("'input' must be a string or a non-empty array of items", "input")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _invalid(f"{where} must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            call = _function_call(item, where)
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append(_function_output(item, where))
        elif kind == "reasoning":
            continue
        else:
            raise _invalid(f"{where}.type {kind!r} is not supported by this gateway", where)
    return out


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise _invalid(f"{where}.role must be one of {', '.join(_ROLES)}", f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _invalid(f"{where}.content must be a string or an array", f"{where}.content")
    parts = [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    if role == "assistant" or all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "".join(p.get("text", "") for p in parts)}
    return {"role": role, "content": parts}


def _part(part: object, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(part, dict):
        raise _invalid(f"{where} must be an object", where)
    if kind in ("input_text", "output_text", "text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise _invalid(f"{where}.text must be a string", f"{where}.text")
        return {"type": "text", "text": text}
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": "text", "text": part["refusal"]}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and isinstance(part.get("file_data"), str):
        file = {"file_data": part["file_data"]}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise _invalid(
        f"{where}: only input_text, output_text, input_image (image_url) and input_file "
        "(file_data) parts are supported",
        where,
    )


def _function_call(item: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(f"{where}.call_id must be a non-empty string", f"{where}.call_id")
    if not isinstance(name, str) or not name:
        raise _invalid(f"{where}.name must be a non-empty string", f"{where}.name")
    if not isinstance(arguments, str):
        raise _invalid(f"{where}.arguments must be a string of JSON", f"{where}.arguments")
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _function_output(item: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, output = item.get("call_id"), item.get("output")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(f"{where}.call_id must be a non-empty string", f"{where}.call_id")
    if isinstance(output, list):
        output = "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    if not isinstance(output, str):
        raise _invalid(f"{where}.output must be a string", f"{where}.output")
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def _tools(tools: object) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("'tools' must be an array", "tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or kind != "function":
            raise _invalid(f"{where}: only function tools are supported (got {kind!r})", where)
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(f"{where}.name must be a non-empty string", f"{where}.name")
        function: dict[str, Any] = {"name": name}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: object) -> object:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if isinstance(name, str) and name:
            return {"type": "function", "function": {"name": name}}
    raise _invalid(
        "'tool_choice' must be auto, none, required or {'type': 'function', 'name': ...}",
        "tool_choice",
    )


def _text_format(text: object, chat: dict[str, Any]) -> None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if not isinstance(fmt, dict) or kind not in ("text", "json_object", "json_schema"):
        raise _invalid("text.format.type must be text, json_object or json_schema", "text.format")
    if kind == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        schema, name = fmt.get("schema"), fmt.get("name")
        if not isinstance(schema, dict) or not isinstance(name, str) or not name:
            raise _invalid("text.format needs a 'name' and a 'schema' object", "text.format")
        spec: dict[str, Any] = {"name": name, "schema": schema}
        if isinstance(fmt.get("strict"), bool):
            spec["strict"] = fmt["strict"]
        chat["response_format"] = {"type": "json_schema", "json_schema": spec}
