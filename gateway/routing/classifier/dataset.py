"""The labelled prompts (``prompts.jsonl``, written by ``corpus.generate``) as ``Example`` rows.

``load_examples`` reads one split in file order; ``train``, ``evaluate``, ``holdout`` and the
CLI (``switchman classifier``) use it, as does ``calibrate`` for a user's own labels file (the
same row shape, or just ``{"prompt" | "messages", "label" | "preference"}``). Offline only:
the request path never imports this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

Split = Literal["all", "train", "heldout"]
LABELS = ("simple", "complex")
# what a labels file may say instead: the tier that sufficed, or which answer a judge preferred
# ("tie": the small model's answer was as good, so the small tier suffices)
ALIASES = {"small": "simple", "large": "complex"}
PREFERENCES = {"small": "simple", "tie": "simple", "large": "complex"}


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled prompt: a chat request body and what it should be routed as."""

    id: str
    domain: str
    label: str
    split: str
    body: dict[str, Any]
    input_tokens: float  # estimated: characters / 4, message text and tool definitions
    language: str = "en"
    style: str = ""
    source: str = ""

    @property
    def complex(self) -> bool:
        return self.label == "complex"


class LabelsError(ValueError):
    """A labels file row that is not a prompt with a simple/complex label."""


def input_tokens(body: dict[str, Any]) -> float:
    chars = len(json.dumps(body["tools"])) if "tools" in body else 0
    for message in body.get("messages", ()):
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    return chars / 4


def dataset_path() -> Path:
    """The packaged labelled prompts (a real file: the package is installed unzipped)."""
    return Path(
        str(resources.files("switchman.gateway.routing.classifier").joinpath("prompts.jsonl"))
    )


def example(row: dict[str, Any], where: str = "") -> Example:
    """An Example from one JSON row; raises LabelsError on a row that is not one."""
    if not isinstance(row, dict):
        raise LabelsError(f"{where}: a row must be a JSON object")
    label = row.get("label")
    if label is None and "preference" in row:
        label = PREFERENCES.get(row["preference"]) if isinstance(row["preference"], str) else None
        if label is None:
            raise LabelsError(f"{where}: preference must be 'small', 'large' or 'tie'")
    label = ALIASES.get(label, label) if isinstance(label, str) else label
    if label not in LABELS:
        raise LabelsError(
            f"{where}: label must be 'simple'/'small' or 'complex'/'large', got {label!r}"
        )
    if isinstance(row.get("prompt"), str) and "messages" not in row:
        row = {**row, "messages": [{"role": "user", "content": row["prompt"]}]}
    messages = row.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) for m in messages)
    ):
        raise LabelsError(f"{where}: needs 'prompt' (a string) or 'messages' (a list of objects)")
    body: dict[str, Any] = {k: row[k] for k in ("messages", "tools", "response_format") if k in row}
    return Example(
        id=str(row.get("id", where)),
        domain=str(row.get("domain", "")),
        label=label,
        split=str(row.get("split", "train")),
        body=body,
        input_tokens=input_tokens(body),
        language=str(row.get("language", "")),
        style=str(row.get("style", "")),
        source=str(row.get("source", "")),
    )


def load_examples(split: Split = "all", path: Path | None = None) -> list[Example]:
    """The labelled prompts of one split, in file order."""
    examples = []
    source = path or dataset_path()
    with source.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise LabelsError(f"{source.name}:{number}: not JSON: {exc}") from exc
            item = example(row, f"{source.name}:{number}")
            if split in ("all", item.split):
                examples.append(item)
    return examples
