# ruff: noqa: RUF001 (full-width punctuation belongs to the Chinese and Japanese text)
"""How the *simple* intents are asked, per language: the frames ``generate`` fills.

An intent's label follows the rubric in docs/classifier.md, not its wording: every intent here
asks for something a small model answers as well as a large one (a definition, one example,
a term translated, a summary or list drawn from a given text, a one-word classification, one
obvious tool call). Several take a long pasted text (``{passage}``): long but easy. Slots:
``{term}``, ``{passage}``. Languages: en es fr de pt it nl pl ru tr zh ja.
"""

from __future__ import annotations

Frames = dict[str, tuple[str, ...]]

DEFINE: Frames = {
    "en": ("What is {term}?", "Define {term} in one sentence.", "what does {term} mean"),
    "es": ("¿Qué es {term}?", "Define {term} en una frase."),
    "fr": ("Qu'est-ce que {term} ?", "Définis {term} en une phrase."),
    "de": ("Was ist {term}?", "Definiere {term} in einem Satz."),
    "pt": ("O que é {term}?", "Defina {term} em uma frase."),
    "it": ("Che cos'è {term}?", "Definisci {term} in una frase."),
    "nl": ("Wat is {term}?", "Definieer {term} in één zin."),
    "pl": ("Co to jest {term}?", "Zdefiniuj {term} jednym zdaniem."),
    "ru": ("Что такое {term}?", "Дай определение: {term}, одним предложением."),
    "tr": ("{term} nedir?", "{term} kavramını tek cümleyle tanımla."),
    "zh": ("{term}是什么？", "用一句话解释{term}。"),
    "ja": ("{term}とは何ですか？", "{term}を一文で定義してください。"),
}

EXAMPLE: Frames = {
    "en": (
        "Give one simple example of {term}.",
        "Example of {term}?",
        "Can you show me a basic example of {term}?",
    ),
    "es": ("Dame un ejemplo sencillo de {term}.", "¿Un ejemplo de {term}?"),
    "fr": ("Donne un exemple simple de {term}.", "Un exemple de {term} ?"),
    "de": ("Nenne ein einfaches Beispiel für {term}.", "Beispiel für {term}?"),
    "pt": ("Dê um exemplo simples de {term}.", "Um exemplo de {term}?"),
    "it": ("Fammi un esempio semplice di {term}.", "Un esempio di {term}?"),
    "nl": ("Geef een eenvoudig voorbeeld van {term}.", "Voorbeeld van {term}?"),
    "pl": ("Podaj prosty przykład: {term}.", "Przykład: {term}?"),
    "ru": ("Приведи простой пример: {term}.", "Пример: {term}?"),
    "tr": ("{term} için basit bir örnek ver.", "{term} örneği?"),
    "zh": ("举一个{term}的简单例子。", "{term}的例子？"),
    "ja": ("{term}の簡単な例を一つ挙げてください。", "{term}の例は？"),
}

TRANSLATE_TERM: Frames = {
    "en": (
        "Translate '{term}' into French.",
        "How do you say {term} in Spanish?",
        "{term} in German?",
    ),
    "es": ("Traduce al inglés: «{term}».", "¿Cómo se dice {term} en francés?"),
    "fr": ("Traduis en anglais : « {term} ».", "Comment dit-on {term} en espagnol ?"),
    "de": ("Übersetze ins Englische: „{term}“.", "Wie sagt man {term} auf Französisch?"),
    "pt": ('Traduza para o inglês: "{term}".', "Como se diz {term} em espanhol?"),
    "it": ("Traduci in inglese: «{term}».", "Come si dice {term} in francese?"),
    "nl": ("Vertaal naar het Engels: '{term}'.", "Hoe zeg je {term} in het Duits?"),
    "pl": ("Przetłumacz na angielski: „{term}”.", "Jak powiedzieć {term} po niemiecku?"),
    "ru": ("Переведи на английский: «{term}».", "Как сказать {term} по-немецки?"),
    "tr": ('İngilizceye çevir: "{term}".', "{term} Almanca nasıl söylenir?"),
    "zh": ("把“{term}”翻译成英文。", "{term}用法语怎么说？"),
    "ja": ("「{term}」を英語に訳してください。", "{term}はフランス語で何と言いますか？"),
}

SUMMARIZE: Frames = {
    "en": (
        "Summarize the text below in three short bullet points.\n\n{passage}",
        "{passage}\n\nTL;DR in one sentence please.",
        "Give me a two-sentence summary of this:\n\n{passage}",
    ),
    "es": (
        "Resume el siguiente texto en tres viñetas cortas.\n\n{passage}",
        "{passage}\n\nResúmelo en una frase.",
    ),
    "fr": (
        "Résume le texte ci-dessous en trois points courts.\n\n{passage}",
        "{passage}\n\nRésume ça en une phrase.",
    ),
    "de": (
        "Fasse den folgenden Text in drei kurzen Stichpunkten zusammen.\n\n{passage}",
        "{passage}\n\nBitte in einem Satz zusammenfassen.",
    ),
    "pt": (
        "Resuma o texto abaixo em três tópicos curtos.\n\n{passage}",
        "{passage}\n\nResuma em uma frase.",
    ),
    "it": (
        "Riassumi il testo seguente in tre punti brevi.\n\n{passage}",
        "{passage}\n\nRiassumilo in una frase.",
    ),
    "nl": (
        "Vat de onderstaande tekst samen in drie korte punten.\n\n{passage}",
        "{passage}\n\nVat dit samen in één zin.",
    ),
    "pl": (
        "Streść poniższy tekst w trzech krótkich punktach.\n\n{passage}",
        "{passage}\n\nStreść to w jednym zdaniu.",
    ),
    "ru": (
        "Кратко перескажи текст ниже в трёх пунктах.\n\n{passage}",
        "{passage}\n\nПерескажи в одном предложении.",
    ),
    "tr": (
        "Aşağıdaki metni üç kısa maddede özetle.\n\n{passage}",
        "{passage}\n\nBunu tek cümleyle özetle.",
    ),
    "zh": ("用三个要点总结下面的文字。\n\n{passage}", "{passage}\n\n用一句话概括。"),
    "ja": (
        "次の文章を三つの短い箇条書きで要約してください。\n\n{passage}",
        "{passage}\n\n一文でまとめてください。",
    ),
}

EXTRACT: Frames = {
    "en": (
        "List every date and every number in the text below, nothing else.\n\n{passage}",
        "Extract the names, dates and amounts from this as JSON.\n\n{passage}",
        "{passage}\n\nPull out all the figures mentioned above into a list.",
    ),
    "es": (
        "Enumera todas las fechas y cifras del texto, nada más.\n\n{passage}",
        "Extrae los nombres, fechas e importes como JSON.\n\n{passage}",
    ),
    "fr": (
        "Liste toutes les dates et tous les nombres du texte, rien d'autre.\n\n{passage}",
        "Extrais les noms, dates et montants en JSON.\n\n{passage}",
    ),
    "de": (
        "Liste alle Daten und Zahlen aus dem Text auf, sonst nichts.\n\n{passage}",
        "Extrahiere Namen, Daten und Beträge als JSON.\n\n{passage}",
    ),
    "pt": (
        "Liste todas as datas e números do texto, nada mais.\n\n{passage}",
        "Extraia nomes, datas e valores como JSON.\n\n{passage}",
    ),
    "it": (
        "Elenca tutte le date e i numeri del testo, nient'altro.\n\n{passage}",
        "Estrai nomi, date e importi in JSON.\n\n{passage}",
    ),
    "nl": (
        "Noem alle datums en getallen uit de tekst, verder niets.\n\n{passage}",
        "Haal namen, datums en bedragen eruit als JSON.\n\n{passage}",
    ),
    "pl": (
        "Wypisz wszystkie daty i liczby z tekstu, nic więcej.\n\n{passage}",
        "Wyodrębnij nazwy, daty i kwoty jako JSON.\n\n{passage}",
    ),
    "ru": (
        "Выпиши все даты и числа из текста, больше ничего.\n\n{passage}",
        "Извлеки имена, даты и суммы в формате JSON.\n\n{passage}",
    ),
    "tr": (
        "Metindeki tüm tarihleri ve sayıları listele, başka bir şey yazma.\n\n{passage}",
        "İsimleri, tarihleri ve tutarları JSON olarak çıkar.\n\n{passage}",
    ),
    "zh": (
        "列出下文中所有的日期和数字，不要别的。\n\n{passage}",
        "把名称、日期和金额提取成JSON。\n\n{passage}",
    ),
    "ja": (
        "次の文章に出てくる日付と数字をすべて挙げてください。\n\n{passage}",
        "名前、日付、金額をJSONで抽出してください。\n\n{passage}",
    ),
}

CLASSIFY: Frames = {
    "en": (
        "Is the text below positive, negative or neutral in tone? One word.\n\n{passage}",
        "{passage}\n\nWhich department should get this: sales, support or billing?",
        "Does this text mention a date? Yes or no.\n\n{passage}",
    ),
    "es": (
        "¿El tono del texto es positivo, negativo o neutro? Una palabra.\n\n{passage}",
        "{passage}\n\n¿Menciona este texto alguna fecha? Sí o no.",
    ),
    "fr": (
        "Le ton du texte est-il positif, négatif ou neutre ? Un mot.\n\n{passage}",
        "{passage}\n\nCe texte mentionne-t-il une date ? Oui ou non.",
    ),
    "de": (
        "Ist der Ton des Textes positiv, negativ oder neutral? Ein Wort.\n\n{passage}",
        "{passage}\n\nErwähnt der Text ein Datum? Ja oder nein.",
    ),
    "pt": (
        "O tom do texto é positivo, negativo ou neutro? Uma palavra.\n\n{passage}",
        "{passage}\n\nO texto menciona alguma data? Sim ou não.",
    ),
    "it": (
        "Il tono del testo è positivo, negativo o neutro? Una parola.\n\n{passage}",
        "{passage}\n\nIl testo cita una data? Sì o no.",
    ),
    "nl": (
        "Is de toon van de tekst positief, negatief of neutraal? Eén woord.\n\n{passage}",
        "{passage}\n\nNoemt deze tekst een datum? Ja of nee.",
    ),
    "pl": (
        "Czy ton tekstu jest pozytywny, negatywny czy neutralny? Jedno słowo.\n\n{passage}",
        "{passage}\n\nCzy tekst wspomina jakąś datę? Tak lub nie.",
    ),
    "ru": (
        "Тон текста положительный, отрицательный или нейтральный? Одно слово.\n\n{passage}",
        "{passage}\n\nУпоминается ли в тексте дата? Да или нет.",
    ),
    "tr": (
        "Metnin tonu olumlu mu, olumsuz mu, nötr mü? Tek kelime.\n\n{passage}",
        "{passage}\n\nBu metin bir tarih içeriyor mu? Evet ya da hayır.",
    ),
    "zh": (
        "下面文字的语气是积极、消极还是中性？一个词回答。\n\n{passage}",
        "{passage}\n\n这段文字提到日期了吗？回答是或否。",
    ),
    "ja": (
        "次の文章の口調は肯定的、否定的、中立のどれですか？一語で。\n\n{passage}",
        "{passage}\n\nこの文章に日付は出てきますか？はいかいいえで。",
    ),
}

TOOL_SIMPLE: Frames = {
    "en": ("{ask}", "Use the tool: {ask}", "quick one: {ask}"),
    "es": ("Usa la herramienta: {ask}", "Rápido: {ask}"),
    "fr": ("Utilise l'outil : {ask}", "Vite fait : {ask}"),
    "de": ("Nutze das Tool: {ask}", "Kurz: {ask}"),
    "pt": ("Use a ferramenta: {ask}", "Rapidinho: {ask}"),
    "it": ("Usa lo strumento: {ask}", "Veloce: {ask}"),
    "nl": ("Gebruik de tool: {ask}", "Even snel: {ask}"),
    "pl": ("Użyj narzędzia: {ask}", "Szybko: {ask}"),
    "ru": ("Используй инструмент: {ask}", "Быстро: {ask}"),
    "tr": ("Aracı kullan: {ask}", "Hızlıca: {ask}"),
    "zh": ("用工具查一下：{ask}", "快速：{ask}"),
    "ja": ("ツールを使って：{ask}", "手短に：{ask}"),
}

SIMPLE_INTENTS = {
    "define": DEFINE,
    "example": EXAMPLE,
    "translate_term": TRANSLATE_TERM,
    "summarize": SUMMARIZE,
    "extract": EXTRACT,
    "classify": CLASSIFY,
    "tool_simple": TOOL_SIMPLE,
}
