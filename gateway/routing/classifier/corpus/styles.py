# ruff: noqa: RUF001 (full-width punctuation belongs to the Chinese and Japanese text)
"""Label-neutral style wrappers per language: polite, verbose, and an earlier assistant turn.

``generate`` wraps filled frames with them (styles ``polite``, ``verbose``, ``multi-turn``);
none of them changes what a prompt asks, so none changes its label.
"""

from __future__ import annotations

# (prefix, suffix) that make a request polite without changing what it asks
POLITE: dict[str, tuple[str, str]] = {
    "en": ("Hi! Could you please help me? ", " Thank you so much!"),
    "es": ("¡Hola! ¿Podrías ayudarme, por favor? ", " ¡Muchas gracias!"),
    "fr": ("Bonjour ! Pourriez-vous m'aider, s'il vous plaît ? ", " Merci beaucoup !"),
    "de": ("Hallo! Könnten Sie mir bitte helfen? ", " Vielen Dank!"),
    "pt": ("Olá! Poderia me ajudar, por favor? ", " Muito obrigado!"),
    "it": ("Ciao! Potresti aiutarmi, per favore? ", " Grazie mille!"),
    "nl": ("Hallo! Zou je me alsjeblieft kunnen helpen? ", " Heel erg bedankt!"),
    "pl": ("Dzień dobry! Czy mógłbyś mi pomóc? ", " Bardzo dziękuję!"),
    "ru": ("Здравствуйте! Не могли бы вы помочь? ", " Большое спасибо!"),
    "tr": ("Merhaba! Bana yardım eder misiniz lütfen? ", " Çok teşekkürler!"),
    "zh": ("你好！能麻烦你帮个忙吗？", " 非常感谢！"),
    "ja": ("こんにちは！お手数ですが手伝っていただけますか？", " よろしくお願いします！"),
}

# context a verbose writer adds before the request; it says nothing about the task's difficulty
PREAMBLE: dict[str, tuple[str, ...]] = {
    "en": (
        "I'm putting together some notes for my team this week and there's one thing I keep "
        "going back and forth on, so I thought I'd ask here before the meeting tomorrow. ",
        "Context: I work in a small office, we share documents a lot, and my manager asked "
        "me to look into this when I have a moment. No rush at all. ",
    ),
    "es": (
        "Estoy preparando unas notas para mi equipo esta semana y hay algo sobre lo que "
        "dudo, así que prefiero preguntar antes de la reunión de mañana. ",
    ),
    "fr": (
        "Je prépare des notes pour mon équipe cette semaine et il y a un point sur lequel "
        "j'hésite, alors je préfère demander avant la réunion de demain. ",
    ),
    "de": (
        "Ich stelle diese Woche Notizen für mein Team zusammen, und bei einer Sache bin ich "
        "unsicher, deshalb frage ich lieber vor dem Meeting morgen. ",
    ),
    "pt": (
        "Estou preparando umas notas para a minha equipe esta semana e tenho uma dúvida, "
        "então prefiro perguntar antes da reunião de amanhã. ",
    ),
    "it": (
        "Sto preparando degli appunti per il mio team questa settimana e ho un dubbio, "
        "quindi preferisco chiedere prima della riunione di domani. ",
    ),
    "nl": (
        "Ik maak deze week aantekeningen voor mijn team en over één ding twijfel ik, dus "
        "ik vraag het liever voor de vergadering van morgen. ",
    ),
    "pl": (
        "Przygotowuję w tym tygodniu notatki dla zespołu i mam jedną wątpliwość, więc "
        "wolę zapytać przed jutrzejszym spotkaniem. ",
    ),
    "ru": (
        "На этой неделе я готовлю заметки для команды, и в одном месте сомневаюсь, поэтому "
        "решил спросить до завтрашней встречи. ",
    ),
    "tr": (
        "Bu hafta ekibim için notlar hazırlıyorum ve bir konuda emin değilim, o yüzden "
        "yarınki toplantıdan önce sormak istedim. ",
    ),
    "zh": ("这周我在给团队整理笔记，有一件事一直拿不准，所以想在明天开会前先问一下。",),
    "ja": (
        "今週チームのためにメモをまとめていて、一つ迷っている点があるので、明日の会議の前に聞いておきたいです。",
    ),
}

# an earlier assistant turn in a multi-turn row: says nothing about the final request
REPLY: dict[str, str] = {
    "en": "Sure, here is what I found. Let me know if you need anything else.",
    "es": "Claro, esto es lo que encontré. Dime si necesitas algo más.",
    "fr": "Bien sûr, voici ce que j'ai trouvé. Dis-moi si tu as besoin d'autre chose.",
    "de": "Klar, hier ist, was ich gefunden habe. Sag Bescheid, wenn du noch etwas brauchst.",
    "pt": "Claro, aqui está o que encontrei. Avise se precisar de mais alguma coisa.",
    "it": "Certo, ecco cosa ho trovato. Fammi sapere se ti serve altro.",
    "nl": "Natuurlijk, dit is wat ik vond. Laat het weten als je nog iets nodig hebt.",
    "pl": "Jasne, oto co znalazłem. Daj znać, jeśli potrzebujesz czegoś jeszcze.",
    "ru": "Конечно, вот что я нашёл. Скажи, если нужно что-то ещё.",
    "tr": "Tabii, bulduklarım bunlar. Başka bir şey gerekirse söyle.",
    "zh": "好的，这是我找到的内容。还需要什么请告诉我。",
    "ja": "はい、調べた結果はこちらです。他に必要なことがあれば教えてください。",
}
