"""Subject material for the science and technology domains of the generated corpus.

Read by ``generate`` through ``SUBJECTS``; the labels come from the rubric in docs/classifier.md
(``subject.Subject`` says which field carries which label).
"""

from __future__ import annotations

from switchman.gateway.routing.classifier.corpus.subject import Subject, tool

SUBJECTS = (
    Subject(
        name="math",
        terms=(
            "a prime number",
            "the median",
            "a derivative",
            "a vector space",
            "modular arithmetic",
        ),
        facts=(
            "What is 15% of 80?",
            "Is 91 a prime number?",
            "What is the square root of 144?",
            "How many degrees are in a triangle?",
        ),
        hard=(
            "Prove that there are infinitely many primes of the form 4k+3.",
            "Show that every bounded monotone sequence of reals converges.",
            "Why is the set of real numbers uncountable?",
            "Find all integer solutions of x^2 - 2y^2 = 1.",
            "Is every continuous function on [0,1] Riemann integrable? Justify.",
        ),
        tasks=(
            "Design a semester-long assessment plan for an introductory proof course that "
            "measures understanding rather than memorised templates, with rubrics.",
            "Analyse when Monte Carlo integration beats quadrature in high dimensions and "
            "estimate the error of each for a 10-dimensional integral.",
        ),
        passage=(
            "The survey recorded 1,240 households in 2021 and 1,315 in 2022. Average monthly "
            "spending rose from 2,310 to 2,455 euros, while the share spending more than "
            "3,000 euros went from 18% to 21%. The median household size stayed at 2.4 "
            "people. Response rates were 62% and 58%. The report notes that 37 households "
            "were replaced between waves and that weights were recalibrated in March 2022."
        ),
        tool=tool("calculate", "Evaluate an arithmetic expression", expression="the expression"),
        tool_simple="What is 1,234 times 5,678?",
        tool_complex=(
            "A loan of 250,000 at 4.1% over 25 years or 3.6% over 20 years with a "
            "3,000 fee: work out both schedules, total interest and which is cheaper "
            "if I expect to repay early after 8 years."
        ),
    ),
    Subject(
        name="physics",
        terms=("kinetic energy", "a photon", "Ohm's law", "entropy", "the speed of light"),
        facts=(
            "What is the SI unit of force?",
            "What is the speed of light in vacuum?",
            "Who formulated the laws of motion?",
            "What is the boiling point of water in kelvin?",
        ),
        hard=(
            "Why does time dilation not let a traveller send signals faster than light?",
            "Derive the period of a pendulum for large amplitudes, not only small ones.",
            "Why is the sky blue but sunsets red? Use Rayleigh scattering quantitatively.",
            "Explain why a superconductor expels magnetic fields and how that differs from "
            "perfect conductivity.",
            "Can entropy decrease locally without violating the second law? Give a "
            "rigorous argument.",
        ),
        tasks=(
            "Design an undergraduate lab that measures g to 0.1% with cheap equipment, "
            "with an error budget for each source of uncertainty.",
            "Compare three ways of storing grid energy overnight for a town of 50,000 people "
            "and estimate costs, losses and failure modes.",
        ),
        passage=(
            "The probe launched on 14 March 2019 and reached orbit after 212 days. Its "
            "solar panels delivered 4.2 kW at Earth and 1.7 kW at the target. The main "
            "engine fired 11 times, using 930 kg of propellant. The mission team reported "
            "a pointing error of 0.02 degrees and a data rate of 128 kbit/s."
        ),
        tool=tool(
            "unit_convert",
            "Convert a quantity between units",
            value="amount with unit",
            target="target unit",
        ),
        tool_simple="Convert 30 miles per hour to metres per second.",
        tool_complex=(
            "Check whether a 2 kg drone with a 90 Wh battery can hover for 25 minutes: "
            "convert the figures, estimate the power needed and tell me what to change."
        ),
    ),
    Subject(
        name="chemistry",
        terms=("a buffer solution", "a covalent bond", "pH", "a catalyst", "molar mass"),
        facts=(
            "What is the chemical symbol for sodium?",
            "What is the pH of pure water?",
            "How many protons does carbon have?",
            "What gas do plants absorb?",
        ),
        hard=(
            "Why is the second ionisation energy of sodium so much larger than the first?",
            "Explain why benzene does not undergo addition reactions like alkenes do.",
            "Predict the major product of HBr adding to 3-methyl-1-butene and explain the "
            "rearrangement.",
            "Why does adding salt raise the boiling point of water? Derive the expression.",
            "Why are transition metal complexes often coloured? Use crystal field theory.",
        ),
        tasks=(
            "Plan a synthesis of ibuprofen from isobutylbenzene and compare the classic "
            "route with the greener three-step process.",
            "Design an experiment to determine the rate law of a reaction with two reactants "
            "and explain how to separate the orders.",
        ),
        passage=(
            "Batch 47 was prepared on 2 June using 12.5 g of sodium chloride in 250 mL of "
            "water. The solution was heated to 60 degrees for 15 minutes and filtered. The "
            "yield was 91%. Batch 48, prepared on 9 June, used 13.0 g and gave 88%. Both "
            "batches were stored at 4 degrees and labelled by technician R. Osei."
        ),
        tool=tool("lookup_compound", "Look up a chemical compound", name="compound name"),
        tool_simple="Look up the molar mass of caffeine.",
        tool_complex=(
            "Find three solvents that dissolve both compounds in my mixture, rank them "
            "by toxicity and boiling point, and propose a separation procedure."
        ),
    ),
    Subject(
        name="biology",
        terms=(
            "photosynthesis",
            "a mitochondrion",
            "natural selection",
            "an enzyme",
            "DNA replication",
        ),
        facts=(
            "How many chromosomes do humans have?",
            "What is the largest organ of the body?",
            "Which organelle makes ATP?",
            "What do bees collect from flowers?",
        ),
        hard=(
            "Why can't evolution produce a wheel in animals? Argue from developmental constraints.",
            "Explain how CRISPR-Cas9 distinguishes self from non-self DNA.",
            "Why do some antibiotics stop working within a decade, and what slows it down?",
            "How can altruism evolve when it lowers an individual's fitness?",
            "Why does the Krebs cycle need oxygen even though no step uses it directly?",
        ),
        tasks=(
            "Design a field study to test whether urban noise changes bird song frequency, "
            "including controls, sample size and confounders.",
            "Evaluate the evidence for and against the endosymbiotic origin of chloroplasts.",
        ),
        passage=(
            "Plot B held 34 oak trees in 2015 and 29 in 2023. Acorn counts fell from an "
            "average of 2,100 per tree to 1,650. Three nest boxes were added in April 2018 "
            "and blue tits used two of them every year. The ground survey of 12 May 2023 "
            "found 41 plant species, four more than in 2015."
        ),
        tool=tool("species_info", "Look up a species", species="species name"),
        tool_simple="Look up the average lifespan of a red fox.",
        tool_complex=(
            "For my pond, find which of these five fish species can live together, "
            "check their temperature ranges and plan a stocking order over a year."
        ),
    ),
    Subject(
        name="medicine",
        terms=("blood pressure", "a vaccine", "insulin", "an antibiotic", "cholesterol"),
        facts=(
            "What is a normal resting heart rate?",
            "Which organ produces insulin?",
            "What vitamin does sunlight help the body make?",
            "How many bones are in the adult body?",
        ),
        hard=(
            "Why can a normal troponin one hour after chest pain not rule out a heart attack?",
            "A patient on warfarin starts clarithromycin: what happens and why?",
            "Why does correcting chronic hyponatraemia too fast cause harm?",
            "How do you interpret a positive test for a disease with 1% prevalence, 95% "
            "sensitivity and 90% specificity?",
            "Why are beta blockers avoided in cocaine-induced chest pain?",
        ),
        tasks=(
            "Draft a differential diagnosis and work-up plan for a 58-year-old with "
            "fatigue, weight loss and a new anaemia, with reasons for each test.",
            "Critically appraise a trial design comparing two statins on mortality over 2 years.",
        ),
        passage=(
            "Clinic visit, 3 October: patient aged 47, weight 82 kg, blood pressure 138/88, "
            "pulse 72. Medications: metformin 500 mg twice daily, atorvastatin 20 mg. "
            "HbA1c 7.1%, previously 7.6% in April. Next review booked for 9 January. "
            "Allergies: penicillin (rash)."
        ),
        tool=tool("drug_lookup", "Look up a medicine's label", drug="drug name"),
        tool_simple="Look up the usual adult dose of paracetamol.",
        tool_complex=(
            "My father takes six medicines; check each for interactions with the "
            "others, group the risks by severity and tell me what to ask his doctor."
        ),
    ),
    Subject(
        name="software",
        terms=("a hash map", "recursion", "a git branch", "an API", "unit testing"),
        facts=(
            "What does HTML stand for?",
            "Which keyword defines a function in Python?",
            "What port does HTTPS use by default?",
            "What does 'git pull' do?",
        ),
        hard=(
            "Why can double-checked locking be broken without volatile in Java?",
            "Why is my async Python service slower with more workers? It does CPU-bound JSON "
            "parsing in handlers.",
            "Prove that comparison sorting needs Omega(n log n) comparisons.",
            "Why does this Go code deadlock: a goroutine sends on an unbuffered channel that "
            "is read only after wg.Wait()?",
            "How would you make a distributed counter exactly-once under retries?",
        ),
        tasks=(
            "Design a rate limiter for a multi-region API with 50k requests per second, "
            "compare token bucket and sliding window, and handle clock skew.",
            "Refactor a 3,000-line payment module into services without downtime: plan the "
            "steps, tests and rollback.",
        ),
        passage=(
            "Release 4.2.0 shipped on 18 February with 37 merged pull requests. It fixed "
            "12 bugs, including a crash on empty config files, added a --dry-run flag and "
            "dropped support for Python 3.8. Downloads reached 48,000 in the first week. "
            "The next release is planned for April."
        ),
        tool=tool("run_tests", "Run a project's test suite", path="test path"),
        tool_simple="Run the tests in tests/unit.",
        tool_complex=(
            "The nightly build fails intermittently. Run the suite several times, "
            "find which tests are flaky, work out whether they share a cause and "
            "propose a fix."
        ),
    ),
    Subject(
        name="databases",
        terms=("a primary key", "an index", "a join", "a transaction", "normalisation"),
        facts=(
            "What does SQL stand for?",
            "What is the default port of PostgreSQL?",
            "Which SQL keyword removes duplicate rows?",
            "What does COUNT(*) return?",
        ),
        hard=(
            "Why can two REPEATABLE READ transactions in PostgreSQL still produce a write "
            "skew anomaly?",
            "Why does adding an index sometimes make a query slower?",
            "How do you choose a shard key for a multi-tenant table with a few huge tenants?",
            "Why can't a B-tree index serve LIKE '%term' efficiently, and what can?",
            "Explain why two-phase commit blocks when the coordinator fails.",
        ),
        tasks=(
            "Design a schema for a booking system with overlapping reservations, and "
            "explain how to prevent double booking under concurrency.",
            "Plan a zero-downtime migration of a 2 TB table from MySQL to PostgreSQL.",
        ),
        passage=(
            "The orders table holds 18.4 million rows, growing by 42,000 a day. The largest "
            "customer has 2.1 million orders. Nightly vacuum takes 38 minutes. The replica "
            "lag peaked at 14 seconds on 21 May during the catalogue import. Disk usage is "
            "at 71% of 1 TB."
        ),
        tool=tool("run_sql", "Run a read-only SQL query", query="the SQL query"),
        tool_simple="How many rows are in the customers table?",
        tool_complex=(
            "Find why checkout got slow last week: look at the slowest queries, "
            "compare their plans before and after, and suggest indexes with their cost."
        ),
    ),
    Subject(
        name="networking",
        terms=("DNS", "a subnet mask", "TCP", "a load balancer", "TLS"),
        facts=(
            "What port does SSH use?",
            "What does DNS stand for?",
            "How many bits are in an IPv4 address?",
            "What does ping measure?",
        ),
        hard=(
            "Why does TCP throughput collapse on a long fat network with 1% loss?",
            "Why can a DNS change take days to reach every user even with a low TTL?",
            "How does BGP route leak propagate, and why doesn't RPKI stop it?",
            "Why does HTTP/2 suffer head-of-line blocking on lossy links while HTTP/3 does not?",
            "Explain why a /31 subnet works for point-to-point links despite "
            "having no broadcast address.",
        ),
        tasks=(
            "Design the network for a 3-site company with failover between ISPs, VPN and "
            "segmentation, and justify each choice.",
            "Plan how to debug intermittent 502s behind a load balancer that only happen at peak.",
        ),
        passage=(
            "Site A has 120 devices on 10.1.0.0/24 and Site B 85 devices on 10.2.0.0/24. "
            "The WAN link runs at 200 Mbit/s with 18 ms latency. Outages were logged on "
            "4 July (22 minutes) and 19 August (7 minutes). The firewall was upgraded to "
            "version 7.4 on 2 September."
        ),
        tool=tool("dns_lookup", "Resolve a host name", host="host name"),
        tool_simple="What IP address does example.org resolve to?",
        tool_complex=(
            "Users in one region cannot reach our API. Resolve the name from several "
            "resolvers, compare the answers and TTLs, and explain the likely cause."
        ),
    ),
)
