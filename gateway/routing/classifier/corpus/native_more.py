# ruff: noqa: RUF001 (full-width punctuation belongs to the Chinese and Japanese text)
"""More prompts written whole: Russian, Turkish, Chinese and Japanese (``native`` has the rest).

Rows are (language, domain, label, text), read by ``generate`` right after ``native.ROWS``; the
labels follow the rubric in docs/classifier.md.
"""

from __future__ import annotations

ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("ru", "chitchat", "simple", "привет! как дела? посоветуй сериал на вечер"),
    ("ru", "geography", "simple", "Какая самая высокая гора в России?"),
    ("ru", "cooking", "simple", "Сколько варить гречку?"),
    (
        "ru",
        "travel",
        "simple",
        "Завтра лечу из Москвы в Казань, вылет в 9:40, прилёт в 11:10, "
        "гостиница в центре уже забронирована, багаж один чемодан. Просто скажи: сколько ехать "
        "из аэропорта до центра?",
    ),
    ("ru", "literature", "simple", "Кто написал «Войну и мир»?"),
    ("ru", "math", "complex", "Докажи, что группа порядка p² абелева для простого p."),
    (
        "ru",
        "software",
        "complex",
        "Почему в PostgreSQL растёт таблица, хотя строки удаляются? "
        "Объясни MVCC, VACUUM и как настроить autovacuum.",
    ),
    (
        "ru",
        "physics",
        "complex",
        "Почему в сверхпроводнике ток течёт без сопротивления? Объясни куперовские пары и щель.",
    ),
    (
        "ru",
        "economics",
        "complex",
        "Почему санкции могут укрепить курс национальной валюты в "
        "краткосрочной перспективе? Разбери механизмы.",
    ),
    (
        "ru",
        "medicine",
        "complex",
        "Почему при диабетическом кетоацидозе калий в крови может "
        "быть нормальным, хотя в организме его дефицит?",
    ),
    ("tr", "chitchat", "simple", "selam! nasılsın? bana bir fıkra anlat"),
    ("tr", "geography", "simple", "Türkiye'nin başkenti neresidir?"),
    ("tr", "cooking", "simple", "Menemen nasıl yapılır, kısaca?"),
    (
        "tr",
        "travel",
        "simple",
        "Gelecek hafta İstanbul'dan İzmir'e uçuyorum, kalkış 8:30, "
        "iniş 9:40, otel Alsancak'ta, iki gece. Sadece şunu söyle: "
        "havalimanından şehre metro var mı?",
    ),
    ("tr", "history", "simple", "İstanbul hangi yıl fethedildi?"),
    (
        "tr",
        "math",
        "complex",
        "√2'nin irrasyonel olduğunu kanıtla ve aynı yöntemin √4 için "
        "neden işe yaramadığını açıkla.",
    ),
    (
        "tr",
        "economics",
        "complex",
        "Yüksek enflasyonda faiz indirimi neden kuru zayıflatır? Mekanizmayı adım adım açıkla.",
    ),
    (
        "tr",
        "software",
        "complex",
        "Mikroservislerde dağıtık işlemleri saga desenine göre nasıl "
        "tasarlarım? Telafi adımlarını ve hata senaryolarını tartış.",
    ),
    (
        "tr",
        "law",
        "complex",
        "Kira sözleşmesinde kiracı on yılı doldurunca ev sahibi "
        "sözleşmeyi feshedebilir mi? Koşulları analiz et.",
    ),
    (
        "tr",
        "biology",
        "complex",
        "Antibiyotik direnci nasıl yayılır? Yatay gen transferini ve seçilim baskısını açıkla.",
    ),
    ("zh", "chitchat", "simple", "你好！今天过得怎么样？"),
    ("zh", "geography", "simple", "长江有多长？"),
    ("zh", "cooking", "simple", "煮饺子要几分钟？"),
    (
        "zh",
        "travel",
        "simple",
        "我下周从北京坐高铁去上海，早上八点出发，中午十二点半到，酒店订在外滩附近，"
        "住三晚，两个大人一个孩子。我只想问：上海站到外滩怎么走最方便？",
    ),
    ("zh", "history", "simple", "秦始皇是哪一年统一中国的？"),
    ("zh", "math", "complex", "证明：素数有无穷多个，并说明欧几里得证明为什么不是反证法。"),
    (
        "zh",
        "software",
        "complex",
        "为什么我的 Java 服务在高并发下出现死锁？请分析锁顺序并给出排查和修复方案。",
    ),
    ("zh", "physics", "complex", "为什么量子纠缠不能用来超光速通信？请严格论证。"),
    ("zh", "economics", "complex", "为什么房价下跌会拖累整个经济？分析资产负债表衰退的机制。"),
    (
        "zh",
        "medicine",
        "complex",
        "为什么长期服用质子泵抑制剂可能导致维生素B12缺乏？解释机制和监测方案。",
    ),
    ("ja", "chitchat", "simple", "こんにちは！今日はいい天気ですね。"),
    ("ja", "geography", "simple", "富士山の高さは？"),
    ("ja", "cooking", "simple", "ご飯を炊くときの水の量は？"),
    (
        "ja",
        "travel",
        "simple",
        "来週、東京から京都まで新幹線で行きます。朝9時発、11時15分着で、"
        "ホテルは四条に二泊予約済みです。一つだけ教えてください：京都駅から四条までは地下鉄で何分ですか？",
    ),
    ("ja", "literature", "simple", "『源氏物語』の作者は誰ですか？"),
    ("ja", "math", "complex", "√2が無理数であることを証明し、同じ方法で√3も示してください。"),
    (
        "ja",
        "software",
        "complex",
        "Pythonの非同期サーバーでワーカーを増やすと遅くなる理由を分析し、"
        "CPUバウンド処理の分離方法を設計してください。",
    ),
    (
        "ja",
        "economics",
        "complex",
        "なぜ日本は長期間デフレから抜け出せなかったのか、金融政策と人口動態の両面から論じてください。",
    ),
    (
        "ja",
        "law",
        "complex",
        "口頭での不動産売買契約は日本で有効か、書面性と立証の観点から分析してください。",
    ),
    (
        "ja",
        "chemistry",
        "complex",
        "なぜ遷移金属錯体は色を持つのか、結晶場理論で説明してください。",
    ),
)
