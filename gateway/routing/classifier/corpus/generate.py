# ruff: noqa: RUF001 (full-width punctuation belongs to the Chinese and Japanese text)
"""Writes the classifier's labelled set, ``prompts.jsonl``, from this package, deterministically.

``python -m switchman.gateway.routing.classifier.corpus.generate`` (``--check`` only compares)
fills the intent frames of ``frames`` / ``frames_more`` with each subject's material
(``domains_stem``, ``domains_world``) in several languages and styles, wraps some rows as
multi-turn conversations whose earlier turns have the opposite label, adds the whole-prompt rows
of ``native`` and the hand-written English set ``handwritten.jsonl``, drops repeated prompts
and assigns the held-out split by a hash of each row's id. Seeds are fixed strings, so the
file is the same byte for byte on every machine. ``train`` and ``evaluate`` read the result.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from switchman.gateway.routing.classifier.corpus import (
    domains_stem,
    domains_world,
    native,
    native_more,
    native_short,
)
from switchman.gateway.routing.classifier.corpus.frames import SIMPLE_INTENTS, Frames
from switchman.gateway.routing.classifier.corpus.frames_more import COMPLEX_INTENTS, HARD
from switchman.gateway.routing.classifier.corpus.frames_native import CONTEXT_ASK, PROVE
from switchman.gateway.routing.classifier.corpus.styles import POLITE, PREAMBLE, REPLY
from switchman.gateway.routing.classifier.corpus.subject import Subject

HERE = Path(__file__).parent
OUTPUT = HERE.parent / "prompts.jsonl"
HANDWRITTEN = HERE / "handwritten.jsonl"
LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "nl", "pl", "ru", "tr", "zh", "ja")
VARIANTS = 6  # rows per (subject, intent): two English, four in other languages
STYLES = ("plain", "terse", "polite", "verbose")
HELDOUT_PERCENT = 30
MULTI_TURN_PERCENT = 15
LONG_INTENTS = ("summarize", "extract", "classify", "critique", "translate_technical")
SCHEMA_INTENTS = {"extract": 50, "classify": 30, "critique": 30, "task": 30}  # percent
FACT = "fact"
SUBJECTS: tuple[Subject, ...] = (*domains_stem.SUBJECTS, *domains_world.SUBJECTS)

Row = dict[str, Any]


def _records(rng: random.Random, count: int) -> str:
    """A pasted log/table that makes a prompt long without changing what it asks."""
    lines = ["id,date,reference,quantity,amount,status"]
    for i in range(count):
        lines.append(f"{1000 + i},2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
                     f"R{rng.randint(10000, 99999)},{rng.randint(1, 40)},"
                     f"{rng.randint(5, 9000)}.{rng.randint(0, 99):02d},"
                     f"{rng.choice(('ok', 'pending', 'refunded', 'ok'))}")  # fmt: skip
    return "\n".join(lines)


def _schema(rng: random.Random) -> dict[str, Any]:
    fields = rng.sample(["name", "date", "amount", "summary", "category", "risk", "reason",
                         "items", "confidence", "notes"], rng.randint(2, 6))  # fmt: skip
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "schema": {
                "type": "object",
                "properties": {f: {"type": "string"} for f in fields},
                "required": fields,
            },
        },
    }


def _styled(text: str, style: str, language: str, rng: random.Random) -> str:
    """``text`` as a terse, polite or verbose writer would send it (the ask is unchanged)."""
    if style == "polite":
        prefix, suffix = POLITE[language]
        return prefix + text + suffix
    if style == "verbose":
        return rng.choice(PREAMBLE[language]) + text
    if style == "terse" and "\n" not in text:
        return text.rstrip("?.!。？！ ").replace("please ", "").lower()
    return text


def _slots(subject: Subject, intent: str, k: int, rng: random.Random) -> dict[str, str]:
    terms = subject.terms
    passage = subject.passage
    if intent in LONG_INTENTS and k % 2 == 1:
        passage = f"{passage}\n\n{_records(rng, rng.randint(25, 70))}"
    return {
        "term": terms[k % len(terms)],
        "other": terms[(k + 2) % len(terms)],
        "hard": subject.hard[k % len(subject.hard)],
        "fact": subject.facts[k % len(subject.facts)],
        "task": subject.tasks[k % len(subject.tasks)],
        "passage": passage,
        "ask": subject.tool_simple if intent == "tool_simple" else subject.tool_complex,
    }


def _intents() -> Iterator[tuple[str, str, Frames]]:
    for name, frames in SIMPLE_INTENTS.items():
        yield name, "simple", frames
    yield FACT, "simple", HARD  # the same frames as hard questions: the content decides
    for name, frames in COMPLEX_INTENTS.items():
        yield name, "complex", frames
    yield "prove", "complex", PROVE
    yield "context_ask", "simple", CONTEXT_ASK


def _row(subject: Subject, intent: str, label: str, frames: Frames, k: int) -> Row:
    rng = random.Random(f"{subject.name}/{intent}/{k}")
    language = "en" if k < 2 else LANGUAGES[1 + (k * 5 + len(subject.name) + len(intent)) % 11]
    options = frames[language]
    frame = options[0] if k == 0 else rng.choice(options)
    slots = _slots(subject, intent, k, rng)
    if intent == FACT:
        slots["hard"] = slots["fact"]
    style = "plain" if k == 0 else rng.choice(STYLES)
    text = _styled(frame.format(**slots), style, language, rng)
    row: Row = {
        "id": f"{subject.name}-{intent}-{k}",
        "domain": subject.name,
        "language": language,
        "style": style if language == "en" else f"{style}+code-switched",
        "intent": intent,
        "label": label,
        "source": "generated",
        "messages": [{"role": "user", "content": text}],
    }
    if intent.startswith("tool_"):
        row["tools"] = [subject.tool]
    if rng.randrange(100) < SCHEMA_INTENTS.get(intent, 0):
        row["response_format"] = _schema(rng)
    return row


def _native() -> Iterator[Row]:
    rows = (*native.ROWS, *native_more.ROWS, *native_short.ROWS)
    for i, (language, domain, label, text) in enumerate(rows):
        yield {
            "id": f"native-{language}-{i:03d}",
            "domain": domain,
            "language": language,
            "style": "native",
            "intent": "native",
            "label": label,
            "source": "native",
            "messages": [{"role": "user", "content": text}],
        }


def _handwritten() -> Iterator[Row]:
    with HANDWRITTEN.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                old = json.loads(line)
                row: Row = {k: old[k] for k in ("id", "domain")}
                row |= {
                    "language": "en",
                    "style": "handwritten",
                    "intent": "handwritten",
                    "label": old["label"],
                    "source": "handwritten",
                    "split": old["split"],
                }
                row |= {k: old[k] for k in ("messages", "tools", "response_format") if k in old}
                yield row


def _multi_turn(rows: list[Row]) -> None:
    """Some single-turn rows get earlier turns of the *opposite* label: only the last decides."""
    pools: dict[tuple[str, str], list[str]] = {}  # texts taken before any row is wrapped
    for row in rows:
        if "tools" not in row:
            key = (row["language"], row["label"])
            pools.setdefault(key, []).append(row["messages"][0]["content"])
    for row in rows:
        rng = random.Random(f"turns/{row['id']}")
        if row["source"] != "generated" or rng.randrange(100) >= MULTI_TURN_PERCENT:
            continue
        other = "simple" if row["label"] == "complex" else "complex"
        pool = pools.get((row["language"], other))
        if not pool:
            continue
        earlier = rng.choice(pool)
        reply = {"role": "assistant", "content": REPLY[row["language"]]}
        row["messages"] = [{"role": "user", "content": earlier}, reply, *row["messages"]]
        row["style"] += "+multi-turn"


def _split(row: Row) -> str:
    if "split" in row:
        return str(row["split"])
    return "heldout" if zlib.crc32(row["id"].encode()) % 100 < HELDOUT_PERCENT else "train"


def build() -> list[Row]:
    """Every row, in a fixed order, with its split."""
    rows = [
        _row(subject, intent, label, frames, k)
        for subject in SUBJECTS
        for intent, label, frames in _intents()
        for k in range(VARIANTS)
    ]
    rows.extend(_native())
    _multi_turn(rows)
    rows.extend(_handwritten())
    unique: dict[str, Row] = {}  # a frame and slot can coincide: keep the first such row
    for row in rows:
        row["split"] = _split(row)
        unique.setdefault(json.dumps(row["messages"], sort_keys=True), row)
    return list(unique.values())


def render(rows: Sequence[Row]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m switchman.gateway.routing.classifier.corpus.generate"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: prompts.jsonl")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: regenerate", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date", file=sys.stderr)
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
