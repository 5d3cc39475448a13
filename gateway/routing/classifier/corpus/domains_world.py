"""Subject material for the society, culture and everyday domains of the generated corpus.

Read by ``generate`` through ``SUBJECTS``; the labels come from the rubric in docs/classifier.md
(``subject.Subject`` says which field carries which label).
"""

from __future__ import annotations

from switchman.gateway.routing.classifier.corpus.subject import Subject, tool

SUBJECTS = (
    Subject(
        name="law",
        terms=("a contract", "copyright", "a tenant's deposit", "a power of attorney", "a patent"),
        facts=(
            "How long does a US patent last?",
            "What is a notary?",
            "What does 'pro bono' mean?",
            "At what age can you vote in Germany?",
        ),
        hard=(
            "Can an employer enforce a non-compete signed after employment started, without "
            "new consideration? Analyse both majority and minority views.",
            "Does fair use cover training a model on copyrighted books? Weigh the four factors.",
            "Why can an unsigned email exchange still form a binding contract?",
            "Is a clause limiting liability for gross negligence enforceable, and why do "
            "jurisdictions differ?",
            "How does the GDPR's legitimate interest test apply to fraud screening?",
        ),
        tasks=(
            "Draft a data processing agreement clause for a sub-processor in another "
            "country, and explain each safeguard.",
            "Assess the risks in this startup's founder agreement: vesting, IP assignment, "
            "and what happens if one founder leaves in year one.",
        ),
        passage=(
            "The lease between Hall Properties and M. Diallo began on 1 March 2022 for 24 "
            "months at 1,150 per month. A deposit of 2,300 was paid. Notice must be given "
            "60 days in advance. Pets are allowed with written consent. Repairs above 200 "
            "are the landlord's responsibility."
        ),
        tool=tool("search_statutes", "Search statutes by keyword", query="keywords"),
        tool_simple="Find the statute on tenant deposits.",
        tool_complex=(
            "My landlord kept my deposit for 'wear and tear'. Search the relevant "
            "statutes, compare them with my lease terms and draft a demand letter."
        ),
    ),
    Subject(
        name="finance",
        terms=("compound interest", "a stock", "an index fund", "inflation", "a bond yield"),
        facts=(
            "What does ETF stand for?",
            "What is a dividend?",
            "What currency does Japan use?",
            "What does APR mean?",
        ),
        hard=(
            "Why can a bond fund lose money when interest rates rise, even holding "
            "government bonds?",
            "Is it better to pay off a 3% mortgage or invest at an expected 7%? Consider "
            "risk and taxes.",
            "Why does the Black-Scholes model misprice deep out-of-the-money options?",
            "How does a currency peg break, step by step, under a speculative attack?",
            "Why can a company be profitable and still run out of cash?",
        ),
        tasks=(
            "Build a retirement plan for a 35-year-old earning 60k with 20k saved: asset "
            "allocation, contributions and how to adjust in a downturn.",
            "Compare leasing and buying a delivery van fleet over five years with cash "
            "flows and sensitivity to fuel prices.",
        ),
        passage=(
            "In Q3 revenue was 4.8 million, up 12% year on year. Operating costs rose to "
            "3.9 million. Cash on hand was 2.2 million at 30 September. The company "
            "repaid 500,000 of its credit line and hired 14 people, bringing headcount "
            "to 86."
        ),
        tool=tool("get_quote", "Get the latest price of a ticker", ticker="ticker symbol"),
        tool_simple="What's the current price of AAPL?",
        tool_complex=(
            "Compare my three holdings' performance over the year against the index, "
            "work out which one drove the losses and propose a rebalancing."
        ),
    ),
    Subject(
        name="economics",
        terms=("supply and demand", "GDP", "opportunity cost", "a tariff", "unemployment"),
        facts=(
            "What does GDP stand for?",
            "Who wrote The Wealth of Nations?",
            "What is a recession?",
            "Which institution sets US interest rates?",
        ),
        hard=(
            "Why can a minimum wage rise leave employment unchanged in a monopsony market?",
            "Does quantitative easing cause inflation? Explain when it does and does not.",
            "Why might a tariff on steel cost more jobs than it saves?",
            "Explain the Lucas critique and why it matters for policy models.",
            "Why do some countries with abundant resources grow slower?",
        ),
        tasks=(
            "Evaluate a proposed universal basic income for a mid-sized country: funding, "
            "labour supply effects and inflation risks.",
            "Design a congestion pricing scheme for a city centre and analyse who gains and "
            "who loses.",
        ),
        passage=(
            "Unemployment fell from 6.1% in January to 5.4% in June. Inflation averaged "
            "3.2% over the same period. The central bank held its rate at 4.25% at the "
            "April and June meetings. Exports grew 8% while imports grew 5%."
        ),
        tool=tool(
            "get_indicator",
            "Fetch an economic indicator",
            country="country",
            indicator="indicator name",
        ),
        tool_simple="What was Canada's inflation rate last month?",
        tool_complex=(
            "Pull inflation, wages and rents for these four cities, compute real wage "
            "growth and explain which city's workers lost the most purchasing power."
        ),
    ),
    Subject(
        name="history",
        terms=(
            "the Renaissance",
            "the Cold War",
            "the printing press",
            "the Silk Road",
            "the Industrial Revolution",
        ),
        facts=(
            "When did World War II end?",
            "Who was the first emperor of Rome?",
            "In which year did the Berlin Wall fall?",
            "Who painted the Mona Lisa?",
        ),
        hard=(
            "Why did the Western Roman Empire fall while the Eastern survived for another "
            "thousand years?",
            "Was the Treaty of Versailles a cause of the Second World War? Weigh "
            "the historiography.",
            "Why did the Industrial Revolution begin in Britain rather than China?",
            "How reliable is Herodotus on the Persian Wars, and how do historians test him?",
            "Why did the Meiji Restoration succeed where the Qing "
            "self-strengthening movement failed?",
        ),
        tasks=(
            "Write a source-based lesson comparing three accounts of the storming of the "
            "Bastille, with questions that test bias.",
            "Analyse the long-term economic effects of the Black Death on European labour.",
        ),
        passage=(
            "The town charter was granted in 1246. By 1377 the poll tax lists recorded "
            "1,830 adults. The guildhall was rebuilt in 1412 after a fire, and the bridge "
            "in 1530. A census of 1801 counted 4,200 inhabitants and 612 houses."
        ),
        tool=tool("search_archive", "Search a historical archive", query="search terms"),
        tool_simple="Find the date the town charter was granted.",
        tool_complex=(
            "Search the archive for letters about the 1530 bridge, compare the "
            "accounts of its cost and explain why they disagree."
        ),
    ),
    Subject(
        name="geography",
        terms=("a delta", "plate tectonics", "a monsoon", "latitude", "a fjord"),
        facts=(
            "What is the capital of Australia?",
            "Which is the longest river in Africa?",
            "How many continents are there?",
            "What is the highest mountain in Europe?",
        ),
        hard=(
            "Why does the west coast of Europe have mild winters at latitudes "
            "where Canada freezes?",
            "Why do deserts form on the western edges of continents around 20-30 degrees?",
            "How do you explain the Himalayas still rising despite erosion?",
            "Why is the Dead Sea shrinking, and what would a canal change?",
            "Why are earthquakes deeper along the west coast of South America further inland?",
        ),
        tasks=(
            "Plan a climate adaptation strategy for a coastal city of 300,000 facing 50 cm "
            "of sea level rise by 2080.",
            "Compare three sites for a new reservoir using geology, population and ecology.",
        ),
        passage=(
            "The valley is 42 km long and drains an area of 610 square km. Annual rainfall "
            "averages 1,140 mm, mostly between October and March. The main town, at 230 m "
            "above sea level, has 18,500 residents. Floods were recorded in 1953, 1987 and "
            "2014."
        ),
        tool=tool("get_place", "Look up facts about a place", place="place name"),
        tool_simple="What is the population of Lyon?",
        tool_complex=(
            "Compare these three towns for a family move: climate, flood risk, and "
            "distance to hospitals, then rank them and explain the trade-offs."
        ),
    ),
    Subject(
        name="literature",
        terms=("a sonnet", "an unreliable narrator", "magical realism", "a metaphor", "free verse"),
        facts=(
            "Who wrote Don Quixote?",
            "How many lines does a sonnet have?",
            "Who wrote Pride and Prejudice?",
            "In which language did Tolstoy write?",
        ),
        hard=(
            "Why does Kafka never explain the charge in The Trial? Argue with the text.",
            "Is Humbert Humbert's narration in Lolita an indictment or a seduction of the reader?",
            "How does Woolf's free indirect style change the meaning of time in Mrs Dalloway?",
            "Write a villanelle about insomnia that keeps both refrains meaningful.",
            "Why is Borges's Pierre Menard more than a joke about copying?",
        ),
        tasks=(
            "Write a 1,500-word short story in second person about a lighthouse keeper, "
            "with a twist that recontextualises the opening.",
            "Compare the treatment of guilt in Crime and Punishment and Macbeth.",
        ),
        passage=(
            "The novel was published in 1927 in an edition of 2,000 copies. A second "
            "printing of 3,500 followed in 1929. The author revised chapter 4 for the 1935 "
            "edition, cutting about 1,200 words. It has been translated into 31 languages."
        ),
        tool=tool("search_books", "Search a library catalogue", query="title or author"),
        tool_simple="Find books by Chimamanda Ngozi Adichie.",
        tool_complex=(
            "Build a 10-week reading list on memory in fiction: search the catalogue, "
            "balance periods and languages, and justify the order."
        ),
    ),
    Subject(
        name="cooking",
        terms=("sourdough", "a roux", "caramelisation", "blanching", "an emulsion"),
        facts=(
            "How long do you boil an egg for a soft yolk?",
            "What temperature is medium-rare beef?",
            "What is a teaspoon in millilitres?",
            "Is a tomato a fruit?",
        ),
        hard=(
            "Why does my hollandaise split when I add butter too fast, and how do I rescue it "
            "chemically?",
            "Why do my macarons crack and lack feet? Walk through every likely cause.",
            "Scale this bread recipe to 72% hydration at 3 kg flour and adjust the yeast for "
            "a 14-hour cold proof.",
            "Why does brining make meat juicier? Explain the protein chemistry.",
            "Design a tasting menu where each course's leftovers feed the next.",
        ),
        tasks=(
            "Plan meals for a week for a family of four on 80 euros with one vegetarian "
            "and one nut allergy, with a shopping list and prep schedule.",
            "Develop a gluten-free croissant recipe and explain how each substitute replaces "
            "gluten's role.",
        ),
        passage=(
            "Ingredients: 500 g flour, 350 g water, 10 g salt, 100 g starter. Mix and rest "
            "for 1 hour, then fold four times at 30-minute intervals. Proof for 4 hours at "
            "24 degrees, shape, and refrigerate overnight. Bake at 250 degrees for 20 "
            "minutes covered and 25 minutes uncovered."
        ),
        tool=tool("find_recipe", "Search recipes", query="dish or ingredient"),
        tool_simple="Find a recipe for pancakes.",
        tool_complex=(
            "I have leeks, lentils, feta and half a chicken. Find recipes, combine "
            "them into three dinners with no waste and plan the cooking order."
        ),
    ),
    Subject(
        name="travel",
        terms=("a visa", "jet lag", "travel insurance", "a layover", "a rail pass"),
        facts=(
            "Do I need a passport to fly from Paris to Rome?",
            "What currency is used in Switzerland?",
            "What time zone is Tokyo in?",
            "Which airport serves Lisbon?",
        ),
        hard=(
            "Is it cheaper to buy a rail pass or point-to-point tickets for 9 trips across "
            "Germany, Austria and Switzerland in 3 weeks? Reason it through.",
            "How do I route a round-the-world ticket to minimise jet lag with six stops?",
            "Can I transit through the UK without a visa on an Indian passport with a US "
            "green card? Consider the exceptions.",
            "Why are one-way flights sometimes more expensive than returns?",
            "Plan an accessible two-week trip in Japan for a wheelchair user.",
        ),
        tasks=(
            "Plan a 10-day family itinerary in Portugal on 3,000 euros with a toddler, "
            "balancing driving time, naps and beaches.",
            "Compare travel insurance policies for a trekking trip to Nepal and explain what "
            "each excludes.",
        ),
        passage=(
            "Booking ref K7Q2: flight TP 1351 departs Lisbon 07:45 on 12 May, arrives "
            "London 10:20. Return TP 1358 on 19 May at 18:05. Two adults, one child. "
            "Hotel Riverside, 7 nights, check-in 14:00. Total paid: 1,684 euros."
        ),
        tool=tool(
            "search_flights", "Search flights", origin="from", destination="to", date="travel date"
        ),
        tool_simple="Find flights from Madrid to Berlin on 3 June.",
        tool_complex=(
            "Find the cheapest way to visit Oslo, Stockholm and Helsinki in 8 days "
            "from Madrid, comparing flights with ferries and trains, and build the plan."
        ),
    ),
)
