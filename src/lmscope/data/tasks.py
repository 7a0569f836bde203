"""Small fine-tuning tasks generated from templates, and loading of a user's task file.

Every generator takes its randomness from ``random.Random(seed)`` only, so the same name, size
and seed always give the same rows. Classification tasks cycle through their labels, so the
label counts differ by at most one; the rows are then shuffled.

Row formats: ``{"text": str, "label": str}`` for classification, ``{"text": str}`` for language
modelling (``"lm"``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

from lmscope._io import read_jsonl
from lmscope.errors import LmscopeError, check_int

TASKS: dict[str, str] = {
    "sentiment": "binary sentiment (negative/positive) of short product, restaurant and movie reviews, "
    "with negation and mixed clauses",
    "topic": "4-class topic (sports/science/business/cooking) of one- or two-sentence news-like snippets",
    "recipes-lm": "language modelling on short templated cooking instructions (text only, no labels)",
}

_KINDS: dict[str, str] = {"sentiment": "classification", "topic": "classification", "recipes-lm": "lm"}

_MAX_TRIES = 30  # attempts to draw a text not generated before, before accepting a repeat


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


# --------------------------------------------------------------------------------------------
# sentiment
# --------------------------------------------------------------------------------------------

_DOMAINS: dict[str, dict[str, list[str]]] = {
    "movie": {
        "items": ["movie", "film", "sequel", "documentary", "thriller", "comedy", "animated film", "drama"],
        "aspects": [
            "the plot",
            "the acting",
            "the soundtrack",
            "the dialogue",
            "the ending",
            "the camera work",
            "the pacing",
            "the lead actor",
            "the script",
            "the special effects",
        ],
        "openers": [
            "We watched this {item} on Friday night.",
            "I saw this {item} at the cinema last week.",
            "My friends talked me into watching this {item}.",
            "I streamed this {item} at home.",
            "I went to the late showing of this {item}.",
        ],
        "pos_verdicts": [
            "I would happily watch it again.",
            "I would recommend this {item} to anyone.",
            "Easily one of the best films I have seen this year.",
            "I left the cinema smiling.",
            "Worth every minute.",
        ],
        "neg_verdicts": [
            "I would not watch it again.",
            "I would not recommend this {item} to anyone.",
            "I wanted my two hours back.",
            "I nearly walked out halfway through.",
            "A waste of an evening.",
        ],
    },
    "restaurant": {
        "items": ["restaurant", "cafe", "bistro", "diner", "pizzeria", "noodle bar", "steakhouse", "bakery"],
        "aspects": [
            "the food",
            "the service",
            "the pasta",
            "the dessert",
            "the staff",
            "the atmosphere",
            "the soup",
            "the coffee",
            "the main course",
            "the waiter",
        ],
        "openers": [
            "We had dinner at this {item} last night.",
            "I stopped at this {item} for lunch.",
            "We booked a table at this {item} for a birthday.",
            "I tried this {item} on Sunday.",
            "A friend took me to this {item} after work.",
        ],
        "pos_verdicts": [
            "We will definitely come back.",
            "I would recommend this {item} to anyone.",
            "Worth every penny.",
            "Already planning my next visit.",
            "One of the best meals I have had in a while.",
        ],
        "neg_verdicts": [
            "We will not be coming back.",
            "I would not recommend this {item} to anyone.",
            "Not worth the money.",
            "I left hungry and annoyed.",
            "One of the worst meals I have had in a while.",
        ],
    },
    "product": {
        "items": [
            "phone",
            "blender",
            "pair of headphones",
            "vacuum cleaner",
            "laptop",
            "kettle",
            "backpack",
            "desk lamp",
            "coffee machine",
        ],
        "aspects": [
            "the battery",
            "the screen",
            "the build quality",
            "the sound",
            "the design",
            "the setup",
            "the charger",
            "the instructions",
            "the customer support",
            "the packaging",
        ],
        "openers": [
            "I bought this {item} a month ago.",
            "I have been using this {item} for a few weeks.",
            "This {item} arrived on Tuesday.",
            "I ordered this {item} as a gift.",
            "I replaced my old {item} with this one.",
        ],
        "pos_verdicts": [
            "I would buy it again.",
            "I would recommend this {item} to anyone.",
            "Worth every penny.",
            "Best purchase I have made this year.",
            "Five stars from me.",
        ],
        "neg_verdicts": [
            "I would not buy it again.",
            "I would not recommend this {item} to anyone.",
            "Not worth the money.",
            "I am sending it back.",
            "One star, and that is generous.",
        ],
    },
}

_POS_ADJ = [
    "excellent",
    "wonderful",
    "superb",
    "delightful",
    "impressive",
    "fantastic",
    "great",
    "lovely",
    "outstanding",
    "brilliant",
    "charming",
    "first-rate",
]
_NEG_ADJ = [
    "terrible",
    "awful",
    "disappointing",
    "dull",
    "poor",
    "mediocre",
    "frustrating",
    "bland",
    "sloppy",
    "dreadful",
    "forgettable",
    "annoying",
]
# Negated phrases whose meaning is positive / negative.
_NEGATED_POS = [
    "not bad at all",
    "never disappointing",
    "not boring for a second",
    "far from mediocre",
    "anything but dull",
    "not a letdown in any way",
    "never once annoying",
    "not at all bland",
]
_NEGATED_NEG = [
    "not good",
    "never impressive",
    "not worth it",
    "far from great",
    "anything but enjoyable",
    "not exactly wonderful",
    "never once exciting",
    "not up to much",
]
_INTENSIFIERS = ["", "", "", "really ", "truly ", "genuinely ", "pretty ", "surprisingly "]
_CONTRASTS = ["but", "but", "though in the end", "yet"]


def _sentiment_text(rng: random.Random, label: str) -> str:
    domain = _DOMAINS[rng.choice(sorted(_DOMAINS))]
    item = rng.choice(domain["items"])
    a, b = rng.sample(domain["aspects"], 2)
    good = label == "positive"
    adj = rng.choice(_POS_ADJ if good else _NEG_ADJ)
    other_adj = rng.choice(_NEG_ADJ if good else _POS_ADJ)
    negated = rng.choice(_NEGATED_POS if good else _NEGATED_NEG)
    verdict = rng.choice(domain["pos_verdicts" if good else "neg_verdicts"]).format(item=item)
    opener = rng.choice(domain["openers"]).format(item=item)
    inten = rng.choice(_INTENSIFIERS)

    form = rng.randrange(7)
    if form == 0:  # plain statement
        body = f"{_cap(a)} was {inten}{adj}, and {b} was {rng.choice(_POS_ADJ if good else _NEG_ADJ)}."
    elif form == 1:  # negation carries the sentiment
        body = f"{_cap(a)} was {negated}."
    elif form == 2:  # mixed: the opposite first, the verdict after the contrast
        body = f"{_cap(a)} was {other_adj}, {rng.choice(_CONTRASTS)} {b} was {inten}{adj}."
    elif form == 3:  # mixed with negation after the contrast
        body = f"{_cap(a)} was {other_adj}, but overall the {item} was {negated}."
    elif form == 4:  # concession first, then what counts
        body = f"Although {a} was {other_adj}, {b} was {inten}{adj}."
    elif form == 5:  # expectation turned around
        expected = "nothing special" if good else "something special"
        body = f"I expected {expected}, but {a} was {negated}."
    else:  # verdict only, with a hedge of the opposite polarity
        body = f"{_cap(a)} could have been better." if good else f"{_cap(a)} was fine."
        body += f" Even so, {b} was {inten}{adj}."
    parts = [body]
    if rng.random() < 0.5:
        parts.insert(0, opener)
    if form in (2, 3, 4, 6) or rng.random() < 0.4:
        parts.append(verdict)
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# topic
# --------------------------------------------------------------------------------------------

_TOWNS = [
    "Ashford",
    "Brennock",
    "Calder Bay",
    "Dunmore",
    "Elmsworth",
    "Fairhaven",
    "Glenrock",
    "Harlow Vale",
    "Ironbridge",
    "Kestrel Point",
    "Lowmarsh",
    "Millbrook",
    "Northgate",
    "Oakridge",
    "Pinecrest",
    "Redcliff",
    "Stonebury",
    "Westerly",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_SPORTS_TEAM_SUFFIX = ["Rovers", "United", "Athletic", "Wanderers", "City", "Falcons", "Harriers", "Lions"]
_PLAYERS = [
    "Ada Moreno",
    "Ben Okafor",
    "Chloe Laurent",
    "Dev Patel",
    "Elin Berg",
    "Farid Haddad",
    "Grace Nwosu",
    "Hugo Lindqvist",
    "Iris Tanaka",
    "Jonas Weber",
    "Kara Osei",
    "Luis Ortega",
]
_SPORTS_EVENTS = [
    "the league final",
    "the regional cup",
    "the season opener",
    "the semi-final",
    "the derby",
    "the national championship",
]
_INSTITUTIONS = [
    "the University of {town}",
    "the {town} Institute of Technology",
    "a laboratory in {town}",
    "the {town} Marine Research Station",
    "a team at {town} Medical School",
]
_SCIENCE_FINDINGS = [
    "a common soil bacterium can break down certain plastics",
    "songbirds adjust the pitch of their calls in noisy cities",
    "a new battery material keeps its charge after thousands of cycles",
    "coral larvae use sound to find healthy reefs",
    "a protein in tears helps protect the eye from infection",
    "sea ice in the region formed later than usual this winter",
    "honeybees can learn to recognise simple shapes",
    "a faint comet will pass close to the Sun next spring",
    "a fossil found in a quarry belongs to a previously unknown species of fish",
    "a gene linked to drought tolerance can be switched on in wheat",
    "a cheap sensor can detect lead in drinking water",
    "deep-sea microbes survive on hydrogen released from rocks",
]
_SCIENCE_TAILS = [
    "The results were published in a peer-reviewed journal.",
    "The researchers say more experiments are needed.",
    "The study took four years and involved hundreds of samples.",
    "Other scientists called the findings promising but preliminary.",
    "The team plans to repeat the measurements next year.",
]
_COMPANY_FIRST = [
    "Halden",
    "Brightwater",
    "Corvel",
    "Marrow",
    "Tessaly",
    "Quillon",
    "Arden",
    "Veyra",
    "Lumen",
    "Oakhurst",
]
_COMPANY_SECOND = [
    "Motors",
    "Energy",
    "Systems",
    "Retail",
    "Logistics",
    "Foods",
    "Telecom",
    "Bank",
    "Pharma",
    "Airlines",
]
_BUSINESS_METRICS = [
    "quarterly profit",
    "annual revenue",
    "online sales",
    "operating costs",
    "order volumes",
    "export earnings",
]
_QUARTERS = [
    "the first quarter",
    "the second quarter",
    "the third quarter",
    "the fourth quarter",
    "the past year",
    "the first half of the year",
]
_BUSINESS_COSTS = ["operating costs", "energy use", "office space", "its debt", "delivery times"]
_HORIZONS = ["the next two years", "the next eighteen months", "the coming year", "the next five years"]
_BUSINESS_TAILS = [
    "Its shares rose in early trading.",
    "Its shares fell after the announcement.",
    "Analysts had expected a smaller change.",
    "The company plans to open new offices.",
    "Investors will watch the next results closely.",
    "The board also approved a dividend.",
]
_DISHES = [
    "lemon risotto",
    "mushroom pie",
    "spiced lentil soup",
    "roast chicken",
    "apple crumble",
    "vegetable curry",
    "garlic flatbread",
    "tomato tart",
    "fish stew",
    "ginger biscuits",
    "pea and mint soup",
    "chocolate brownies",
]
_COOKING_TIPS = [
    "resting meat for ten minutes after roasting keeps it juicy",
    "adding a pinch of salt to sweet bakes brings out the flavour",
    "toasting spices in a dry pan makes curries more fragrant",
    "chilling pastry before baking stops it from shrinking",
    "browning onions slowly gives soups a deeper taste",
    "a squeeze of lemon at the end brightens a heavy stew",
]
_CHEFS = [
    "the head chef at a {town} bistro",
    "a baker from {town}",
    "a cookery teacher in {town}",
    "the winner of the {town} home cooking contest",
]


def _team(rng: random.Random) -> str:
    return f"{rng.choice(_TOWNS)} {rng.choice(_SPORTS_TEAM_SUFFIX)}"


def _topic_sports(rng: random.Random) -> str:
    home, away = _team(rng), _team(rng)
    while away.split()[0] == home.split()[0]:
        away = _team(rng)
    g1, g2 = rng.randint(1, 5), rng.randint(0, 4)
    g1, g2 = max(g1, g2 + 1), min(g1, g2)
    player = rng.choice(_PLAYERS)
    form = rng.randrange(4)
    if form == 0:
        s = f"{home} beat {away} {g1}-{g2} on {rng.choice(_DAYS)}, with {player} scoring twice."
    elif form == 1:
        s = f"{player} has signed a new three-year contract with {home}."
        s += f" The striker scored {rng.randint(8, 30)} goals last season."
    elif form == 2:
        s = f"{home} will face {away} in {rng.choice(_SPORTS_EVENTS)} after a late winner on {rng.choice(_DAYS)}."
    else:
        s = f"{player} won the {rng.choice([5, 10, 21])} kilometre race in {rng.choice(_TOWNS)} "
        s += f"in a personal best time. {rng.choice(['The crowd cheered', 'Rain fell', 'Wind slowed the runners'])}"
        s += " for most of the final lap."
    return s


def _topic_science(rng: random.Random) -> str:
    inst = rng.choice(_INSTITUTIONS).format(town=rng.choice(_TOWNS))
    finding = rng.choice(_SCIENCE_FINDINGS)
    form = rng.randrange(3)
    if form == 0:
        s = f"Researchers at {inst} have found that {finding}."
    elif form == 1:
        s = f"A study led by {inst} suggests that {finding}."
    else:
        s = f"Scientists from {inst} report that {finding}, according to a paper released on {rng.choice(_DAYS)}."
    if rng.random() < 0.6:
        s += " " + rng.choice(_SCIENCE_TAILS)
    return s


def _topic_business(rng: random.Random) -> str:
    company = f"{rng.choice(_COMPANY_FIRST)} {rng.choice(_COMPANY_SECOND)}"
    pct = rng.randint(2, 40)
    metric = rng.choice(_BUSINESS_METRICS)
    form = rng.randrange(3)
    if form == 0:
        s = f"{company} reported a {pct} percent {rng.choice(['rise', 'fall'])} in {metric} for {rng.choice(_QUARTERS)}."
    elif form == 1:
        s = f"{company} has agreed to buy a smaller rival in {rng.choice(_TOWNS)} for {rng.randint(20, 900)} million."
    else:
        s = f"{company} said it would cut {rng.choice(_BUSINESS_COSTS)} by {pct} percent over "
        s += f"{rng.choice(_HORIZONS)}."
    if rng.random() < 0.6:
        s += " " + rng.choice(_BUSINESS_TAILS)
    return s


def _topic_cooking(rng: random.Random) -> str:
    dish = rng.choice(_DISHES)
    chef = rng.choice(_CHEFS).format(town=rng.choice(_TOWNS))
    form = rng.randrange(3)
    if form == 0:
        s = f"According to {chef}, {rng.choice(_COOKING_TIPS)}."
    elif form == 1:
        s = f"This week's recipe from {chef} is {_a(dish)} that takes about {rng.choice([20, 30, 40, 45, 60])} minutes."
    else:
        s = f"{_cap(_a(dish))} made by {chef} won first prize at the {rng.choice(_TOWNS)} food fair on {rng.choice(_DAYS)}."
    if rng.random() < 0.5:
        s += " " + rng.choice(
            [
                "Readers can find the full recipe online.",
                "It serves four people.",
                "Fresh herbs are added just before serving.",
                "The secret, the cook says, is patience.",
            ]
        )
    return s


_TOPIC_MAKERS: dict[str, Callable[[random.Random], str]] = {
    "sports": _topic_sports,
    "science": _topic_science,
    "business": _topic_business,
    "cooking": _topic_cooking,
}


# --------------------------------------------------------------------------------------------
# recipes-lm
# --------------------------------------------------------------------------------------------

_RECIPES: list[dict[str, list[str]]] = [
    {
        "dish": ["a vegetable soup", "a carrot soup", "a leek and potato soup", "a tomato soup"],
        "prep": [
            "chop an onion and two carrots",
            "peel and dice the potatoes",
            "slice the leeks thinly",
            "chop the tomatoes roughly",
        ],
        "cook": [
            "soften them in a little butter for five minutes",
            "fry them gently in olive oil until soft",
        ],
        "then": [
            "add stock and simmer for twenty minutes",
            "pour in hot stock and cook until tender",
            "add water, a bay leaf and a pinch of salt, then simmer for half an hour",
        ],
        "finish": [
            "blend until smooth and season to taste",
            "stir in a spoonful of cream",
            "scatter over chopped parsley",
        ],
    },
    {
        "dish": ["a simple omelette", "a cheese omelette", "a herb omelette"],
        "prep": ["beat three eggs with a pinch of salt", "whisk two eggs with a splash of milk"],
        "cook": [
            "melt a knob of butter in a small pan over medium heat",
            "heat a little oil in a non-stick pan",
        ],
        "then": [
            "pour in the eggs and stir gently until they begin to set",
            "add the eggs and tilt the pan so they cover the base",
        ],
        "finish": [
            "fold the omelette in half and slide it onto a warm plate",
            "sprinkle over grated cheese, fold it and serve at once",
            "add chopped chives before folding",
        ],
    },
    {
        "dish": ["a quick stir-fry", "a vegetable stir-fry", "a chicken stir-fry", "a tofu stir-fry"],
        "prep": [
            "cut the vegetables into thin strips",
            "slice the chicken into small pieces",
            "press the tofu and cut it into cubes",
        ],
        "cook": [
            "heat a wok until it is very hot and add a little oil",
            "fry some garlic and ginger in hot oil for a few seconds",
        ],
        "then": [
            "add everything and toss it over high heat for four minutes",
            "stir-fry the ingredients in batches so the pan stays hot",
        ],
        "finish": [
            "add a splash of soy sauce and serve with rice",
            "finish with sesame oil and spring onions",
            "serve straight away with noodles",
        ],
    },
    {
        "dish": ["a tray of roast vegetables", "roast potatoes", "roast squash"],
        "prep": [
            "cut the vegetables into even pieces",
            "peel the potatoes and cut them in half",
            "halve the squash and scoop out the seeds",
        ],
        "cook": ["toss them with oil, salt and pepper", "coat them in oil and a little dried thyme"],
        "then": [
            "roast them in a hot oven for forty minutes, turning once",
            "spread them on a tray and bake until golden at the edges",
        ],
        "finish": ["serve them hot with a squeeze of lemon", "sprinkle with fresh herbs before serving"],
    },
    {
        "dish": ["porridge", "a pot of porridge", "creamy oat porridge"],
        "prep": ["measure half a cup of oats", "put the oats in a bowl with a pinch of salt"],
        "cook": ["add a cup of milk or water", "pour over milk and stir well"],
        "then": [
            "simmer gently for five minutes, stirring often",
            "keep stirring until it is thick and creamy",
        ],
        "finish": [
            "top with sliced banana and honey",
            "serve with berries and a spoonful of yoghurt",
            "add a little cinnamon and brown sugar",
        ],
    },
    {
        "dish": ["a batch of muffins", "blueberry muffins", "banana muffins"],
        "prep": [
            "mix the flour, sugar and baking powder in a large bowl",
            "mash two ripe bananas and whisk in an egg",
        ],
        "cook": [
            "stir in the milk and melted butter until just combined",
            "fold in the fruit gently so it does not break",
        ],
        "then": [
            "spoon the batter into a lined tin and bake for twenty minutes",
            "fill the paper cases two thirds full and bake until risen",
        ],
        "finish": [
            "let them cool on a rack before eating",
            "check with a skewer that they are cooked through",
        ],
    },
    {
        "dish": ["a tomato pasta sauce", "a garlic and chilli pasta", "a creamy mushroom pasta"],
        "prep": [
            "chop an onion and two cloves of garlic",
            "slice the mushrooms",
            "put a large pan of salted water on to boil",
        ],
        "cook": ["cook the onion slowly in olive oil until soft", "fry the mushrooms until golden"],
        "then": [
            "add a tin of tomatoes and simmer for fifteen minutes",
            "stir in a little cream and black pepper",
            "cook the pasta until it is just tender and drain it",
        ],
        "finish": [
            "toss the pasta with the sauce and grated cheese",
            "add a handful of basil and serve",
            "loosen the sauce with a little of the pasta water",
        ],
    },
]
_OPENERS = [
    "To make {dish}, first {prep}.",
    "For {dish}, start by taking time to {prep}.",
    "If you want {dish}, begin to {prep}.",
    "To prepare {dish}, {prep} first.",
]
_LINKS = ["Then", "Next", "After that", "Now"]


def _recipe_text(rng: random.Random) -> str:
    r = rng.choice(_RECIPES)
    dish = rng.choice(r["dish"])
    text = rng.choice(_OPENERS).format(dish=dish, prep=rng.choice(r["prep"]))
    l1, l2 = rng.sample(_LINKS, 2)
    text += f" {l1} {rng.choice(r['cook'])}. {l2} {rng.choice(r['then'])}."
    text += f" Finally, {rng.choice(r['finish'])}."
    if rng.random() < 0.3:
        text += rng.choice(
            [
                " It serves two.",
                " It keeps for a day in the fridge.",
                " It is a good weeknight meal.",
                " Children usually love it.",
            ]
        )
    return text


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if name not in TASKS:
        known = ", ".join(sorted(TASKS))
        raise LmscopeError(f"unknown task {name!r}; known tasks: {known}")


def task_kind(name: str) -> str:
    """Return ``"classification"`` or ``"lm"`` for a built-in task name."""
    _check_name(name)
    return _KINDS[name]


MAX_ROWS = 10_000_000  # rows one generated task or suite split may have (a typo is an error, not a hang)


def make_task(name: str, n: int, seed: int = 0) -> list[dict]:
    """Generate ``n`` rows of the built-in task ``name``, deterministically from ``seed``.

    Classification tasks return ``{"text", "label"}`` rows with labels cycled (counts differ by
    at most one) and then shuffled; the LM task returns ``{"text"}`` rows. Texts are kept distinct
    where the templates allow it. Unknown names and ``n < 1`` raise :class:`LmscopeError`.
    """
    _check_name(name)
    check_int("the number of examples", n, 1, MAX_ROWS)
    rng = random.Random(f"lmscope-task:{name}:{seed}")
    if name == "sentiment":
        labels: list[str] | None = ["negative", "positive"]

        def gen(label: str | None) -> str:
            return _sentiment_text(rng, label or "")
    elif name == "topic":
        labels = list(_TOPIC_MAKERS)

        def gen(label: str | None) -> str:
            return _TOPIC_MAKERS[label or ""](rng)
    else:
        labels = None

        def gen(label: str | None) -> str:
            return _recipe_text(rng)

    seen: set[str] = set()
    rows: list[dict] = []
    for i in range(n):
        label = labels[i % len(labels)] if labels else None
        text = gen(label)
        for _ in range(_MAX_TRIES):
            if text not in seen:
                break
            text = gen(label)
        seen.add(text)
        rows.append({"text": text, "label": label} if label is not None else {"text": text})
    if labels:
        rng.shuffle(rows)
    return rows


def split_rows(rows: list[dict], test_fraction: float = 0.2, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Shuffle ``rows`` with ``random.Random(seed)`` and split off a test part.

    The test part holds ``round(len(rows) * test_fraction)`` rows, but at least one, and the train
    part keeps at least one row. Raises :class:`LmscopeError` for fewer than two rows or a
    ``test_fraction`` outside (0, 1).
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise LmscopeError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}")
    rows = list(rows)
    if len(rows) < 2:
        raise LmscopeError(f"need at least 2 examples to split into train and test, got {len(rows)}")
    random.Random(seed).shuffle(rows)
    n_test = min(max(1, round(len(rows) * test_fraction)), len(rows) - 1)
    return rows[n_test:], rows[:n_test]


def infer_task_kind(rows: list[dict]) -> str:
    """Return ``"classification"`` if every row has a ``"label"``, ``"lm"`` if none has.

    Raises :class:`LmscopeError`, naming the 1-based row number, when a row is not an object,
    lacks ``"text"``, has a ``"text"`` that is not a non-empty string, has an empty label, or
    when only some rows carry a label.
    """
    if not rows:
        raise LmscopeError("no examples given")
    first_labelled: bool | None = None
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise LmscopeError(f"row {i}: expected an object with a 'text' field")
        if "text" not in row:
            raise LmscopeError(f"row {i}: missing the 'text' field")
        text = row["text"]
        if not isinstance(text, str) or not text.strip():
            raise LmscopeError(f"row {i}: 'text' must be a non-empty string")
        labelled = "label" in row
        if labelled:
            label = row["label"]
            if (
                label is None
                or isinstance(label, (bool, dict, list))
                or (isinstance(label, str) and not label.strip())
            ):
                raise LmscopeError(f"row {i}: 'label' must be a non-empty string or a number")
        if first_labelled is None:
            first_labelled = labelled
        elif labelled != first_labelled:
            has, lacks = ("row 1", f"row {i}") if first_labelled else (f"row {i}", "row 1")
            raise LmscopeError(
                f"row {i}: {has} has a 'label' but {lacks} does not; either every row has a label "
                "(classification) or none does (language modelling)"
            )
    return "classification" if first_labelled else "lm"


def load_task_file(path: str | os.PathLike) -> tuple[list[dict], str]:
    """Read a JSONL task file and return ``(rows, kind)``; problems raise :class:`LmscopeError`."""
    rows = read_jsonl(path)
    try:
        kind = infer_task_kind(rows)
    except LmscopeError as e:
        raise LmscopeError(f"{path}: {e}") from None
    return rows, kind
