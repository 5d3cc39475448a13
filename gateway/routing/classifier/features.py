"""Features of an OpenAI request body that predict how hard its prompt is, in bounded time.

``extract(op, body)`` turns a chat or completions body into the fixed-order vector named by
``FEATURES``; ``read`` also returns the instruction window, which ``ngrams`` hashes.
``model.Classifier`` weighs both, ``train`` fits the weights on the same values.
The cost is bounded whatever the body's size: lengths use full string lengths (O(1) each), but
text is only scanned in two windows: the *instruction* (the first and last ``INSTRUCTION_CHARS``
of the last user message, where the task is stated) for the many cue words, and the *body*
(the first and last ``BODY_CHARS`` of the last user message plus up to ``CONTEXT_CHARS`` of the
earlier messages) for code, math and structure. At most ``MAX_MESSAGES`` recent messages are
read. Anything that is not the expected JSON shape counts as empty: this never raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from math import log1p
from typing import Any

FEATURES: tuple[str, ...] = (
    # shape of the request
    "tokens",  # log(1 + all message characters / 4)
    "last_user_tokens",  # the same for the last user message alone
    "turns",  # log(1 + earlier user/assistant messages)
    "system",  # a system or developer message is present
    "images",  # image parts, at most 4
    "tools",  # log(1 + tool definitions)
    "response_format",  # json_schema: log(1 + its property names, at most 64); json_object: 1
    # body window: what the prompt contains
    "code_fences",
    "code_syntax",
    "math_notation",
    "list_items",
    "context_reasoning",  # reasoning cues in the earlier messages
    # instruction window: what the prompt asks for
    "simple_start",  # opens like a lookup, greeting or short transformation
    "simple_cues",
    "reasoning",
    "code_task",
    "math_proof",
    "structured",
    "long_output",
    "constraints",
    "steps",  # multi-part requests: "then", "also", "first", "each"
)

MAX_MESSAGES = 64
INSTRUCTION_CHARS = 400
BODY_CHARS = 1536
CONTEXT_CHARS = 1536
CONTEXT_SLICE = 512

# Cue words, lower case. Counted with str.count (no regex alternation: that scans far slower).
CODE_SYNTAX = (
    "def ", "return", "import ", "class ", "function", "const ", "=>", "#include", "public ",
    "void ", "select ", "print(", "();", "self.", "func ", "fn ", "let ", "async ", "await ",
    "lambda", "::", "->", "!=", "==", "</", "int ",
)  # fmt: skip
MATH_NOTATION = (
    "\\frac", "\\sum", "\\int", "\\mathbb", "$", "^", "∫", "∑", "√", "≤", "≥", "sqrt", "lim",
    "dx", "π", "∞", "\\infty", "mod ",
)  # fmt: skip
CONSTRAINTS = (
    "must", "should", "at least", "at most", "no more than", "under ", "exactly", "ensure",
    "without", "make sure", "do not", "don't", "avoid", "keep ", "only ", "require",
    "constraint", "budget", "deadline", "preserv", "consistent", "limit",
)  # fmt: skip
SIMPLE_CUES = (
    "what is", "what's", "who is", "who was", "who wrote", "when did", "when was", "where is",
    "capital of", "define", "definition", "translate", "how do you say", "how do i", "spell",
    "synonym", "convert", "yes or no", "true or false", "one word", "one sentence", "one-line",
    "one line", "briefly", "short", "quick", "tl;dr", "tldr", "fix the", "grammar",
    "proofread", "thank", "hello", "hey", "good morning", "good night", "how are you", "joke",
    "fun fact", "remind me", "timer", "turn off", "turn on", "what time", "how many",
    "how much", "recommend a", "suggest a", "give me", "summarize", "summarise", "two sentences",
    "extract", "rewrite", "rename", "lol", "bye", "name ideas",
)  # fmt: skip
REASONING = (
    "step by step", "explain why", "why", "compare", "contrast", "design", "trade-off",
    "tradeoff", "trade off", "optimiz", "optimis", "analy", "evaluat", "critique", "critical",
    "pros and cons", "implication", "justify", "assess", "strategy", "architect", "recommend",
    "root cause", "in depth", "detailed", "nuance", "argue", "argument", "counter",
    "what would happen", "scenario", "hypothes", "reasoning", "weigh", "consequence",
    "diagnos", "failure mode", "risk", "infer", "interpret", "explain", "discuss", "describe",
    "evidence", "model ", "plan ", "debate", "steelman", "decide", "strongest", "figure out",
)  # fmt: skip
CODE_TASK = (
    "implement", "write a function", "write a program", "write a script", "write code",
    "refactor", "debug", "bug", "stack trace", "traceback", "exception", "compile",
    "unit test", "tests", "algorithm", "complexity", "o(n", "api", "concurren", "thread",
    "race condition", "deadlock", "memory leak", "borrow", "query", "database", "kernel",
    "parser", "endpoint", "production", "latency", "migrat", "schema", "in python", "in go",
    "in rust", "in java", "in c++", "typescript",
)  # fmt: skip
MATH_PROOF = (
    "prove", "proof", "derive", "show that", "theorem", "lemma", "induction", "infinitely",
    "converge", "diverge", "rigorous", "if and only if", "for all", "integral", "eigen",
    "probability", "expected", "recurrence", "general solution", "lagrange", "bayes",
    "integer solutions", "group of order",
)  # fmt: skip
STRUCTURED = (
    "json", "table", "schema", "csv", "yaml", "xml", "markdown", "columns", "fields",
    "iso 8601", "normaliz", "structured", "matrix",
)  # fmt: skip
LONG_OUTPUT = (
    "essay", "story", "chapter", "article", "report", "proposal", "speech", "words",
    "itinerary", "outline", "manuscript", "screenplay", "scene", "plan", "guide", "timeline",
    "draft", "postmortem", "curriculum", "campaign", "sonnet", "villanelle", "calendar",
    "page",
)  # fmt: skip
STEPS = (
    "then ", "also ", "finally", "after that", "first", "second", "third", "each ", "every ",
    "both ", "and how", "and what", "and why", "including", "; ",
)  # fmt: skip
SIMPLE_START = (
    "what is", "what's", "whats", "who ", "when ", "where ", "which ", "how many", "how much",
    "how do you say", "how do i say", "translate", "define", "hi ", "hi!", "hi,", "hey",
    "hello", "thanks",
    "thank you", "good morning", "good night", "is ", "are ", "can i ", "do you", "does ",
    "convert", "spell", "list ", "name ", "give me", "tell me a", "summarize", "tl;dr", "tldr",
    "fix ", "set ", "turn ", "play ", "remind", "text ", "send ", "lol", "bye", "happy ",
    "recommend a", "suggest a", "say ", "add ", "round ", "simplify", "solve for", "synonym",
)  # fmt: skip

_LIST_ITEM = re.compile(r"\n[ \t]*(?:[-*•]|\d{1,2}[.)])[ \t]")
_TURN_ROLES = ("user", "assistant")  # tuples: membership by ==, so unhashable JSON never raises
_SYSTEM_ROLES = ("system", "developer")
_IMAGE_PARTS = ("image_url", "input_image", "image")


def _text(content: object) -> tuple[str, int]:
    """A message's text and its number of image parts; anything unexpected is empty."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts: list[str] = []
    images = 0
    for part in content[:MAX_MESSAGES]:
        if isinstance(part, Mapping):
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
            elif kind in _IMAGE_PARTS:
                images += 1
        elif isinstance(part, str):
            texts.append(part)
    return "\n".join(texts), images


def _window(text: str, chars: int) -> str:
    """The first and last ``chars`` characters of ``text`` (all of it when short enough)."""
    return text if len(text) <= 2 * chars else text[:chars] + "\n" + text[-chars:]


def _instruction(text: str) -> str:
    """Where a prompt states its task: all of a short one; of a long one, the opening and the
    closing paragraph (each at most ``INSTRUCTION_CHARS``), not the text pasted in between."""
    if len(text) <= 2 * INSTRUCTION_CHARS:
        return text
    head = text[:INSTRUCTION_CHARS]
    cut = head.find("\n\n")
    if cut > 0:
        head = head[:cut]
    tail = text[-INSTRUCTION_CHARS:]
    end = tail.rfind("\n\n")
    if end >= 0:
        tail = tail[end + 2 :]
    elif cut > 0:  # the opening paragraph is the instruction; the end is pasted text
        tail = ""
    return head + "\n" + tail


def _schema_fields(response_format: Mapping[str, Any]) -> int:
    """Property names in a json_schema response format, counting at most 64 nodes deep/wide."""
    spec = response_format.get("json_schema")
    stack: list[object] = [spec.get("schema") if isinstance(spec, Mapping) else None]
    fields = visited = 0
    while stack and visited < 64:
        node = stack.pop()
        visited += 1
        if isinstance(node, Mapping):
            properties = node.get("properties")
            if isinstance(properties, Mapping):
                fields += len(properties)
                stack.extend(properties.values())
            items = node.get("items")
            if items is not None:
                stack.append(items)
    return min(fields, 64)


def _response_format(response_format: Mapping[str, Any]) -> float:
    kind = response_format.get("type")
    if kind == "json_schema":
        return log1p(_schema_fields(response_format))
    return 1.0 if kind == "json_object" else 0.0


def _count(text: str, cues: tuple[str, ...]) -> float:
    return log1p(sum([text.count(cue) for cue in cues]))


def _read(op: str, body: Mapping[str, Any]) -> tuple[str, list[str], int, int, int, bool]:
    """(last user text, earlier texts newest first, total chars, turns, images, system)."""
    if op == "completions":
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = "\n".join([p for p in prompt[:MAX_MESSAGES] if isinstance(p, str)])
        text = prompt if isinstance(prompt, str) else ""
        return text, [], len(text), 0, 0, False
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "", [], 0, 0, 0, False
    last: str | None = None
    context: list[str] = []
    total = turns = images = 0
    system = False
    for message in reversed(messages[-MAX_MESSAGES:]):
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        text, pictures = _text(message.get("content"))
        total += len(text)
        images += pictures
        if role == "user" and last is None:
            last = text
            continue
        if role in _TURN_ROLES:
            turns += 1
        elif role in _SYSTEM_ROLES:
            system = True
        if text:
            context.append(text)
    turns += max(0, len(messages) - MAX_MESSAGES)
    return last or "", context, total, turns, images, system


def extract(op: str, body: object) -> list[float]:
    """The feature vector (ordered as ``FEATURES``) of a chat or completions request body."""
    return read(op, body)[0]


def read(op: str, body: object) -> tuple[list[float], str]:
    """(the feature vector, the lower-cased instruction window of the last user message)."""
    if not isinstance(body, Mapping) or op not in ("chat", "completions"):
        return [0.0] * len(FEATURES), ""
    last, context, total, turns, images, system = _read(op, body)
    tools = body.get("tools")
    response_format = body.get("response_format")
    if not isinstance(response_format, Mapping):
        response_format = {}

    instruction = _instruction(last).lower()
    budget = CONTEXT_CHARS
    parts = [_window(last, BODY_CHARS)]
    for text in context:
        if budget <= 0:
            break
        parts.append(text[: min(CONTEXT_SLICE, budget)])
        budget -= CONTEXT_SLICE
    scanned = "\n".join(parts)
    body_text = scanned.lower()
    context_text = "\n".join(parts[1:]).lower()
    opening = instruction.lstrip()[:24]

    vector = [
        log1p(total / 4),
        log1p(len(last) / 4),
        log1p(turns),
        1.0 if system else 0.0,
        float(min(images, 4)),
        log1p(len(tools)) if isinstance(tools, list) else 0.0,
        _response_format(response_format),
        log1p(body_text.count("```")),
        _count(body_text, CODE_SYNTAX),
        _count(body_text, MATH_NOTATION),
        log1p(len(_LIST_ITEM.findall(scanned))),
        _count(context_text, REASONING),
        1.0 if opening.startswith(SIMPLE_START) or opening == "hi" else 0.0,
        _count(instruction, SIMPLE_CUES),
        _count(instruction, REASONING),
        _count(instruction, CODE_TASK),
        _count(instruction, MATH_PROOF),
        _count(instruction, STRUCTURED),
        _count(instruction, LONG_OUTPUT),
        _count(instruction, CONSTRAINTS),
        _count(instruction, STEPS),
    ]
    return vector, instruction
