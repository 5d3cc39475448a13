# ruff: noqa: RUF001 (full-width punctuation belongs to the Chinese and Japanese text)
"""How the *complex* intents are asked, per language, and the label-neutral style wrappers.

Every intent here asks for what the rubric in docs/classifier.md sends to the large tier:
multi-step derivation, comparison of assumptions, long constrained writing, open design or
planning, critique of a given text, faithful translation of technical text, a tool plan with
judgement between calls. Several are short (``{hard}``, ``{term}``): short but hard (the
label-neutral style wrappers are in ``styles``). Slots:
``{term}``, ``{other}``, ``{hard}``, ``{task}``, ``{passage}``, ``{ask}``.
"""

from __future__ import annotations

from switchman.gateway.routing.classifier.corpus.frames import Frames

HARD: Frames = {
    "en": ("{hard}", "Quick question: {hard}", "{hard} Please be rigorous."),
    "es": ("Pregunta: {hard}", "{hard} Razona paso a paso."),
    "fr": ("Question : {hard}", "{hard} Raisonne étape par étape."),
    "de": ("Frage: {hard}", "{hard} Bitte Schritt für Schritt begründen."),
    "pt": ("Pergunta: {hard}", "{hard} Raciocine passo a passo."),
    "it": ("Domanda: {hard}", "{hard} Ragiona passo per passo."),
    "nl": ("Vraag: {hard}", "{hard} Redeneer stap voor stap."),
    "pl": ("Pytanie: {hard}", "{hard} Uzasadnij krok po kroku."),
    "ru": ("Вопрос: {hard}", "{hard} Рассуждай пошагово."),
    "tr": ("Soru: {hard}", "{hard} Adım adım gerekçelendir."),
    "zh": ("问题：{hard}", "{hard} 请逐步推理。"),
    "ja": ("質問：{hard}", "{hard} 段階的に説明してください。"),
}

EXPLAIN_DEEP: Frames = {
    "en": (
        "Explain {term} in depth: derive the key result, state its assumptions and show "
        "where it breaks down.",
        "Why does {term} work the way it does? I need the mechanism, not a definition.",
        "{term}: what are the non-obvious failure cases, and why?",
    ),
    "es": (
        "Explica {term} a fondo: deduce el resultado clave, sus supuestos y dónde falla.",
        "¿Por qué {term} funciona así? Quiero el mecanismo, no una definición.",
    ),
    "fr": (
        "Explique {term} en profondeur : démontre le résultat clé, ses hypothèses et ses limites.",
        "Pourquoi {term} fonctionne-t-il ainsi ? Le mécanisme, pas la définition.",
    ),
    "de": (
        "Erkläre {term} gründlich: leite das Kernergebnis her, nenne die Annahmen und wo "
        "es versagt.",
        "Warum funktioniert {term} so? Den Mechanismus, keine Definition.",
    ),
    "pt": (
        "Explique {term} a fundo: derive o resultado principal, as hipóteses e onde falha.",
        "Por que {term} funciona assim? Quero o mecanismo, não a definição.",
    ),
    "it": (
        "Spiega {term} a fondo: ricava il risultato chiave, le ipotesi e dove non vale.",
        "Perché {term} funziona così? Voglio il meccanismo, non la definizione.",
    ),
    "nl": (
        "Leg {term} grondig uit: leid het kernresultaat af, noem de aannames en waar het misgaat.",
        "Waarom werkt {term} zo? Het mechanisme, geen definitie.",
    ),
    "pl": (
        "Wyjaśnij dogłębnie {term}: wyprowadź główny wynik, założenia i gdzie zawodzi.",
        "Dlaczego {term} działa w ten sposób? Mechanizm, nie definicja.",
    ),
    "ru": (
        "Объясни {term} глубоко: выведи ключевой результат, допущения и где он не работает.",
        "Почему {term} работает именно так? Нужен механизм, а не определение.",
    ),
    "tr": (
        "{term} konusunu derinlemesine açıkla: temel sonucu türet, varsayımları ve nerede "
        "geçersiz olduğunu göster.",
        "{term} neden böyle işler? Tanım değil, mekanizma istiyorum.",
    ),
    "zh": (
        "深入解释{term}：推导关键结论，说明前提假设以及在什么情况下不成立。",
        "{term}为什么会这样运作？我要的是机制，不是定义。",
    ),
    "ja": (
        "{term}を詳しく説明してください。主要な結果を導き、前提と破綻する条件を示してください。",
        "{term}はなぜそのように働くのですか？定義ではなく仕組みを知りたいです。",
    ),
}

COMPARE: Frames = {
    "en": (
        "Compare {term} with {other}: where do their assumptions differ, and when does "
        "each give the wrong answer?",
        "{term} vs {other}, which should I rely on in an edge case, and why?",
        "Contrast {term} and {other} critically, with a concrete case where they disagree.",
    ),
    "es": (
        "Compara {term} con {other}: ¿en qué difieren sus supuestos y cuándo falla cada uno?",
        "{term} frente a {other}: ¿en cuál confiar en un caso límite y por qué?",
    ),
    "fr": (
        "Compare {term} et {other} : en quoi leurs hypothèses diffèrent-elles et quand "
        "chacun se trompe-t-il ?",
        "{term} ou {other} dans un cas limite, et pourquoi ?",
    ),
    "de": (
        "Vergleiche {term} mit {other}: Worin unterscheiden sich die Annahmen, und wann "
        "liegt jedes falsch?",
        "{term} oder {other} im Grenzfall, und warum?",
    ),
    "pt": (
        "Compare {term} com {other}: onde diferem as hipóteses e quando cada um erra?",
        "{term} ou {other} num caso-limite, e por quê?",
    ),
    "it": (
        "Confronta {term} e {other}: dove differiscono le ipotesi e quando sbaglia ciascuno?",
        "{term} o {other} in un caso limite, e perché?",
    ),
    "nl": (
        "Vergelijk {term} met {other}: waar verschillen de aannames en wanneer zit elk fout?",
        "{term} of {other} in een randgeval, en waarom?",
    ),
    "pl": (
        "Porównaj {term} z {other}: czym różnią się założenia i kiedy każde zawodzi?",
        "{term} czy {other} w przypadku granicznym, i dlaczego?",
    ),
    "ru": (
        "Сравни {term} и {other}: чем отличаются допущения и когда каждое ошибается?",
        "{term} или {other} в пограничном случае, и почему?",
    ),
    "tr": (
        "{term} ile {other} karşılaştır: varsayımları nerede ayrışıyor, her biri ne zaman "
        "yanılıyor?",
        "Sınır durumda {term} mı {other} mı, neden?",
    ),
    "zh": (
        "比较{term}和{other}：它们的假设有何不同，各自在什么情况下会出错？",
        "在边界情况下该信{term}还是{other}？为什么？",
    ),
    "ja": (
        "{term}と{other}を比較してください。前提はどう違い、それぞれどんな場合に誤りますか？",
        "境界的なケースでは{term}と{other}のどちらを信頼すべきですか？理由も。",
    ),
}

WRITE_LONG: Frames = {
    "en": (
        "Write a 1,200-word explainer on {term} for first-year students, with an analogy, "
        "a worked example and a section on common misconceptions.",
        "Draft a chapter outline and the full first section of a guide to {term}.",
        "write an essay on {term}, 1500 words, three sources compared",
    ),
    "es": (
        "Escribe un artículo de 1.200 palabras sobre {term} para estudiantes, con una "
        "analogía, un ejemplo resuelto y errores frecuentes.",
        "Redacta un ensayo de 1.500 palabras sobre {term} comparando tres fuentes.",
    ),
    "fr": (
        "Rédige un article de 1 200 mots sur {term} pour des étudiants, avec une analogie, "
        "un exemple détaillé et les idées reçues.",
        "Écris une dissertation de 1 500 mots sur {term} en comparant trois sources.",
    ),
    "de": (
        "Schreibe einen Artikel mit 1.200 Wörtern über {term} für Studierende, mit Analogie, "
        "durchgerechnetem Beispiel und typischen Irrtümern.",
        "Verfasse einen Essay mit 1.500 Wörtern über {term}, drei Quellen im Vergleich.",
    ),
    "pt": (
        "Escreva um artigo de 1.200 palavras sobre {term} para estudantes, com analogia, "
        "exemplo resolvido e equívocos comuns.",
        "Redija um ensaio de 1.500 palavras sobre {term} comparando três fontes.",
    ),
    "it": (
        "Scrivi un articolo di 1.200 parole su {term} per studenti, con un'analogia, un "
        "esempio svolto e gli errori comuni.",
        "Scrivi un saggio di 1.500 parole su {term} confrontando tre fonti.",
    ),
    "nl": (
        "Schrijf een stuk van 1.200 woorden over {term} voor studenten, met een analogie, "
        "een uitgewerkt voorbeeld en veelgemaakte denkfouten.",
        "Schrijf een essay van 1.500 woorden over {term} met drie bronnen vergeleken.",
    ),
    "pl": (
        "Napisz artykuł na 1200 słów o {term} dla studentów, z analogią, rozwiązanym "
        "przykładem i typowymi błędami.",
        "Napisz esej na 1500 słów o {term}, porównując trzy źródła.",
    ),
    "ru": (
        "Напиши статью на 1200 слов про {term} для первокурсников: аналогия, разобранный "
        "пример и типичные заблуждения.",
        "Напиши эссе на 1500 слов о {term}, сравнив три источника.",
    ),
    "tr": (
        "{term} hakkında birinci sınıf öğrencileri için 1.200 kelimelik bir yazı yaz: "
        "benzetme, çözümlü örnek ve yaygın yanılgılar olsun.",
        "{term} üzerine üç kaynağı karşılaştıran 1.500 kelimelik bir deneme yaz.",
    ),
    "zh": (
        "为大一学生写一篇1200字的文章讲解{term}，包括一个类比、一个完整例题和常见误区。",
        "写一篇1500字的论文讨论{term}，比较三种资料来源。",
    ),
    "ja": (
        "{term}について大学一年生向けに1200語の解説を書いてください。たとえ、例題、よくある誤解を含めて。",
        "{term}について三つの資料を比較する1500語の小論文を書いてください。",
    ),
}

TASK: Frames = {
    "en": ("{task}", "I need help with this: {task}", "{task} Be thorough."),
    "es": ("Necesito ayuda con esto: {task}", "{task} Sé minucioso."),
    "fr": ("J'ai besoin d'aide : {task}", "{task} Sois rigoureux."),
    "de": ("Ich brauche Hilfe: {task}", "{task} Bitte gründlich."),
    "pt": ("Preciso de ajuda: {task}", "{task} Seja minucioso."),
    "it": ("Mi serve aiuto: {task}", "{task} Sii accurato."),
    "nl": ("Ik heb hulp nodig: {task}", "{task} Wees grondig."),
    "pl": ("Potrzebuję pomocy: {task}", "{task} Proszę dokładnie."),
    "ru": ("Нужна помощь: {task}", "{task} Подробно, пожалуйста."),
    "tr": ("Yardım lazım: {task}", "{task} Ayrıntılı ol."),
    "zh": ("请帮我：{task}", "{task} 请尽量详尽。"),
    "ja": ("手伝ってください：{task}", "{task} 詳しくお願いします。"),
}

CRITIQUE: Frames = {
    "en": (
        "Critically assess the reasoning behind the figures below: which conclusions do "
        "they not support, what else could explain them, and what data would settle it?"
        "\n\n{passage}",
        "{passage}\n\nWhat can and can't we infer from this? Argue both sides.",
        "Audit this record for inconsistencies and explain their likely causes.\n\n{passage}",
    ),
    "es": (
        "Evalúa críticamente qué conclusiones no se sostienen con estos datos y qué otras "
        "explicaciones hay.\n\n{passage}",
        "{passage}\n\n¿Qué podemos inferir y qué no? Argumenta ambas posturas.",
    ),
    "fr": (
        "Évalue de façon critique quelles conclusions ces données ne justifient pas et "
        "quelles autres explications existent.\n\n{passage}",
        "{passage}\n\nQue peut-on en déduire et que ne peut-on pas ? Argumente.",
    ),
    "de": (
        "Bewerte kritisch, welche Schlüsse diese Zahlen nicht tragen und welche anderen "
        "Erklärungen es gibt.\n\n{passage}",
        "{passage}\n\nWas lässt sich daraus ableiten und was nicht? Argumentiere beidseitig.",
    ),
    "pt": (
        "Avalie criticamente que conclusões estes dados não sustentam e que outras "
        "explicações existem.\n\n{passage}",
        "{passage}\n\nO que podemos e não podemos inferir? Argumente os dois lados.",
    ),
    "it": (
        "Valuta criticamente quali conclusioni questi dati non sostengono e quali altre "
        "spiegazioni esistono.\n\n{passage}",
        "{passage}\n\nCosa possiamo dedurre e cosa no? Argomenta entrambe le tesi.",
    ),
    "nl": (
        "Beoordeel kritisch welke conclusies deze cijfers niet dragen en welke andere "
        "verklaringen er zijn.\n\n{passage}",
        "{passage}\n\nWat kunnen we hieruit afleiden en wat niet? Beargumenteer beide kanten.",
    ),
    "pl": (
        "Oceń krytycznie, jakich wniosków te dane nie uzasadniają i jakie są inne "
        "wyjaśnienia.\n\n{passage}",
        "{passage}\n\nCo można z tego wywnioskować, a czego nie? Argumentuj obie strony.",
    ),
    "ru": (
        "Критически оцени, какие выводы эти данные не подтверждают и какие есть другие "
        "объяснения.\n\n{passage}",
        "{passage}\n\nЧто из этого следует, а что нет? Приведи доводы обеих сторон.",
    ),
    "tr": (
        "Bu verilerin hangi sonuçları desteklemediğini ve başka hangi açıklamalar olduğunu "
        "eleştirel olarak değerlendir.\n\n{passage}",
        "{passage}\n\nBundan ne çıkarabiliriz, ne çıkaramayız? İki tarafı da tartış.",
    ),
    "zh": (
        "批判性地评估：这些数据不能支持哪些结论，还有哪些其他解释？\n\n{passage}",
        "{passage}\n\n从中能推断出什么，不能推断出什么？正反两方面论证。",
    ),
    "ja": (
        "このデータからは支持できない結論と、他に考えられる説明を批判的に評価してください。\n\n{passage}",
        "{passage}\n\nここから何が言えて何が言えないか、両面から論じてください。",
    ),
}

TRANSLATE_TECHNICAL: Frames = {
    "en": (
        "Translate this into German for publication. Keep every figure, unit and term "
        "exact, match the register, and add translator's notes where a term has no "
        "equivalent.\n\n{passage}",
        "Localize the text below into Japanese for a regulatory filing; flag ambiguities."
        "\n\n{passage}",
        "{passage}\n\nTranslate to Spanish preserving legal and technical meaning exactly, "
        "and explain each choice you were unsure about.",
    ),
    "es": (
        "Traduce al inglés para publicación, con cada cifra y término exacto y notas del "
        "traductor donde no haya equivalente.\n\n{passage}",
        "{passage}\n\nTradúcelo al alemán conservando el sentido técnico y jurídico exacto.",
    ),
    "fr": (
        "Traduis en anglais pour publication, chiffres et termes exacts, avec des notes "
        "du traducteur là où il n'y a pas d'équivalent.\n\n{passage}",
        "{passage}\n\nTraduis en allemand en conservant le sens technique et juridique exact.",
    ),
    "de": (
        "Übersetze ins Englische zur Veröffentlichung, Zahlen und Fachbegriffe exakt, mit "
        "Anmerkungen, wo es keine Entsprechung gibt.\n\n{passage}",
        "{passage}\n\nÜbersetze ins Französische und wahre die exakte fachliche Bedeutung.",
    ),
    "pt": (
        "Traduza para o inglês para publicação, números e termos exatos, com notas onde "
        "não houver equivalente.\n\n{passage}",
        "{passage}\n\nTraduza para o alemão mantendo o sentido técnico e jurídico exato.",
    ),
    "it": (
        "Traduci in inglese per la pubblicazione, cifre e termini esatti, con note del "
        "traduttore dove manca un equivalente.\n\n{passage}",
        "{passage}\n\nTraduci in tedesco mantenendo esatto il significato tecnico e legale.",
    ),
    "nl": (
        "Vertaal naar het Engels voor publicatie, cijfers en termen exact, met noten waar "
        "een equivalent ontbreekt.\n\n{passage}",
        "{passage}\n\nVertaal naar het Duits met exact behoud van de technische betekenis.",
    ),
    "pl": (
        "Przetłumacz na angielski do publikacji, liczby i terminy dokładnie, z przypisami "
        "tłumacza tam, gdzie brak odpowiednika.\n\n{passage}",
        "{passage}\n\nPrzetłumacz na niemiecki, zachowując dokładny sens techniczny i prawny.",
    ),
    "ru": (
        "Переведи на английский для публикации: цифры и термины точно, с примечаниями "
        "переводчика, где нет эквивалента.\n\n{passage}",
        "{passage}\n\nПереведи на немецкий, точно сохранив технический и юридический смысл.",
    ),
    "tr": (
        "Yayın için İngilizceye çevir; rakamlar ve terimler birebir olsun, karşılığı "
        "olmayan terimlere çevirmen notu ekle.\n\n{passage}",
        "{passage}\n\nTeknik ve hukuki anlamı birebir koruyarak Almancaya çevir.",
    ),
    "zh": (
        "把下文译成英文用于出版，数字和术语必须准确，没有对应词的地方加译注。\n\n{passage}",
        "{passage}\n\n译成德文，准确保留技术和法律含义。",
    ),
    "ja": (
        "出版用に英語へ翻訳してください。数値と用語は正確に、対応語がない箇所には訳注を。\n\n{passage}",
        "{passage}\n\n技術的・法的な意味を正確に保ってドイツ語に翻訳してください。",
    ),
}

TOOL_COMPLEX: Frames = {
    "en": ("{ask}", "Use the tools as needed: {ask}", "{ask} Explain your reasoning."),
    "es": ("Usa las herramientas que hagan falta: {ask}", "{ask} Explica tu razonamiento."),
    "fr": ("Utilise les outils nécessaires : {ask}", "{ask} Explique ton raisonnement."),
    "de": ("Nutze die Tools nach Bedarf: {ask}", "{ask} Erkläre dein Vorgehen."),
    "pt": ("Use as ferramentas necessárias: {ask}", "{ask} Explique o raciocínio."),
    "it": ("Usa gli strumenti necessari: {ask}", "{ask} Spiega il ragionamento."),
    "nl": ("Gebruik de tools waar nodig: {ask}", "{ask} Leg je redenering uit."),
    "pl": ("Użyj potrzebnych narzędzi: {ask}", "{ask} Wyjaśnij rozumowanie."),
    "ru": ("Используй нужные инструменты: {ask}", "{ask} Объясни рассуждение."),
    "tr": ("Gerekli araçları kullan: {ask}", "{ask} Gerekçeni açıkla."),
    "zh": ("按需使用工具：{ask}", "{ask} 请说明你的推理。"),
    "ja": ("必要に応じてツールを使って：{ask}", "{ask} 理由も説明してください。"),
}

COMPLEX_INTENTS = {
    "hard": HARD,
    "explain_deep": EXPLAIN_DEEP,
    "compare": COMPARE,
    "write_long": WRITE_LONG,
    "task": TASK,
    "critique": CRITIQUE,
    "translate_technical": TRANSLATE_TECHNICAL,
    "tool_complex": TOOL_COMPLEX,
}
