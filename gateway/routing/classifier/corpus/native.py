"""Prompts written whole in seven European languages (not filled frames), for ``generate``.

Each row is (language, domain, label, text). The label follows the rubric in
docs/classifier.md: short questions that need expert reasoning or a proof are complex; long
messages that only ask for a lookup, a summary or a reply are simple.
"""

from __future__ import annotations

ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("es", "chitchat", "simple", "hola, ¿qué tal? ¿me recomiendas una película para esta noche?"),
    ("es", "geography", "simple", "¿Cuál es la capital de Perú?"),
    ("es", "cooking", "simple", "¿Cuántos minutos hay que hervir la pasta al dente?"),
    (
        "es",
        "travel",
        "simple",
        "Mañana viajo a Sevilla en tren desde Madrid, salgo a las 8:00 y "
        "llego a las 10:30, tengo la reserva del hotel para dos noches y el regreso el domingo. "
        "Solo dime: ¿necesito llevar el DNI en el tren?",
    ),
    ("es", "medicine", "simple", "¿Qué es la hipertensión?"),
    ("es", "math", "complex", "Demuestra que la raíz cuadrada de 3 es irracional."),
    (
        "es",
        "economics",
        "complex",
        "¿Por qué una devaluación puede empeorar la balanza comercial "
        "a corto plazo antes de mejorarla? Explica la curva J con sus supuestos.",
    ),
    (
        "es",
        "law",
        "complex",
        "¿Es válido un despido por WhatsApp en España? Analiza la forma, "
        "los plazos y la jurisprudencia relevante.",
    ),
    (
        "es",
        "software",
        "complex",
        "Mi servicio en Go pierde memoria solo en producción con "
        "miles de conexiones websocket; ¿cómo lo diagnostico y qué causas son probables?",
    ),
    (
        "es",
        "physics",
        "complex",
        "¿Por qué no se puede usar el entrelazamiento cuántico para "
        "enviar información más rápido que la luz?",
    ),
    ("fr", "chitchat", "simple", "Salut ! Tu connais une bonne blague ?"),
    ("fr", "history", "simple", "En quelle année a eu lieu la prise de la Bastille ?"),
    ("fr", "cooking", "simple", "Combien de grammes fait une cuillère à soupe de sucre ?"),
    (
        "fr",
        "travel",
        "simple",
        "Bonjour, je pars à Lyon la semaine prochaine avec mes deux "
        "enfants, nous logeons près de la gare Part-Dieu et nous avons déjà les billets de TGV. "
        "Ma seule question : quelle est la météo habituelle en avril ?",
    ),
    ("fr", "biology", "simple", "Qu'est-ce qu'une cellule ?"),
    ("fr", "math", "complex", "Montre que toute suite de Cauchy de réels converge."),
    (
        "fr",
        "law",
        "complex",
        "Un bail commercial peut-il être résilié pour travaux du "
        "bailleur ? Analyse les conditions et les indemnités possibles.",
    ),
    (
        "fr",
        "chemistry",
        "complex",
        "Pourquoi le fluor est-il plus électronégatif que le chlore "
        "alors que l'affinité électronique du chlore est plus élevée ?",
    ),
    (
        "fr",
        "finance",
        "complex",
        "Comment couvrir un portefeuille d'actions européennes contre "
        "une hausse des taux sans vendre les titres ? Compare options et futures.",
    ),
    (
        "fr",
        "literature",
        "complex",
        "En quoi L'Étranger de Camus est-il une critique de la "
        "justice plutôt qu'un roman de l'absurde ? Argumente avec le texte.",
    ),
    ("de", "chitchat", "simple", "Guten Morgen! Wie geht's dir heute?"),
    ("de", "geography", "simple", "Wie hoch ist die Zugspitze?"),
    ("de", "databases", "simple", "Was bedeutet ein Primärschlüssel?"),
    (
        "de",
        "travel",
        "simple",
        "Ich fahre nächste Woche mit dem ICE von Hamburg nach München, "
        "Abfahrt 9:12, Ankunft 15:40, Platz reserviert, Fahrrad bleibt zu Hause. Nur kurz: gibt es "
        "im ICE WLAN?",
    ),
    ("de", "finance", "simple", "Was ist ein ETF?"),
    (
        "de",
        "math",
        "complex",
        "Beweise, dass es unendlich viele Primzahlen gibt, und "
        "verallgemeinere den Beweis auf Primzahlen der Form 6k-1.",
    ),
    (
        "de",
        "software",
        "complex",
        "Warum kann ein Rust-Programm mit Arc<Mutex<T>> trotzdem "
        "verklemmen, und wie entwerfe ich die Sperrreihenfolge?",
    ),
    (
        "de",
        "law",
        "complex",
        "Ist eine Kündigung per E-Mail im deutschen Arbeitsrecht "
        "wirksam? Begründe mit § 623 BGB und Ausnahmen.",
    ),
    (
        "de",
        "physics",
        "complex",
        "Warum ist der Wirkungsgrad einer Wärmepumpe über 100 %, "
        "ohne den zweiten Hauptsatz zu verletzen? Leite die Carnot-Leistungszahl her.",
    ),
    (
        "de",
        "economics",
        "complex",
        "Führt eine Mietpreisbremse langfristig zu weniger "
        "Wohnungsangebot? Bewerte Theorie und empirische Befunde.",
    ),
    ("pt", "chitchat", "simple", "oi! tudo bem? me conta uma curiosidade"),
    ("pt", "geography", "simple", "Qual é o maior estado do Brasil?"),
    ("pt", "cooking", "simple", "Quanto tempo leva para cozinhar arroz branco?"),
    (
        "pt",
        "finance",
        "simple",
        "Recebi meu extrato: saldo inicial 1.200, depósitos 3.400, "
        "saques 2.150, tarifas 35, rendimento 12. Só me diga: qual é o saldo final?",
    ),
    ("pt", "biology", "simple", "O que é fotossíntese?"),
    (
        "pt",
        "math",
        "complex",
        "Prove por indução que 1 + 3 + ... + (2n-1) = n² e explique por que a indução é válida.",
    ),
    (
        "pt",
        "medicine",
        "complex",
        "Por que a metformina é contraindicada em insuficiência "
        "renal grave? Explique o mecanismo da acidose láctica.",
    ),
    (
        "pt",
        "law",
        "complex",
        "Um contrato verbal de compra de imóvel tem validade no Brasil? "
        "Analise forma, prova e exceções.",
    ),
    (
        "pt",
        "software",
        "complex",
        "Projete uma fila de tarefas com reprocessamento idempotente "
        "para 10 mil jobs por minuto e compare Redis e Kafka.",
    ),
    (
        "pt",
        "economics",
        "complex",
        "Por que a inflação alta prejudica mais os mais pobres? Discuta canais e evidências.",
    ),
    ("it", "chitchat", "simple", "ciao! come va? consigliami un libro leggero"),
    ("it", "history", "simple", "Chi era Giuseppe Garibaldi?"),
    ("it", "cooking", "simple", "Quanto sale si mette nell'acqua della pasta?"),
    (
        "it",
        "travel",
        "simple",
        "Domani vado da Milano a Roma in Frecciarossa, partenza alle 7, "
        "arrivo alle 10, albergo vicino a Termini già prenotato, cena con amici alle 20. Solo una "
        "cosa: a Roma serve l'ombrello a maggio?",
    ),
    ("it", "chemistry", "simple", "Qual è il simbolo chimico del ferro?"),
    (
        "it",
        "math",
        "complex",
        "Dimostra che non esiste un numero razionale il cui quadrato "
        "sia 2, e generalizza a tutti i non quadrati perfetti.",
    ),
    (
        "it",
        "physics",
        "complex",
        "Perché un satellite in orbita bassa accelera quando subisce "
        "attrito atmosferico? Spiega con l'energia.",
    ),
    (
        "it",
        "law",
        "complex",
        "Il datore di lavoro può controllare le email aziendali dei "
        "dipendenti? Analizza Statuto dei lavoratori e GDPR.",
    ),
    (
        "it",
        "databases",
        "complex",
        "Come progetto uno schema per prenotazioni senza "
        "sovrapposizioni con accesso concorrente? Confronta vincoli e lock.",
    ),
    (
        "it",
        "literature",
        "complex",
        "Perché Pirandello usa la maschera come tema centrale? "
        "Confronta Uno, nessuno e centomila con Il fu Mattia Pascal.",
    ),
    ("nl", "chitchat", "simple", "hoi! hoe gaat het? heb je een leuk weetje?"),
    ("nl", "geography", "simple", "Wat is de hoofdstad van Nederland?"),
    ("nl", "cooking", "simple", "Hoe lang moet een ei koken voor een zacht eitje?"),
    (
        "nl",
        "travel",
        "simple",
        "We gaan volgende maand met de trein van Amsterdam naar Parijs, "
        "vertrek 8:16, aankomst 11:35, hotel in de buurt van Gare du Nord, twee volwassenen. "
        "Alleen dit: hebben we een paspoort nodig?",
    ),
    ("nl", "finance", "simple", "Wat is rente?"),
    (
        "nl",
        "math",
        "complex",
        "Bewijs dat de harmonische reeks divergeert en leg uit waarom "
        "de reeks van 1/n² wel convergeert.",
    ),
    (
        "nl",
        "software",
        "complex",
        "Waarom geeft mijn Python-multiprocessingcode andere "
        "resultaten op macOS dan op Linux? Leg spawn en fork uit.",
    ),
    (
        "nl",
        "economics",
        "complex",
        "Waarom leidt een woningtekort tot hogere huren, zelfs met "
        "huurplafonds? Analyseer de effecten op lange termijn.",
    ),
    (
        "nl",
        "medicine",
        "complex",
        "Waarom is een D-dimeertest nuttig om longembolie uit te "
        "sluiten maar niet om die aan te tonen?",
    ),
    (
        "nl",
        "history",
        "complex",
        "Waarom was de Nederlandse Republiek in de zeventiende eeuw "
        "zo rijk? Weeg handel, instituties en geografie.",
    ),
    ("pl", "chitchat", "simple", "cześć! co słychać? opowiedz mi żart"),
    ("pl", "geography", "simple", "Jaka jest najdłuższa rzeka w Polsce?"),
    ("pl", "cooking", "simple", "Ile gramów mąki jest w szklance?"),
    (
        "pl",
        "travel",
        "simple",
        "Jadę jutro pociągiem z Warszawy do Krakowa, odjazd 7:05, "
        "przyjazd 9:35, hotel na Kazimierzu już zarezerwowany. Tylko jedno pytanie: czy w "
        "pociągu jest wagon restauracyjny?",
    ),
    ("pl", "history", "simple", "Kiedy Polska odzyskała niepodległość?"),
    (
        "pl",
        "math",
        "complex",
        "Udowodnij, że każda liczba naturalna większa od 1 ma "
        "jednoznaczny rozkład na czynniki pierwsze.",
    ),
    (
        "pl",
        "software",
        "complex",
        "Dlaczego mój serwis w Javie ma długie pauzy GC przy dużym "
        "ruchu i jak dobrać kolektor oraz rozmiar sterty?",
    ),
    (
        "pl",
        "law",
        "complex",
        "Czy pracodawca może zmienić warunki umowy bez wypowiedzenia "
        "zmieniającego? Przeanalizuj Kodeks pracy i orzecznictwo.",
    ),
    (
        "pl",
        "physics",
        "complex",
        "Dlaczego lód jest śliski? Porównaj wyjaśnienia ciśnieniowe i warstwy przedtopnienia.",
    ),
    (
        "pl",
        "finance",
        "complex",
        "Czy lepiej nadpłacić kredyt o zmiennej stopie, czy "
        "inwestować? Przeanalizuj ryzyko i podatki.",
    ),
)
