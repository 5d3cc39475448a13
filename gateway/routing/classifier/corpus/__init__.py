"""The classifier's labelled corpus, generated: subject content, phrasing frames, hand-written rows.

``generate`` assembles ``prompts.jsonl`` (one directory up) from ``domains_stem`` and
``domains_world`` (what each subject domain contributes: terms, facts, hard questions, tasks,
a passage, a tool), ``frames`` and ``frames_more`` (how each intent is asked, per language, and
which label the rubric in docs/classifier.md gives it), ``styles`` (label-neutral wrappers),
``native``, ``native_more`` and ``native_short`` (prompts written whole in eleven languages),
and the earlier hand-written English set, ``handwritten.jsonl``. Offline only: nothing here is
imported on the request path.
"""
