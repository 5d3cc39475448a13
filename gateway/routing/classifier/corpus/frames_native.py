# ruff: noqa: RUF001 (full-width punctuation belongs to the Chinese and Japanese text)
"""Two more intents whose cue words must be native in every language, for ``generate``.

``PROVE`` (complex): a proof or rigorous justification about a subject term: short, and the
verb that makes it hard ("demuestra", "udowodnij", "证明") is in the prompt's own language.
``CONTEXT_ASK`` (simple): a long message of background (``{passage}``) that ends in one
lookup (``{fact}``): long, and easy. Labels follow the rubric in docs/classifier.md.
"""

from __future__ import annotations

from switchman.gateway.routing.classifier.corpus.frames import Frames

PROVE: Frames = {
    "en": ("Prove the central result about {term}, rigorously.",
           "prove it formally: why does {term} behave as it does",
           "Give a proof, not an intuition, of the key property of {term}."),
    "es": ("Demuestra rigurosamente el resultado central sobre {term}.",
           "demuestra formalmente por qué {term} se comporta así"),
    "fr": ("Démontre rigoureusement le résultat central sur {term}.",
           "prouve formellement pourquoi {term} se comporte ainsi"),
    "de": ("Beweise streng das zentrale Resultat über {term}.",
           "beweise formal, warum sich {term} so verhält"),
    "pt": ("Prove rigorosamente o resultado central sobre {term}.",
           "demonstre formalmente por que {term} se comporta assim"),
    "it": ("Dimostra rigorosamente il risultato centrale su {term}.",
           "dimostra formalmente perché {term} si comporta così"),
    "nl": ("Bewijs rigoureus het centrale resultaat over {term}.",
           "bewijs formeel waarom {term} zich zo gedraagt"),
    "pl": ("Udowodnij ściśle główny wynik dotyczący: {term}.",
           "udowodnij formalnie, dlaczego {term} tak się zachowuje"),
    "ru": ("Строго докажи главный результат о {term}.",
           "докажи формально, почему {term} ведёт себя так"),
    "tr": ("{term} ile ilgili temel sonucu titizlikle kanıtla.",
           "{term} neden böyle davranır, resmi olarak kanıtla"),
    "zh": ("严格证明关于{term}的核心结论。", "形式化地证明{term}为什么会这样"),
    "ja": ("{term}に関する中心的な結果を厳密に証明してください。",
           "{term}がなぜそう振る舞うのか形式的に証明して"),
}  # fmt: skip

CONTEXT_ASK: Frames = {
    "en": ("Some background first:\n\n{passage}\n\nAnyway, just one quick question: {fact}",
           "{passage}\n\nThat's my situation. All I need to know: {fact}",
           "For context, here is what I have:\n\n{passage}\n\nOnly this: {fact}"),
    "es": ("Te pongo en contexto:\n\n{passage}\n\nSolo una pregunta rápida: {fact}",
           "{passage}\n\nEsa es mi situación. Solo quiero saber: {fact}"),
    "fr": ("Un peu de contexte :\n\n{passage}\n\nJuste une petite question : {fact}",
           "{passage}\n\nVoilà ma situation. Je veux juste savoir : {fact}"),
    "de": ("Kurz zum Hintergrund:\n\n{passage}\n\nNur eine kurze Frage: {fact}",
           "{passage}\n\nSo ist die Lage. Ich will nur wissen: {fact}"),
    "pt": ("Um pouco de contexto:\n\n{passage}\n\nSó uma pergunta rápida: {fact}",
           "{passage}\n\nEssa é minha situação. Só quero saber: {fact}"),
    "it": ("Un po' di contesto:\n\n{passage}\n\nSolo una domanda veloce: {fact}",
           "{passage}\n\nQuesta è la mia situazione. Voglio solo sapere: {fact}"),
    "nl": ("Even wat achtergrond:\n\n{passage}\n\nAlleen een korte vraag: {fact}",
           "{passage}\n\nDat is mijn situatie. Ik wil alleen weten: {fact}"),
    "pl": ("Najpierw trochę kontekstu:\n\n{passage}\n\nTylko jedno szybkie pytanie: {fact}",
           "{passage}\n\nTaka jest moja sytuacja. Chcę tylko wiedzieć: {fact}"),
    "ru": ("Сначала немного контекста:\n\n{passage}\n\nТолько один быстрый вопрос: {fact}",
           "{passage}\n\nВот такая ситуация. Хочу только узнать: {fact}"),
    "tr": ("Önce biraz bağlam:\n\n{passage}\n\nSadece kısa bir soru: {fact}",
           "{passage}\n\nDurumum bu. Sadece şunu bilmek istiyorum: {fact}"),
    "zh": ("先说一下背景：\n\n{passage}\n\n我只想问一个小问题：{fact}",
           "{passage}\n\n这就是我的情况。我只想知道：{fact}"),
    "ja": ("まず背景です：\n\n{passage}\n\n一つだけ簡単な質問です：{fact}",
           "{passage}\n\n以上が状況です。知りたいのはこれだけです：{fact}"),
}  # fmt: skip
