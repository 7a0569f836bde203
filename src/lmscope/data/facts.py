"""Curated factual-knowledge tables and the bundled factual-recall evaluation sets built from them.

The tables below were written for this package. They hold only stable, well-known facts with one
clearly correct answer: countries whose capital is contested or split (Bolivia, South Africa,
Switzerland, Israel, Sri Lanka, Tanzania, Myanmar, Indonesia, ...) are left out of the capital
table, multilingual countries out of the language table, transcontinental countries out of the
continent table, and so on. Acceptable alternative spellings and forms of an answer are listed as
aliases.

Every fact becomes one completion prompt (``"The capital of France is"``) whose gold answer is
the natural next words (``"Paris"``). Prompts are stored without a trailing space and answers
without a leading space: an evaluator puts ``" " + answer`` after the prompt.

:func:`write_bundled` regenerates ``resources/factual_recall.jsonl`` and
``resources/true_false.jsonl`` (``python -m lmscope.data.facts``). Both files are fully
determined by the tables and ``random.Random(0)``.
"""

from __future__ import annotations

import os
import random
import re
import unicodedata
from pathlib import Path

from lmscope._io import write_jsonl
from lmscope.errors import LmscopeError

FACTUAL_RECALL_FILE = "factual_recall.jsonl"
TRUE_FALSE_FILE = "true_false.jsonl"

_Entry = str | tuple[str, ...]  # an answer, or (answer, *aliases)

# ------------------------------------------------------------------------------------------------
# Prompt templates. ``{s}`` is the subject as it reads in a sentence ("the Netherlands").
# ------------------------------------------------------------------------------------------------

TEMPLATES: dict[str, str] = {
    "animal_class": "{s} belong to the group of animals called",
    "animal_young": "A baby {s} is called a",
    "book_author": "The book {s} was written by",
    "city_country": "{s} is located in the country of",
    "composition_composer": "{s} was composed by",
    "country_capital": "The capital of {s} is",
    "country_continent": "{s} is located on the continent of",
    "country_currency": "The currency of {s} is the",
    "country_language": "The main language spoken in {s} is",
    "discovery_discoverer": "{s} was discovered by",
    "element_symbol": "The chemical symbol for {s} is",
    "invention_inventor": "{s} was invented by",
    "landmark_city": "{s} is located in the city of",
    "opposite": "The opposite of {s} is",
    "painting_artist": "{s} was painted by",
    "past_tense": "The past tense of {s} is",
    "play_author": "{s} is a play written by",
    "plural": "The plural of {s} is",
    "poem_author": "The poem {s} was written by",
    "software_creator": "{s} was created by",
    "symbol_element": "The chemical element with the symbol {s} is",
}

RELATIONS: dict[str, str] = {
    "animal_class": "animal (plural) -> group of animals (mammals, birds, reptiles, ...)",
    "animal_young": "animal -> name of its young (dog -> puppy)",
    "book_author": "book -> author (classic novels, children's books, non-fiction)",
    "city_country": "major city (not a capital) -> country",
    "composition_composer": "piece of classical or popular music, opera or ballet -> composer",
    "country_capital": "country -> capital city",
    "country_continent": "country -> continent",
    "country_currency": "country -> currency",
    "country_language": "country -> main language spoken there",
    "discovery_discoverer": "scientific discovery -> discoverer",
    "element_symbol": "chemical element -> chemical symbol",
    "invention_inventor": "invention -> inventor",
    "landmark_city": "landmark or building -> city",
    "opposite": "word -> its opposite",
    "painting_artist": "painting -> painter",
    "past_tense": "irregular English verb -> simple past tense",
    "play_author": "play -> playwright",
    "plural": "English noun with an irregular plural -> plural",
    "poem_author": "poem -> poet",
    "software_creator": "programming language or software -> creator",
    "symbol_element": "chemical symbol -> chemical element",
}

# Relations whose objects are safe to swap for false statements (no title shared by two creators,
# no object that is "also sort of right"); see :func:`true_false_rows`.
TRUE_FALSE_RELATIONS: tuple[str, ...] = (
    "animal_class",
    "book_author",
    "composition_composer",
    "country_capital",
    "country_continent",
    "country_currency",
    "country_language",
    "element_symbol",
    "invention_inventor",
    "landmark_city",
    "past_tense",
    "play_author",
    "plural",
    "symbol_element",
)

# ------------------------------------------------------------------------------------------------
# Countries
# ------------------------------------------------------------------------------------------------

# Country names that take "the" inside a sentence.
_THE: frozenset[str] = frozenset(
    {
        "Bahamas",
        "Central African Republic",
        "Comoros",
        "Czech Republic",
        "Democratic Republic of the Congo",
        "Dominican Republic",
        "Gambia",
        "Maldives",
        "Marshall Islands",
        "Netherlands",
        "Philippines",
        "Republic of the Congo",
        "Solomon Islands",
        "United Arab Emirates",
        "United Kingdom",
        "United States",
    }
)

# Other names of a country, accepted where the country is the answer.
_COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "China": ("People's Republic of China", "the People's Republic of China", "PRC"),
    "Czech Republic": ("Czechia",),
    "Myanmar": ("Burma",),
    "Netherlands": ("Holland",),
    "Russia": ("Russian Federation", "the Russian Federation"),
    "South Korea": ("Korea", "Republic of Korea", "the Republic of Korea"),
    "Turkey": ("Türkiye", "Turkiye"),
    "United Arab Emirates": ("UAE", "the UAE"),
    "United Kingdom": ("UK", "the UK", "Britain", "Great Britain"),
    "United States": (
        "USA",
        "the USA",
        "US",
        "the US",
        "U.S.",
        "the U.S.",
        "America",
        "United States of America",
        "the United States of America",
    ),
    "Vietnam": ("Viet Nam",),
}

# Left out: countries with two capitals or a disputed one (Bolivia, South Africa, Benin, Côte
# d'Ivoire, Sri Lanka, Eswatini, Tanzania, Israel, Myanmar), Switzerland (no capital in law),
# Indonesia and Equatorial Guinea (capital being moved), Burundi (moved in 2019), Yemen (civil war),
# Georgia (the prompt reads as the US state), Nauru (none), Tuvalu and Kiribati (atoll vs. islet),
# and countries whose capital's name is part of the country's name (Tunisia, Guinea-Bissau,
# Djibouti, Luxembourg, Singapore, Monaco, San Marino, Vatican City), which the prompt gives away.
# Kuala Lumpur is Malaysia's constitutional capital (Putrajaya is the seat of government).
_CAPITALS: dict[str, _Entry] = {
    # Europe
    "Albania": ("Tirana", "Tirane"),
    "Andorra": "Andorra la Vella",
    "Armenia": "Yerevan",
    "Austria": ("Vienna", "Wien"),
    "Azerbaijan": "Baku",
    "Belarus": "Minsk",
    "Belgium": "Brussels",
    "Bosnia and Herzegovina": "Sarajevo",
    "Bulgaria": "Sofia",
    "Croatia": "Zagreb",
    "Cyprus": "Nicosia",
    "Czech Republic": "Prague",
    "Denmark": "Copenhagen",
    "Estonia": "Tallinn",
    "Finland": "Helsinki",
    "France": "Paris",
    "Germany": "Berlin",
    "Greece": "Athens",
    "Hungary": "Budapest",
    "Iceland": ("Reykjavik", "Reykjavík"),
    "Ireland": "Dublin",
    "Italy": "Rome",
    "Latvia": "Riga",
    "Liechtenstein": "Vaduz",
    "Lithuania": "Vilnius",
    "Malta": "Valletta",
    "Moldova": ("Chisinau", "Chișinău", "Chişinău"),
    "Montenegro": "Podgorica",
    "Netherlands": "Amsterdam",
    "North Macedonia": "Skopje",
    "Norway": "Oslo",
    "Poland": "Warsaw",
    "Portugal": "Lisbon",
    "Romania": "Bucharest",
    "Russia": "Moscow",
    "Serbia": "Belgrade",
    "Slovakia": "Bratislava",
    "Slovenia": "Ljubljana",
    "Spain": "Madrid",
    "Sweden": "Stockholm",
    "Turkey": "Ankara",
    "Ukraine": ("Kyiv", "Kiev"),
    "United Kingdom": "London",
    # Asia
    "Afghanistan": "Kabul",
    "Bahrain": "Manama",
    "Bangladesh": "Dhaka",
    "Bhutan": "Thimphu",
    "Brunei": "Bandar Seri Begawan",
    "Cambodia": "Phnom Penh",
    "China": ("Beijing", "Peking"),
    "India": "New Delhi",
    "Iran": ("Tehran", "Teheran"),
    "Iraq": "Baghdad",
    "Japan": "Tokyo",
    "Jordan": "Amman",
    "Kazakhstan": "Astana",
    "Kuwait": "Kuwait City",
    "Kyrgyzstan": "Bishkek",
    "Laos": "Vientiane",
    "Lebanon": "Beirut",
    "Malaysia": "Kuala Lumpur",
    "Maldives": ("Malé", "Male"),
    "Mongolia": ("Ulaanbaatar", "Ulan Bator"),
    "Nepal": "Kathmandu",
    "North Korea": "Pyongyang",
    "Oman": "Muscat",
    "Pakistan": "Islamabad",
    "Philippines": "Manila",
    "Qatar": "Doha",
    "Saudi Arabia": "Riyadh",
    "South Korea": "Seoul",
    "Syria": "Damascus",
    "Tajikistan": "Dushanbe",
    "Thailand": "Bangkok",
    "Turkmenistan": ("Ashgabat", "Ashkhabad"),
    "United Arab Emirates": "Abu Dhabi",
    "Uzbekistan": "Tashkent",
    "Vietnam": ("Hanoi", "Ha Noi"),
    # Africa
    "Algeria": "Algiers",
    "Angola": "Luanda",
    "Botswana": "Gaborone",
    "Burkina Faso": "Ouagadougou",
    "Cameroon": ("Yaoundé", "Yaounde"),
    "Cape Verde": "Praia",
    "Central African Republic": "Bangui",
    "Chad": ("N'Djamena", "Ndjamena", "N'Djaména"),
    "Comoros": "Moroni",
    "Democratic Republic of the Congo": "Kinshasa",
    "Egypt": "Cairo",
    "Eritrea": "Asmara",
    "Ethiopia": "Addis Ababa",
    "Gabon": "Libreville",
    "Gambia": "Banjul",
    "Ghana": "Accra",
    "Guinea": "Conakry",
    "Kenya": "Nairobi",
    "Lesotho": "Maseru",
    "Liberia": "Monrovia",
    "Libya": "Tripoli",
    "Madagascar": "Antananarivo",
    "Malawi": "Lilongwe",
    "Mali": "Bamako",
    "Mauritania": "Nouakchott",
    "Mauritius": "Port Louis",
    "Morocco": "Rabat",
    "Mozambique": "Maputo",
    "Namibia": "Windhoek",
    "Niger": "Niamey",
    "Nigeria": "Abuja",
    "Republic of the Congo": "Brazzaville",
    "Rwanda": "Kigali",
    "Senegal": "Dakar",
    "Seychelles": "Victoria",
    "Sierra Leone": "Freetown",
    "Somalia": "Mogadishu",
    "South Sudan": "Juba",
    "Sudan": "Khartoum",
    "Togo": ("Lomé", "Lome"),
    "Uganda": "Kampala",
    "Zambia": "Lusaka",
    "Zimbabwe": "Harare",
    # The Americas
    "Antigua and Barbuda": ("St. John's", "Saint John's", "St John's"),
    "Argentina": "Buenos Aires",
    "Bahamas": "Nassau",
    "Barbados": "Bridgetown",
    "Belize": "Belmopan",
    "Brazil": ("Brasília", "Brasilia"),
    "Canada": "Ottawa",
    "Chile": ("Santiago", "Santiago de Chile"),
    "Colombia": ("Bogotá", "Bogota"),
    "Costa Rica": ("San José", "San Jose"),
    "Cuba": "Havana",
    "Dominican Republic": "Santo Domingo",
    "Ecuador": "Quito",
    "El Salvador": "San Salvador",
    "Guatemala": "Guatemala City",
    "Guyana": "Georgetown",
    "Haiti": "Port-au-Prince",
    "Honduras": "Tegucigalpa",
    "Jamaica": "Kingston",
    "Mexico": "Mexico City",
    "Nicaragua": "Managua",
    "Panama": "Panama City",
    "Paraguay": ("Asunción", "Asuncion"),
    "Peru": "Lima",
    "Suriname": "Paramaribo",
    "Trinidad and Tobago": ("Port of Spain", "Port-of-Spain"),
    "United States": ("Washington, D.C.", "Washington", "Washington D.C.", "Washington DC", "Washington, DC"),
    "Uruguay": "Montevideo",
    "Venezuela": "Caracas",
    # Oceania
    "Australia": "Canberra",
    "Fiji": "Suva",
    "Marshall Islands": "Majuro",
    "New Zealand": "Wellington",
    "Papua New Guinea": "Port Moresby",
    "Samoa": "Apia",
    "Solomon Islands": "Honiara",
    "Tonga": ("Nuku'alofa", "Nukuʻalofa", "Nukualofa"),
    "Vanuatu": "Port Vila",
}

# Left out: transcontinental countries (Russia, Turkey, Kazakhstan, Azerbaijan, Georgia, Armenia,
# Cyprus), Oceania (whether it is a continent, and Australia's own name), small Caribbean islands
# whose continent is taught differently, Trinidad and Tobago, and Israel.
_CONTINENT_MEMBERS: dict[str, tuple[str, ...]] = {
    "Africa": (
        "Algeria", "Angola", "Benin", "Botswana", "Burkina Faso", "Burundi", "Cameroon", "Cape Verde",
        "Chad", "Comoros", "Democratic Republic of the Congo", "Djibouti",
        "Egypt", "Equatorial Guinea", "Eritrea", "Ethiopia", "Gabon", "Gambia", "Ghana", "Guinea",
        "Guinea-Bissau", "Kenya", "Lesotho", "Liberia", "Libya", "Madagascar", "Malawi", "Mali",
        "Mauritania", "Mauritius", "Morocco", "Mozambique", "Namibia", "Niger", "Nigeria",
        "Republic of the Congo", "Rwanda", "Senegal", "Seychelles", "Sierra Leone", "Somalia",
        "South Sudan", "Sudan", "Tanzania", "Togo", "Tunisia", "Uganda", "Zambia",
        "Zimbabwe",
    ),
    "Asia": (
        "Afghanistan", "Bahrain", "Bangladesh", "Bhutan", "Brunei", "Cambodia", "China", "India",
        "Indonesia", "Iran", "Iraq", "Japan", "Jordan", "Kuwait", "Kyrgyzstan", "Laos", "Lebanon",
        "Malaysia", "Maldives", "Mongolia", "Myanmar", "Nepal", "North Korea", "Oman", "Pakistan",
        "Philippines", "Qatar", "Saudi Arabia", "Singapore", "South Korea", "Sri Lanka", "Syria",
        "Tajikistan", "Thailand", "Turkmenistan", "United Arab Emirates", "Uzbekistan", "Vietnam",
        "Yemen",
    ),
    "Europe": (
        "Albania", "Andorra", "Austria", "Belarus", "Belgium", "Bosnia and Herzegovina", "Bulgaria",
        "Croatia", "Czech Republic", "Denmark", "Estonia", "Finland", "France", "Germany", "Greece",
        "Hungary", "Iceland", "Ireland", "Italy", "Latvia", "Liechtenstein", "Lithuania", "Luxembourg",
        "Malta", "Moldova", "Monaco", "Montenegro", "Netherlands", "North Macedonia", "Norway",
        "Poland", "Portugal", "Romania", "San Marino", "Serbia", "Slovakia", "Slovenia", "Spain",
        "Sweden", "Switzerland", "Ukraine", "United Kingdom",
    ),
    "North America": (
        "Bahamas", "Belize", "Canada", "Costa Rica", "Cuba", "Dominican Republic", "El Salvador",
        "Guatemala", "Haiti", "Honduras", "Jamaica", "Mexico", "Nicaragua", "Panama", "United States",
    ),
    "South America": (
        "Argentina", "Bolivia", "Brazil", "Chile", "Colombia", "Ecuador", "Guyana", "Paraguay", "Peru",
        "Suriname", "Uruguay", "Venezuela",
    ),
}  # fmt: skip

# Only countries where one language is both official (alone) and spoken by most people, or where
# co-official regional languages leave no doubt about the main one (Spain, Peru, Bolivia). Left
# out as well: countries whose name contains the language's name (Germany, Thailand, Laos, ...),
# since the prompt would give the answer away, and Gulf states where most residents are foreign
# nationals (the United Arab Emirates, Qatar, Kuwait, Bahrain).
_LANGUAGE_MEMBERS: dict[str, tuple[str, ...]] = {
    "Albanian": ("Albania",),
    "Arabic": (
        "Egypt", "Jordan", "Lebanon", "Libya", "Mauritania", "Oman", "Saudi Arabia", "Syria",
        "Tunisia", "Yemen",
    ),
    "Armenian": ("Armenia",),
    "Azerbaijani": ("Azerbaijan",),
    "Bengali": ("Bangladesh",),
    "Bulgarian": ("Bulgaria",),
    "Burmese": ("Myanmar",),
    "Croatian": ("Croatia",),
    "Danish": ("Denmark",),
    "Dhivehi": ("Maldives",),
    "Dutch": ("Netherlands",),
    "English": ("Australia", "Bahamas", "New Zealand", "United Kingdom", "United States"),
    "Estonian": ("Estonia",),
    "French": ("France",),
    "German": ("Austria", "Liechtenstein"),
    "Greek": ("Greece",),
    "Hebrew": ("Israel",),
    "Hungarian": ("Hungary",),
    "Icelandic": ("Iceland",),
    "Indonesian": ("Indonesia",),
    "Italian": ("Italy",),
    "Japanese": ("Japan",),
    "Khmer": ("Cambodia",),
    "Korean": ("North Korea", "South Korea"),
    "Latvian": ("Latvia",),
    "Lithuanian": ("Lithuania",),
    "Mandarin": ("China",),
    "Mongolian": ("Mongolia",),
    "Nepali": ("Nepal",),
    "Norwegian": ("Norway",),
    "Persian": ("Iran",),
    "Polish": ("Poland",),
    "Portuguese": ("Angola", "Brazil", "Portugal"),
    "Romanian": ("Romania",),
    "Russian": ("Russia",),
    "Serbian": ("Serbia",),
    "Slovene": ("Slovenia",),
    "Spanish": (
        "Argentina", "Bolivia", "Chile", "Colombia", "Costa Rica", "Cuba", "Dominican Republic",
        "Ecuador", "El Salvador", "Guatemala", "Honduras", "Mexico", "Nicaragua", "Panama", "Peru",
        "Spain", "Uruguay", "Venezuela",
    ),
    "Swedish": ("Sweden",),
    "Turkish": ("Turkey",),
    "Ukrainian": ("Ukraine",),
    "Vietnamese": ("Vietnam",),
}  # fmt: skip

_LANGUAGE_ALIASES: dict[str, tuple[str, ...]] = {
    "Azerbaijani": ("Azeri",),
    "Bengali": ("Bangla",),
    "Dhivehi": ("Divehi", "Maldivian"),
    "Indonesian": ("Bahasa Indonesia",),
    "Khmer": ("Cambodian",),
    "Mandarin": ("Chinese", "Mandarin Chinese", "Standard Chinese", "Putonghua"),
    "Nepali": ("Nepalese",),
    "Persian": ("Farsi",),
    "Slovene": ("Slovenian",),
}

# Eurozone members since 2015 or earlier (Croatia joined in 2023 and Bulgaria in 2026: left out).
_EURO_COUNTRIES: tuple[str, ...] = (
    "Austria", "Belgium", "Cyprus", "Estonia", "Finland", "France", "Germany", "Greece", "Ireland",
    "Italy", "Latvia", "Lithuania", "Luxembourg", "Malta", "Netherlands", "Portugal", "Slovakia",
    "Slovenia", "Spain",
)  # fmt: skip

# Left out: countries where a second currency is also legal tender or in everyday use (Bhutan,
# Lesotho, Namibia, Cambodia, Panama, Ecuador, El Salvador, Zimbabwe, Montenegro, ...) and
# currencies that changed recently (Croatia, Bulgaria).
_CURRENCIES: dict[str, _Entry] = {
    "Afghanistan": "afghani",
    "Algeria": ("dinar", "Algerian dinar"),
    "Angola": "kwanza",
    "Argentina": ("peso", "Argentine peso"),
    "Armenia": "dram",
    "Australia": ("Australian dollar", "dollar"),
    "Azerbaijan": ("manat", "Azerbaijani manat"),
    "Bahrain": ("dinar", "Bahraini dinar"),
    "Bangladesh": "taka",
    "Bolivia": "boliviano",
    "Botswana": "pula",
    "Brazil": ("real", "Brazilian real"),
    "Canada": ("Canadian dollar", "dollar"),
    "Chile": ("peso", "Chilean peso"),
    "China": ("yuan", "renminbi", "Chinese yuan", "RMB"),
    "Colombia": ("peso", "Colombian peso"),
    "Costa Rica": ("colón", "colon", "Costa Rican colón"),
    "Cuba": ("peso", "Cuban peso"),
    "Czech Republic": ("koruna", "Czech koruna", "crown", "Czech crown"),
    "Denmark": ("krone", "Danish krone", "crown"),
    "Dominican Republic": ("peso", "Dominican peso"),
    "Egypt": ("pound", "Egyptian pound"),
    "Ethiopia": "birr",
    "Gambia": "dalasi",
    "Ghana": "cedi",
    "Guatemala": "quetzal",
    "Haiti": "gourde",
    "Honduras": "lempira",
    "Hungary": "forint",
    "Iceland": ("krona", "króna", "Icelandic krona", "Icelandic króna", "crown"),
    "India": ("rupee", "Indian rupee"),
    "Indonesia": ("rupiah", "Indonesian rupiah"),
    "Iran": ("rial", "Iranian rial"),
    "Iraq": ("dinar", "Iraqi dinar"),
    "Israel": ("shekel", "new shekel", "new Israeli shekel", "Israeli shekel"),
    "Japan": ("yen", "Japanese yen"),
    "Jordan": ("dinar", "Jordanian dinar"),
    "Kazakhstan": "tenge",
    "Kenya": ("shilling", "Kenyan shilling"),
    "Kuwait": ("dinar", "Kuwaiti dinar"),
    "Kyrgyzstan": "som",
    "Laos": "kip",
    "Libya": ("dinar", "Libyan dinar"),
    "Madagascar": "ariary",
    "Malawi": ("kwacha", "Malawian kwacha"),
    "Malaysia": "ringgit",
    "Maldives": "rufiyaa",
    "Mauritania": "ouguiya",
    "Mauritius": ("rupee", "Mauritian rupee"),
    "Mexico": ("peso", "Mexican peso"),
    "Mongolia": ("tugrik", "tögrög", "togrog"),
    "Morocco": ("dirham", "Moroccan dirham"),
    "Mozambique": "metical",
    "Myanmar": "kyat",
    "Nepal": ("rupee", "Nepalese rupee"),
    "New Zealand": ("New Zealand dollar", "dollar"),
    "Nicaragua": ("córdoba", "cordoba"),
    "Nigeria": "naira",
    "North Korea": ("won", "North Korean won"),
    "Norway": ("krone", "Norwegian krone", "crown"),
    "Oman": ("rial", "Omani rial"),
    "Pakistan": ("rupee", "Pakistani rupee"),
    "Paraguay": ("guaraní", "guarani"),
    "Peru": ("sol", "nuevo sol", "Peruvian sol"),
    "Philippines": ("peso", "Philippine peso"),
    "Poland": ("zloty", "złoty", "Polish zloty"),
    "Qatar": ("riyal", "Qatari riyal"),
    "Romania": ("leu", "Romanian leu"),
    "Russia": ("ruble", "rouble", "Russian ruble"),
    "Saudi Arabia": ("riyal", "Saudi riyal"),
    "Serbia": ("dinar", "Serbian dinar"),
    "South Africa": ("rand", "South African rand"),
    "South Korea": ("won", "South Korean won"),
    "Sri Lanka": ("rupee", "Sri Lankan rupee"),
    "Sweden": ("krona", "Swedish krona", "crown"),
    "Switzerland": ("franc", "Swiss franc"),
    "Tajikistan": "somoni",
    "Tanzania": ("shilling", "Tanzanian shilling"),
    "Thailand": "baht",
    "Tunisia": ("dinar", "Tunisian dinar"),
    "Turkey": ("lira", "Turkish lira"),
    "Turkmenistan": ("manat", "Turkmen manat"),
    "Uganda": ("shilling", "Ugandan shilling"),
    "Ukraine": ("hryvnia", "hryvna"),
    "United Arab Emirates": ("dirham", "UAE dirham", "Emirati dirham"),
    "United Kingdom": ("pound", "pound sterling", "British pound", "sterling"),
    "United States": ("US dollar", "dollar", "U.S. dollar", "United States dollar", "American dollar"),
    "Uruguay": ("peso", "Uruguayan peso"),
    "Venezuela": ("bolívar", "bolivar"),
    "Vietnam": ("dong", "đồng"),
    "Zambia": ("kwacha", "Zambian kwacha"),
    **{country: "euro" for country in _EURO_COUNTRIES},
}

# Major cities that are not capitals, by country. Names shared with another well-known city
# (Birmingham, Perth, Valencia, Córdoba, Hyderabad, Lagos, Alexandria, Saint Petersburg, ...) are
# left out.
_CITIES: dict[str, tuple[str, ...]] = {
    "Argentina": ("Mendoza",),
    "Australia": ("Brisbane", "Melbourne", "Sydney"),
    "Austria": ("Innsbruck", "Salzburg"),
    "Belgium": ("Antwerp", "Bruges", "Ghent"),
    "Brazil": ("Belo Horizonte", "Manaus", "Recife", "Rio de Janeiro", "São Paulo"),
    "Canada": ("Calgary", "Edmonton", "Montreal", "Quebec City", "Toronto", "Vancouver", "Winnipeg"),
    "China": (
        "Chengdu", "Chongqing", "Guangzhou", "Hangzhou", "Harbin", "Nanjing", "Shanghai", "Shenzhen",
        "Wuhan", "Xi'an",
    ),
    "Colombia": ("Medellín",),
    "Croatia": ("Dubrovnik",),
    "Czech Republic": ("Brno",),
    "Denmark": ("Aarhus",),
    "Egypt": ("Giza", "Luxor"),
    "France": ("Bordeaux", "Lille", "Lyon", "Marseille", "Nice", "Strasbourg", "Toulouse"),
    "Germany": (
        "Cologne", "Dresden", "Düsseldorf", "Frankfurt", "Hamburg", "Leipzig", "Munich", "Stuttgart",
    ),
    "Greece": ("Thessaloniki",),
    "India": ("Agra", "Bangalore", "Chennai", "Jaipur", "Kolkata", "Mumbai", "Varanasi"),
    "Indonesia": ("Surabaya",),
    "Iran": ("Isfahan",),
    "Italy": ("Bologna", "Florence", "Genoa", "Milan", "Naples", "Palermo", "Turin", "Venice"),
    "Japan": ("Hiroshima", "Kyoto", "Nagoya", "Osaka", "Sapporo", "Yokohama"),
    "Kazakhstan": ("Almaty",),
    "Kenya": ("Mombasa",),
    "Mali": ("Timbuktu",),
    "Mexico": ("Cancún", "Monterrey", "Tijuana"),
    "Morocco": ("Casablanca", "Marrakesh"),
    "Myanmar": ("Mandalay",),
    "Netherlands": ("Rotterdam", "The Hague", "Utrecht"),
    "New Zealand": ("Auckland",),
    "Pakistan": ("Karachi", "Lahore"),
    "Peru": ("Cusco",),
    "Poland": ("Gdańsk", "Kraków"),
    "Portugal": ("Porto",),
    "Russia": ("Novosibirsk", "Vladivostok"),
    "Saudi Arabia": ("Jeddah", "Mecca"),
    "South Africa": ("Cape Town", "Durban", "Johannesburg"),
    "South Korea": ("Busan",),
    "Spain": ("Barcelona", "Bilbao", "Málaga", "Seville"),
    "Sweden": ("Gothenburg",),
    "Switzerland": ("Basel", "Geneva", "Zurich"),
    "Thailand": ("Chiang Mai",),
    "Turkey": ("Antalya", "Istanbul", "Izmir"),
    "Ukraine": ("Lviv",),
    "United Arab Emirates": ("Dubai",),
    "United Kingdom": ("Cardiff", "Edinburgh", "Glasgow", "Leeds", "Manchester"),
    "United States": (
        "Atlanta", "Boston", "Chicago", "Detroit", "Houston", "Las Vegas", "Los Angeles", "Miami",
        "New Orleans", "New York City", "Philadelphia", "San Francisco", "Seattle",
    ),
    "Uzbekistan": ("Samarkand",),
    "Vietnam": ("Ho Chi Minh City",),
}  # fmt: skip

# The constituent country of the United Kingdom, also an acceptable answer for these cities.
_UK_NATIONS: dict[str, str] = {
    "Cardiff": "Wales",
    "Edinburgh": "Scotland",
    "Glasgow": "Scotland",
    "Leeds": "England",
    "Manchester": "England",
}

# ------------------------------------------------------------------------------------------------
# Chemical elements: (symbol, name). Elements 1-86 and three famous heavier ones. (Thorium "Th"
# is left out: its symbol is a substring of "The" at the start of the prompt.)
# ------------------------------------------------------------------------------------------------

_ELEMENTS: tuple[tuple[str, str], ...] = (
    ("H", "hydrogen"), ("He", "helium"), ("Li", "lithium"), ("Be", "beryllium"), ("B", "boron"),
    ("C", "carbon"), ("N", "nitrogen"), ("O", "oxygen"), ("F", "fluorine"), ("Ne", "neon"),
    ("Na", "sodium"), ("Mg", "magnesium"), ("Al", "aluminum"), ("Si", "silicon"), ("P", "phosphorus"),
    ("S", "sulfur"), ("Cl", "chlorine"), ("Ar", "argon"), ("K", "potassium"), ("Ca", "calcium"),
    ("Sc", "scandium"), ("Ti", "titanium"), ("V", "vanadium"), ("Cr", "chromium"), ("Mn", "manganese"),
    ("Fe", "iron"), ("Co", "cobalt"), ("Ni", "nickel"), ("Cu", "copper"), ("Zn", "zinc"),
    ("Ga", "gallium"), ("Ge", "germanium"), ("As", "arsenic"), ("Se", "selenium"), ("Br", "bromine"),
    ("Kr", "krypton"), ("Rb", "rubidium"), ("Sr", "strontium"), ("Y", "yttrium"), ("Zr", "zirconium"),
    ("Nb", "niobium"), ("Mo", "molybdenum"), ("Tc", "technetium"), ("Ru", "ruthenium"),
    ("Rh", "rhodium"), ("Pd", "palladium"), ("Ag", "silver"), ("Cd", "cadmium"), ("In", "indium"),
    ("Sn", "tin"), ("Sb", "antimony"), ("Te", "tellurium"), ("I", "iodine"), ("Xe", "xenon"),
    ("Cs", "cesium"), ("Ba", "barium"), ("La", "lanthanum"), ("Ce", "cerium"), ("Pr", "praseodymium"),
    ("Nd", "neodymium"), ("Pm", "promethium"), ("Sm", "samarium"), ("Eu", "europium"),
    ("Gd", "gadolinium"), ("Tb", "terbium"), ("Dy", "dysprosium"), ("Ho", "holmium"), ("Er", "erbium"),
    ("Tm", "thulium"), ("Yb", "ytterbium"), ("Lu", "lutetium"), ("Hf", "hafnium"), ("Ta", "tantalum"),
    ("W", "tungsten"), ("Re", "rhenium"), ("Os", "osmium"), ("Ir", "iridium"), ("Pt", "platinum"),
    ("Au", "gold"), ("Hg", "mercury"), ("Tl", "thallium"), ("Pb", "lead"), ("Bi", "bismuth"),
    ("Po", "polonium"), ("At", "astatine"), ("Rn", "radon"), ("Ra", "radium"), ("U", "uranium"),
    ("Pu", "plutonium"),
)  # fmt: skip

_ELEMENT_ALIASES: dict[str, tuple[str, ...]] = {
    "aluminum": ("aluminium",),
    "cesium": ("caesium",),
    "sulfur": ("sulphur",),
}

# ------------------------------------------------------------------------------------------------
# Works and their creators. Titles shared by two well-known works are left out (Emma, Antigone,
# Medea, The Kiss, The Last Supper, Las Meninas, La bohème, The Barber of Seville, Otello, ...).
# ------------------------------------------------------------------------------------------------

_BOOKS: dict[str, str] = {
    "1984": "George Orwell",
    "A Brief History of Time": "Stephen Hawking",
    "A Christmas Carol": "Charles Dickens",
    "A Clockwork Orange": "Anthony Burgess",
    "A Farewell to Arms": "Ernest Hemingway",
    "A Tale of Two Cities": "Charles Dickens",
    "A Vindication of the Rights of Woman": "Mary Wollstonecraft",
    "Adventures of Huckleberry Finn": "Mark Twain",
    "Alice's Adventures in Wonderland": "Lewis Carroll",
    "Animal Farm": "George Orwell",
    "Anna Karenina": "Leo Tolstoy",
    "Anne of Green Gables": "Lucy Maud Montgomery",
    "Around the World in Eighty Days": "Jules Verne",
    "As I Lay Dying": "William Faulkner",
    "Atlas Shrugged": "Ayn Rand",
    "Beloved": "Toni Morrison",
    "Black Beauty": "Anna Sewell",
    "Bleak House": "Charles Dickens",
    "Brave New World": "Aldous Huxley",
    "Candide": "Voltaire",
    "Catch-22": "Joseph Heller",
    "Charlie and the Chocolate Factory": "Roald Dahl",
    "Charlotte's Web": "E. B. White",
    "Crime and Punishment": "Fyodor Dostoevsky",
    "Critique of Pure Reason": "Immanuel Kant",
    "Das Kapital": "Karl Marx",
    "David Copperfield": "Charles Dickens",
    "Dead Souls": "Nikolai Gogol",
    "Doctor Zhivago": "Boris Pasternak",
    "Don Quixote": "Miguel de Cervantes",
    "Dracula": "Bram Stoker",
    "Dune": "Frank Herbert",
    "East of Eden": "John Steinbeck",
    "Fahrenheit 451": "Ray Bradbury",
    "Far from the Madding Crowd": "Thomas Hardy",
    "For Whom the Bell Tolls": "Ernest Hemingway",
    "Frankenstein": "Mary Shelley",
    "Gone with the Wind": "Margaret Mitchell",
    "Great Expectations": "Charles Dickens",
    "Gulliver's Travels": "Jonathan Swift",
    "Harry Potter and the Philosopher's Stone": "J. K. Rowling",
    "Heart of Darkness": "Joseph Conrad",
    "Heidi": "Johanna Spyri",
    "Jane Eyre": "Charlotte Brontë",
    "Leviathan": "Thomas Hobbes",
    "Life of Pi": "Yann Martel",
    "Little Women": "Louisa May Alcott",
    "Lolita": "Vladimir Nabokov",
    "Lord of the Flies": "William Golding",
    "Love in the Time of Cholera": "Gabriel García Márquez",
    "Madame Bovary": "Gustave Flaubert",
    "Mansfield Park": "Jane Austen",
    "Matilda": "Roald Dahl",
    "Middlemarch": "George Eliot",
    "Moby-Dick": "Herman Melville",
    "Mrs Dalloway": "Virginia Woolf",
    "Murder on the Orient Express": "Agatha Christie",
    "Of Human Bondage": "W. Somerset Maugham",
    "Of Mice and Men": "John Steinbeck",
    "Oliver Twist": "Charles Dickens",
    "On Liberty": "John Stuart Mill",
    "On the Origin of Species": "Charles Darwin",
    "On the Road": "Jack Kerouac",
    "One Day in the Life of Ivan Denisovich": "Aleksandr Solzhenitsyn",
    "One Hundred Years of Solitude": "Gabriel García Márquez",
    "Peter Pan": "J. M. Barrie",
    "Pride and Prejudice": "Jane Austen",
    "Rebecca": "Daphne du Maurier",
    "Robinson Crusoe": "Daniel Defoe",
    "Sense and Sensibility": "Jane Austen",
    "Siddhartha": "Hermann Hesse",
    "Silas Marner": "George Eliot",
    "Silent Spring": "Rachel Carson",
    "Slaughterhouse-Five": "Kurt Vonnegut",
    "Sons and Lovers": "D. H. Lawrence",
    "Steppenwolf": "Hermann Hesse",
    "Strange Case of Dr Jekyll and Mr Hyde": "Robert Louis Stevenson",
    "Tender Is the Night": "F. Scott Fitzgerald",
    "Tess of the d'Urbervilles": "Thomas Hardy",
    "The Adventures of Pinocchio": "Carlo Collodi",
    "The Adventures of Tom Sawyer": "Mark Twain",
    "The Age of Innocence": "Edith Wharton",
    "The Bell Jar": "Sylvia Plath",
    "The Brothers Karamazov": "Fyodor Dostoevsky",
    "The Call of the Wild": "Jack London",
    "The Cat in the Hat": "Dr. Seuss",
    "The Catcher in the Rye": "J. D. Salinger",
    "The Count of Monte Cristo": "Alexandre Dumas",
    "The Da Vinci Code": "Dan Brown",
    "The Diary of a Young Girl": "Anne Frank",
    "The Grapes of Wrath": "John Steinbeck",
    "The Great Gatsby": "F. Scott Fitzgerald",
    "The Handmaid's Tale": "Margaret Atwood",
    "The Hitchhiker's Guide to the Galaxy": "Douglas Adams",
    "The Hobbit": "J. R. R. Tolkien",
    "The Hound of the Baskervilles": "Arthur Conan Doyle",
    "The Hunchback of Notre-Dame": "Victor Hugo",
    "The Interpretation of Dreams": "Sigmund Freud",
    "The Jungle Book": "Rudyard Kipling",
    "The Kite Runner": "Khaled Hosseini",
    "The Lion, the Witch and the Wardrobe": "C. S. Lewis",
    "The Little Prince": "Antoine de Saint-Exupéry",
    "The Lord of the Rings": "J. R. R. Tolkien",
    "The Metamorphosis": "Franz Kafka",
    "The Name of the Rose": "Umberto Eco",
    "The Old Man and the Sea": "Ernest Hemingway",
    "The Picture of Dorian Gray": "Oscar Wilde",
    "The Portrait of a Lady": "Henry James",
    "The Prince": "Niccolò Machiavelli",
    "The Republic": "Plato",
    "The Scarlet Letter": "Nathaniel Hawthorne",
    "The Second Sex": "Simone de Beauvoir",
    "The Secret Garden": "Frances Hodgson Burnett",
    "The Shining": "Stephen King",
    "The Social Contract": "Jean-Jacques Rousseau",
    "The Sound and the Fury": "William Faulkner",
    "The Sun Also Rises": "Ernest Hemingway",
    "The Tale of Genji": "Murasaki Shikibu",
    "The Three Musketeers": "Alexandre Dumas",
    "The Time Machine": "H. G. Wells",
    "The War of the Worlds": "H. G. Wells",
    "The Wealth of Nations": "Adam Smith",
    "The Wind in the Willows": "Kenneth Grahame",
    "The Wonderful Wizard of Oz": "L. Frank Baum",
    "Things Fall Apart": "Chinua Achebe",
    "Thus Spoke Zarathustra": "Friedrich Nietzsche",
    "To Kill a Mockingbird": "Harper Lee",
    "To the Lighthouse": "Virginia Woolf",
    "Treasure Island": "Robert Louis Stevenson",
    "Twenty Thousand Leagues Under the Sea": "Jules Verne",
    "Ulysses": "James Joyce",
    "Uncle Tom's Cabin": "Harriet Beecher Stowe",
    "Vanity Fair": "William Makepeace Thackeray",
    "Walden": "Henry David Thoreau",
    "War and Peace": "Leo Tolstoy",
    "White Fang": "Jack London",
    "Winnie-the-Pooh": "A. A. Milne",
    "Wuthering Heights": "Emily Brontë",
}

_PLAYS: dict[str, str] = {
    "A Doll's House": "Henrik Ibsen",
    "A Midsummer Night's Dream": "William Shakespeare",
    "A Raisin in the Sun": "Lorraine Hansberry",
    "A Streetcar Named Desire": "Tennessee Williams",
    "Amadeus": "Peter Shaffer",
    "An Inspector Calls": "J. B. Priestley",
    "Blood Wedding": "Federico García Lorca",
    "Cat on a Hot Tin Roof": "Tennessee Williams",
    "Cyrano de Bergerac": "Edmond Rostand",
    "Death of a Salesman": "Arthur Miller",
    "Equus": "Peter Shaffer",
    "Faust": "Johann Wolfgang von Goethe",
    "Fences": "August Wilson",
    "Hamlet": "William Shakespeare",
    "Hedda Gabler": "Henrik Ibsen",
    "Julius Caesar": "William Shakespeare",
    "King Lear": "William Shakespeare",
    "Long Day's Journey into Night": "Eugene O'Neill",
    "Look Back in Anger": "John Osborne",
    "Lysistrata": "Aristophanes",
    "Macbeth": "William Shakespeare",
    "Mother Courage and Her Children": "Bertolt Brecht",
    "Much Ado About Nothing": "William Shakespeare",
    "No Exit": "Jean-Paul Sartre",
    "Oedipus Rex": "Sophocles",
    "Othello": "William Shakespeare",
    "Our Town": "Thornton Wilder",
    "Peer Gynt": "Henrik Ibsen",
    "Pygmalion": "George Bernard Shaw",
    "Rhinoceros": "Eugène Ionesco",
    "Romeo and Juliet": "William Shakespeare",
    "Rosencrantz and Guildenstern Are Dead": "Tom Stoppard",
    "Six Characters in Search of an Author": "Luigi Pirandello",
    "Tartuffe": "Molière",
    "The Bald Soprano": "Eugène Ionesco",
    "The Cherry Orchard": "Anton Chekhov",
    "The Crucible": "Arthur Miller",
    "The Glass Menagerie": "Tennessee Williams",
    "The Iceman Cometh": "Eugene O'Neill",
    "The Importance of Being Earnest": "Oscar Wilde",
    "The Jew of Malta": "Christopher Marlowe",
    "The Merchant of Venice": "William Shakespeare",
    "The Mousetrap": "Agatha Christie",
    "The Seagull": "Anton Chekhov",
    "The Taming of the Shrew": "William Shakespeare",
    "The Tempest": "William Shakespeare",
    "Three Sisters": "Anton Chekhov",
    "Twelfth Night": "William Shakespeare",
    "Uncle Vanya": "Anton Chekhov",
    "Waiting for Godot": "Samuel Beckett",
}

_POEMS: dict[str, str] = {
    "Annabel Lee": "Edgar Allan Poe",
    "Auguries of Innocence": "William Blake",
    "Because I could not stop for Death": "Emily Dickinson",
    "Do not go gentle into that good night": "Dylan Thomas",
    "Dover Beach": "Matthew Arnold",
    "Fire and Ice": "Robert Frost",
    "Howl": "Allen Ginsberg",
    "I Wandered Lonely as a Cloud": "William Wordsworth",
    "Invictus": "William Ernest Henley",
    "Jabberwocky": "Lewis Carroll",
    "Kubla Khan": "Samuel Taylor Coleridge",
    "Leaves of Grass": "Walt Whitman",
    "Metamorphoses": "Ovid",
    "Ode to a Nightingale": "John Keats",
    "Paradise Lost": "John Milton",
    "Paradise Regained": "John Milton",
    "Sailing to Byzantium": "W. B. Yeats",
    "She Walks in Beauty": "Lord Byron",
    "Song of Myself": "Walt Whitman",
    "Still I Rise": "Maya Angelou",
    "Stopping by Woods on a Snowy Evening": "Robert Frost",
    "The Aeneid": "Virgil",
    "The Canterbury Tales": "Geoffrey Chaucer",
    "The Charge of the Light Brigade": "Alfred, Lord Tennyson",
    "The Divine Comedy": "Dante Alighieri",
    "The Faerie Queene": "Edmund Spenser",
    "The Highwayman": "Alfred Noyes",
    "The Hollow Men": "T. S. Eliot",
    "The Iliad": "Homer",
    "The Love Song of J. Alfred Prufrock": "T. S. Eliot",
    "The Odyssey": "Homer",
    "The Prelude": "William Wordsworth",
    "The Raven": "Edgar Allan Poe",
    "The Rime of the Ancient Mariner": "Samuel Taylor Coleridge",
    "The Road Not Taken": "Robert Frost",
    "The Tyger": "William Blake",
    "The Waste Land": "T. S. Eliot",
}

_PAINTINGS: dict[str, str] = {
    "American Gothic": "Grant Wood",
    "Bal du moulin de la Galette": "Pierre-Auguste Renoir",
    "Café Terrace at Night": "Vincent van Gogh",
    "Campbell's Soup Cans": "Andy Warhol",
    "Christina's World": "Andrew Wyeth",
    "Composition with Red, Blue and Yellow": "Piet Mondrian",
    "Flaming June": "Frederic Leighton",
    "Girl with a Pearl Earring": "Johannes Vermeer",
    "Guernica": "Pablo Picasso",
    "Impression, Sunrise": "Claude Monet",
    "Lady with an Ermine": "Leonardo da Vinci",
    "Les Demoiselles d'Avignon": "Pablo Picasso",
    "Liberty Leading the People": "Eugène Delacroix",
    "Luncheon of the Boating Party": "Pierre-Auguste Renoir",
    "Mona Lisa": "Leonardo da Vinci",
    "Netherlandish Proverbs": "Pieter Bruegel the Elder",
    "Nighthawks": "Edward Hopper",
    "Oath of the Horatii": "Jacques-Louis David",
    "Portrait of Adele Bloch-Bauer I": "Gustav Klimt",
    "Primavera": "Sandro Botticelli",
    "Self-Portrait with Bandaged Ear": "Vincent van Gogh",
    "The Anatomy Lesson of Dr. Nicolaes Tulp": "Rembrandt",
    "The Arnolfini Portrait": "Jan van Eyck",
    "The Birth of Venus": "Sandro Botticelli",
    "The Blue Boy": "Thomas Gainsborough",
    "The Calling of Saint Matthew": "Caravaggio",
    "The Creation of Adam": "Michelangelo",
    "The Fighting Temeraire": "J. M. W. Turner",
    "The Garden of Earthly Delights": "Hieronymus Bosch",
    "The Hay Wain": "John Constable",
    "The Hunters in the Snow": "Pieter Bruegel the Elder",
    "The Milkmaid": "Johannes Vermeer",
    "The Night Watch": "Rembrandt",
    "The Persistence of Memory": "Salvador Dalí",
    "The Potato Eaters": "Vincent van Gogh",
    "The Raft of the Medusa": "Théodore Géricault",
    "The School of Athens": "Raphael",
    "The Scream": "Edvard Munch",
    "The Sleeping Gypsy": "Henri Rousseau",
    "The Son of Man": "René Magritte",
    "The Starry Night": "Vincent van Gogh",
    "The Third of May 1808": "Francisco Goya",
    "The Treachery of Images": "René Magritte",
    "Wanderer above the Sea of Fog": "Caspar David Friedrich",
}

_COMPOSITIONS: dict[str, str] = {
    "the 1812 Overture": "Pyotr Ilyich Tchaikovsky",
    "Adagio for Strings": "Samuel Barber",
    "A German Requiem": "Johannes Brahms",
    "Aida": "Giuseppe Verdi",
    "Also sprach Zarathustra": "Richard Strauss",
    "Appalachian Spring": "Aaron Copland",
    "Boléro": "Maurice Ravel",
    "Carmen": "Georges Bizet",
    "Carmina Burana": "Carl Orff",
    "Canon in D": "Johann Pachelbel",
    "Don Giovanni": "Wolfgang Amadeus Mozart",
    "Eine kleine Nachtmusik": "Wolfgang Amadeus Mozart",
    "the Enigma Variations": "Edward Elgar",
    "Fantaisie-Impromptu": "Frédéric Chopin",
    "Finlandia": "Jean Sibelius",
    "Flight of the Bumblebee": "Nikolai Rimsky-Korsakov",
    "Für Elise": "Ludwig van Beethoven",
    "the Goldberg Variations": "Johann Sebastian Bach",
    "Gymnopédie No. 1": "Erik Satie",
    "Hungarian Rhapsody No. 2": "Franz Liszt",
    "In the Hall of the Mountain King": "Edvard Grieg",
    "La Mer": "Claude Debussy",
    "La traviata": "Giuseppe Verdi",
    "Liebestraum No. 3": "Franz Liszt",
    "Lohengrin": "Richard Wagner",
    "Madama Butterfly": "Giacomo Puccini",
    "Maple Leaf Rag": "Scott Joplin",
    "Messiah": "George Frideric Handel",
    "the Minute Waltz": "Frédéric Chopin",
    "the Moonlight Sonata": "Ludwig van Beethoven",
    "Nabucco": "Giuseppe Verdi",
    "the New World Symphony": "Antonín Dvořák",
    "Peter and the Wolf": "Sergei Prokofiev",
    "Pomp and Circumstance March No. 1": "Edward Elgar",
    "Prelude to the Afternoon of a Faun": "Claude Debussy",
    "the Radetzky March": "Johann Strauss I",
    "Rhapsody in Blue": "George Gershwin",
    "Rhapsody on a Theme of Paganini": "Sergei Rachmaninoff",
    "Ride of the Valkyries": "Richard Wagner",
    "Rigoletto": "Giuseppe Verdi",
    "the Surprise Symphony": "Joseph Haydn",
    "Swan Lake": "Pyotr Ilyich Tchaikovsky",
    "Symphonie fantastique": "Hector Berlioz",
    "The Blue Danube": "Johann Strauss II",
    "The Carnival of the Animals": "Camille Saint-Saëns",
    "The Creation": "Joseph Haydn",
    "The Entertainer": "Scott Joplin",
    "The Firebird": "Igor Stravinsky",
    "The Four Seasons": "Antonio Vivaldi",
    "The Hebrides": "Felix Mendelssohn",
    "The Lark Ascending": "Ralph Vaughan Williams",
    "The Magic Flute": "Wolfgang Amadeus Mozart",
    "The Marriage of Figaro": "Wolfgang Amadeus Mozart",
    "The Moldau": "Bedřich Smetana",
    "The Nutcracker": "Pyotr Ilyich Tchaikovsky",
    "The Pirates of Penzance": "Arthur Sullivan",
    "The Planets": "Gustav Holst",
    "The Rite of Spring": "Igor Stravinsky",
    "The Ring of the Nibelung": "Richard Wagner",
    "The Sleeping Beauty": "Pyotr Ilyich Tchaikovsky",
    "The Well-Tempered Clavier": "Johann Sebastian Bach",
    "Tosca": "Giacomo Puccini",
    "Tristan und Isolde": "Richard Wagner",
    "the Trout Quintet": "Franz Schubert",
    "Water Music": "George Frideric Handel",
    "West Side Story": "Leonard Bernstein",
    "the William Tell Overture": "Gioachino Rossini",
}

# Textbook inventions only; disputed ones (light bulb, radio, television, telescope, steam engine,
# calculus, ...) and ones named after their inventor (Braille, saxophone, diesel engine) are left out.
_INVENTIONS: dict[str, str] = {
    "dynamite": "Alfred Nobel",
    "the airplane": "the Wright brothers",
    "the barometer": "Evangelista Torricelli",
    "the cash register": "James Ritty",
    "the cotton gin": "Eli Whitney",
    "the Difference Engine": "Charles Babbage",
    "the electric battery": "Alessandro Volta",
    "the flying shuttle": "John Kay",
    "the gramophone": "Emile Berliner",
    "the hot air balloon": "the Montgolfier brothers",
    "the instant camera": "Edwin Land",
    "the kaleidoscope": "David Brewster",
    "the lightning rod": "Benjamin Franklin",
    "the mercury thermometer": "Daniel Gabriel Fahrenheit",
    "the pendulum clock": "Christiaan Huygens",
    "the phonograph": "Thomas Edison",
    "the printing press": "Johannes Gutenberg",
    "the safety elevator": "Elisha Otis",
    "the slide rule": "William Oughtred",
    "the spinning jenny": "James Hargreaves",
    "the spinning mule": "Samuel Crompton",
    "the stethoscope": "René Laennec",
    "the telephone": "Alexander Graham Bell",
    "the World Wide Web": "Tim Berners-Lee",
}

_DISCOVERIES: dict[str, str] = {
    "electromagnetic induction": "Michael Faraday",
    "hydrogen": "Henry Cavendish",
    "Jupiter's moon Io": "Galileo Galilei",
    "penicillin": "Alexander Fleming",
    "polonium": "Marie Curie",
    "radioactivity": "Henri Becquerel",
    "radium": "Marie Curie",
    "Saturn's moon Titan": "Christiaan Huygens",
    "superconductivity": "Heike Kamerlingh Onnes",
    "the atomic nucleus": "Ernest Rutherford",
    "the bacterium that causes tuberculosis": "Robert Koch",
    "the cosmic microwave background": "Arno Penzias and Robert Wilson",
    "the dwarf planet Ceres": "Giuseppe Piazzi",
    "the dwarf planet Pluto": "Clyde Tombaugh",
    "the electron": "J. J. Thomson",
    "the neutron": "James Chadwick",
    "the planet Uranus": "William Herschel",
    "the X-ray": "Wilhelm Röntgen",
}

_SOFTWARE: dict[str, str] = {
    "Git": "Linus Torvalds",
    "LaTeX": "Leslie Lamport",
    "Mathematica": "Stephen Wolfram",
    "MINIX": "Andrew Tanenbaum",
    "the C programming language": "Dennis Ritchie",
    "the C++ programming language": "Bjarne Stroustrup",
    "the Fortran programming language": "John Backus",
    "the Java programming language": "James Gosling",
    "the JavaScript programming language": "Brendan Eich",
    "the Linux kernel": "Linus Torvalds",
    "the Lisp programming language": "John McCarthy",
    "the Pascal programming language": "Niklaus Wirth",
    "the Perl programming language": "Larry Wall",
    "the PHP programming language": "Rasmus Lerdorf",
    "the Python programming language": "Guido van Rossum",
    "the Ruby programming language": "Yukihiro Matsumoto",
    "the Rust programming language": "Graydon Hoare",
    "the Swift programming language": "Chris Lattner",
    "the TeX typesetting system": "Donald Knuth",
    "the Vim text editor": "Bram Moolenaar",
}

# Other accepted forms of a person's name (surnames only where they name one person clearly).
_PEOPLE: dict[str, tuple[str, ...]] = {
    "A. A. Milne": ("A.A. Milne", "AA Milne", "Milne"),
    "Alessandro Volta": ("Volta",),
    "Aleksandr Solzhenitsyn": ("Alexander Solzhenitsyn", "Solzhenitsyn"),
    "Alexander Fleming": ("Fleming", "Sir Alexander Fleming"),
    "Alexander Graham Bell": ("Graham Bell", "Bell"),
    "Alexandre Dumas": ("Dumas",),
    "Alfred Nobel": ("Nobel",),
    "Alfred, Lord Tennyson": ("Alfred Tennyson", "Lord Tennyson", "Tennyson"),
    "Andrew Tanenbaum": ("Andrew S. Tanenbaum", "Tanenbaum"),
    "Antoine de Saint-Exupéry": ("Antoine de Saint-Exupery", "Saint-Exupéry", "Saint-Exupery"),
    "Antonín Dvořák": ("Antonin Dvorak", "Dvořák", "Dvorak"),
    "Arno Penzias and Robert Wilson": ("Penzias and Wilson", "Arno Penzias"),
    "Arthur Conan Doyle": ("Sir Arthur Conan Doyle", "Conan Doyle"),
    "Bertolt Brecht": ("Brecht",),
    "Bedřich Smetana": ("Bedrich Smetana", "Smetana"),
    "Bjarne Stroustrup": ("Stroustrup",),
    "Bram Stoker": ("Stoker",),
    "C. S. Lewis": ("C.S. Lewis", "CS Lewis"),
    "Camille Saint-Saëns": ("Camille Saint-Saens", "Saint-Saëns", "Saint-Saens"),
    "Caspar David Friedrich": ("Friedrich",),
    "Charles Babbage": ("Babbage",),
    "Charles Darwin": ("Darwin",),
    "Charles Dickens": ("Dickens",),
    "Charlotte Brontë": ("Charlotte Bronte",),
    "Christiaan Huygens": ("Huygens", "Christian Huygens"),
    "Claude Debussy": ("Debussy",),
    "Claude Monet": ("Monet",),
    "D. H. Lawrence": ("D.H. Lawrence", "DH Lawrence"),
    "Daniel Defoe": ("Defoe",),
    "Daniel Gabriel Fahrenheit": ("Fahrenheit", "Gabriel Fahrenheit"),
    "Dante Alighieri": ("Dante",),
    "Dennis Ritchie": ("Dennis M. Ritchie", "Ritchie"),
    "Dr. Seuss": ("Dr Seuss", "Seuss"),
    "E. B. White": ("E.B. White", "EB White"),
    "Edgar Allan Poe": ("Poe",),
    "Edvard Munch": ("Munch",),
    "Edward Elgar": ("Sir Edward Elgar", "Elgar"),
    "Edward Hopper": ("Hopper",),
    "Edwin Land": ("Edwin H. Land",),
    "Elisha Otis": ("Elisha Graves Otis", "Otis"),
    "Emile Berliner": ("Emil Berliner", "Berliner"),
    "Emily Brontë": ("Emily Bronte",),
    "Ernest Hemingway": ("Hemingway",),
    "Ernest Rutherford": ("Rutherford", "Lord Rutherford"),
    "Eugène Delacroix": ("Eugene Delacroix", "Delacroix"),
    "Eugène Ionesco": ("Eugene Ionesco", "Ionesco"),
    "Eugene O'Neill": ("O'Neill",),
    "Evangelista Torricelli": ("Torricelli",),
    "F. Scott Fitzgerald": ("F Scott Fitzgerald", "Scott Fitzgerald", "Fitzgerald"),
    "Federico García Lorca": ("Federico Garcia Lorca", "García Lorca", "Garcia Lorca", "Lorca"),
    "Francisco Goya": ("Francisco de Goya", "Goya"),
    "Frank Herbert": ("Herbert",),
    "Franz Kafka": ("Kafka",),
    "Franz Liszt": ("Liszt",),
    "Franz Schubert": ("Schubert",),
    "Frédéric Chopin": ("Frederic Chopin", "Chopin"),
    "Friedrich Nietzsche": ("Nietzsche",),
    "Fyodor Dostoevsky": ("Fyodor Dostoyevsky", "Dostoevsky", "Dostoyevsky"),
    "Gabriel García Márquez": ("Gabriel Garcia Marquez", "García Márquez", "Garcia Marquez"),
    "Galileo Galilei": ("Galileo",),
    "Geoffrey Chaucer": ("Chaucer",),
    "George Bernard Shaw": ("Bernard Shaw", "G. B. Shaw", "Shaw"),
    "George Frideric Handel": ("George Frederick Handel", "Handel", "Händel"),
    "George Gershwin": ("Gershwin",),
    "George Orwell": ("Orwell",),
    "Georges Bizet": ("Bizet",),
    "Giacomo Puccini": ("Puccini",),
    "Gioachino Rossini": ("Gioacchino Rossini", "Rossini"),
    "Giuseppe Piazzi": ("Piazzi",),
    "Giuseppe Verdi": ("Verdi",),
    "Guido van Rossum": ("van Rossum",),
    "Gustav Holst": ("Holst",),
    "Gustav Klimt": ("Klimt",),
    "Gustave Flaubert": ("Flaubert",),
    "H. G. Wells": ("H.G. Wells", "HG Wells"),
    "Harriet Beecher Stowe": ("Stowe",),
    "Heike Kamerlingh Onnes": ("Kamerlingh Onnes",),
    "Henri Becquerel": ("Becquerel", "Antoine Henri Becquerel"),
    "Henri Rousseau": ("Le Douanier Rousseau",),
    "Henrik Ibsen": ("Ibsen",),
    "Henry Cavendish": ("Cavendish",),
    "Henry David Thoreau": ("Thoreau",),
    "Herman Melville": ("Melville",),
    "Hermann Hesse": ("Hesse",),
    "Hieronymus Bosch": ("Bosch",),
    "Igor Stravinsky": ("Stravinsky",),
    "Immanuel Kant": ("Kant",),
    "J. D. Salinger": ("J.D. Salinger", "JD Salinger", "Salinger"),
    "J. J. Thomson": ("J.J. Thomson", "JJ Thomson", "Joseph John Thomson"),
    "J. K. Rowling": ("J.K. Rowling", "JK Rowling", "Rowling"),
    "J. M. Barrie": ("J.M. Barrie", "JM Barrie", "Barrie"),
    "J. M. W. Turner": ("J.M.W. Turner", "JMW Turner", "William Turner"),
    "J. R. R. Tolkien": ("J.R.R. Tolkien", "JRR Tolkien", "Tolkien"),
    "Jacques-Louis David": ("Jacques Louis David",),
    "James Chadwick": ("Chadwick", "Sir James Chadwick"),
    "James Gosling": ("Gosling",),
    "James Hargreaves": ("Hargreaves",),
    "James Joyce": ("Joyce",),
    "Jan van Eyck": ("van Eyck", "Van Eyck"),
    "Jane Austen": ("Austen",),
    "Jean Sibelius": ("Sibelius",),
    "Jean-Jacques Rousseau": ("Jean Jacques Rousseau",),
    "Jean-Paul Sartre": ("Jean Paul Sartre", "Sartre"),
    "Johann Pachelbel": ("Pachelbel",),
    "Johann Sebastian Bach": ("J. S. Bach", "J.S. Bach", "JS Bach", "Bach"),
    "Johann Strauss I": ("Johann Strauss Sr.", "Johann Strauss the Elder", "Johann Strauss"),
    "Johann Strauss II": ("Johann Strauss Jr.", "Johann Strauss the Younger", "Johann Strauss"),
    "Johann Wolfgang von Goethe": ("Johann Wolfgang Goethe", "Goethe"),
    "Johannes Brahms": ("Brahms",),
    "Johannes Gutenberg": ("Gutenberg",),
    "Johannes Vermeer": ("Jan Vermeer", "Vermeer"),
    "John Backus": ("Backus",),
    "John Constable": ("Constable",),
    "John Keats": ("Keats",),
    "John Milton": ("Milton",),
    "John Steinbeck": ("Steinbeck",),
    "John Stuart Mill": ("J. S. Mill", "J.S. Mill"),
    "Jonathan Swift": ("Swift",),
    "Joseph Conrad": ("Conrad",),
    "Joseph Haydn": ("Franz Joseph Haydn", "Haydn"),
    "Jules Verne": ("Verne",),
    "Karl Marx": ("Marx",),
    "Kurt Vonnegut": ("Kurt Vonnegut Jr.", "Vonnegut"),
    "L. Frank Baum": ("Frank Baum", "Baum"),
    "Leo Tolstoy": ("Lev Tolstoy", "Tolstoy"),
    "Leonardo da Vinci": ("da Vinci", "Leonardo"),
    "Linus Torvalds": ("Torvalds",),
    "Lord Byron": ("George Gordon Byron", "Byron"),
    "Louisa May Alcott": ("Alcott",),
    "Lucy Maud Montgomery": ("L. M. Montgomery", "L.M. Montgomery", "LM Montgomery"),
    "Ludwig van Beethoven": ("Beethoven",),
    "Marie Curie": (
        "Marie and Pierre Curie",
        "Pierre and Marie Curie",
        "the Curies",
        "Marie Skłodowska-Curie",
    ),
    "Mary Shelley": ("Mary Wollstonecraft Shelley",),
    "Maurice Ravel": ("Ravel",),
    "Miguel de Cervantes": ("Cervantes", "Miguel de Cervantes Saavedra"),
    "Molière": ("Moliere",),
    "Murasaki Shikibu": ("Lady Murasaki",),
    "Niccolò Machiavelli": ("Niccolo Machiavelli", "Machiavelli"),
    "Nikolai Gogol": ("Gogol",),
    "Nikolai Rimsky-Korsakov": ("Rimsky-Korsakov",),
    "Oscar Wilde": ("Wilde",),
    "Pablo Picasso": ("Picasso",),
    "Pierre-Auguste Renoir": ("Auguste Renoir", "Renoir"),
    "Pieter Bruegel the Elder": ("Pieter Bruegel", "Pieter Brueghel the Elder", "Pieter Brueghel", "Bruegel"),
    "Piet Mondrian": ("Mondrian",),
    "Pyotr Ilyich Tchaikovsky": ("Peter Ilyich Tchaikovsky", "Pyotr Tchaikovsky", "Tchaikovsky"),
    "Rembrandt": ("Rembrandt van Rijn", "Rembrandt Harmenszoon van Rijn"),
    "René Laennec": ("Rene Laennec", "René Laënnec", "Laennec"),
    "René Magritte": ("Rene Magritte", "Magritte"),
    "Richard Wagner": ("Wagner",),
    "Robert Koch": ("Koch",),
    "Robert Louis Stevenson": ("R. L. Stevenson", "Stevenson"),
    "Rudyard Kipling": ("Kipling",),
    "Salvador Dalí": ("Salvador Dali", "Dalí", "Dali"),
    "Samuel Taylor Coleridge": ("Coleridge",),
    "Sandro Botticelli": ("Botticelli",),
    "Sergei Prokofiev": ("Prokofiev",),
    "Sergei Rachmaninoff": ("Sergei Rachmaninov", "Rachmaninoff", "Rachmaninov"),
    "Sigmund Freud": ("Freud",),
    "Simone de Beauvoir": ("de Beauvoir", "Beauvoir"),
    "T. S. Eliot": ("T.S. Eliot", "TS Eliot"),
    "Théodore Géricault": ("Theodore Gericault", "Géricault", "Gericault"),
    "Thomas Edison": ("Thomas Alva Edison", "Edison"),
    "Thomas Hardy": ("Hardy",),
    "Thomas Hobbes": ("Hobbes",),
    "Tim Berners-Lee": ("Sir Tim Berners-Lee", "Berners-Lee"),
    "Umberto Eco": ("Eco",),
    "Vincent van Gogh": ("van Gogh", "Van Gogh"),
    "Virgil": ("Vergil",),
    "Virginia Woolf": ("Woolf",),
    "Vladimir Nabokov": ("Nabokov",),
    "W. B. Yeats": ("W.B. Yeats", "William Butler Yeats", "Yeats"),
    "W. Somerset Maugham": ("Somerset Maugham", "Maugham"),
    "Walt Whitman": ("Whitman",),
    "Wilhelm Röntgen": ("Wilhelm Roentgen", "Wilhelm Conrad Röntgen", "Röntgen", "Roentgen"),
    "William Blake": ("Blake",),
    "William Faulkner": ("Faulkner",),
    "William Herschel": ("Herschel", "Sir William Herschel"),
    "William Makepeace Thackeray": ("Thackeray",),
    "William Shakespeare": ("Shakespeare",),
    "William Wordsworth": ("Wordsworth",),
    "Wolfgang Amadeus Mozart": ("Mozart",),
    "Yukihiro Matsumoto": ("Matz",),
    "the Montgolfier brothers": ("Montgolfier brothers", "Joseph-Michel and Jacques-Étienne Montgolfier"),
    "the Wright brothers": ("Wright brothers", "Orville and Wilbur Wright", "Wilbur and Orville Wright"),
}

# ------------------------------------------------------------------------------------------------
# Landmarks
# ------------------------------------------------------------------------------------------------

_WASHINGTON: tuple[str, ...] = ("Washington, D.C.", "Washington", "Washington D.C.", "Washington DC")

_LANDMARKS: dict[str, _Entry] = {
    "Alcatraz Island": "San Francisco",
    "Big Ben": "London",
    "Buckingham Palace": "London",
    "Checkpoint Charlie": "Berlin",
    "Copacabana Beach": "Rio de Janeiro",
    "India Gate": ("New Delhi", "Delhi"),
    "Independence Hall": "Philadelphia",
    "Kinkaku-ji": "Kyoto",
    "La Scala": "Milan",
    "Marina Bay Sands": "Singapore",
    "Park Güell": "Barcelona",
    "Piccadilly Circus": "London",
    "Red Square": "Moscow",
    "Saint Basil's Cathedral": "Moscow",
    "Schönbrunn Palace": "Vienna",
    "Sensō-ji": "Tokyo",
    "Table Mountain": "Cape Town",
    "the Acropolis": "Athens",
    "the Alamo": "San Antonio",
    "the Alhambra": "Granada",
    "the Anne Frank House": "Amsterdam",
    "the Arc de Triomphe": "Paris",
    "the Atomium": "Brussels",
    "the Brandenburg Gate": "Berlin",
    "the Bund": "Shanghai",
    "the Burj Khalifa": "Dubai",
    "the Champs-Élysées": "Paris",
    "the Charles Bridge": "Prague",
    "the Christ the Redeemer statue": "Rio de Janeiro",
    "the CN Tower": "Toronto",
    "the Colosseum": "Rome",
    "the Dome of the Rock": "Jerusalem",
    "the Eiffel Tower": "Paris",
    "the Empire State Building": ("New York City", "New York", "NYC"),
    "the Forbidden City": "Beijing",
    "the Fushimi Inari Shrine": "Kyoto",
    "the Gateway Arch": ("St. Louis", "Saint Louis", "St Louis"),
    "the Gateway of India": "Mumbai",
    "the Golden Gate Bridge": "San Francisco",
    "the Hagia Sophia": "Istanbul",
    "the Hermitage Museum": ("Saint Petersburg", "St. Petersburg", "St Petersburg"),
    "the Hollywood Sign": "Los Angeles",
    "the Kaaba": ("Mecca", "Makkah"),
    "the Kremlin": "Moscow",
    "the Liberty Bell": "Philadelphia",
    "the Lincoln Memorial": _WASHINGTON,
    "the Louvre": "Paris",
    "the Manneken Pis": "Brussels",
    "the Musée d'Orsay": "Paris",
    "the Oriental Pearl Tower": "Shanghai",
    "the Parthenon": "Athens",
    "the Ponte Vecchio": "Florence",
    "the Potala Palace": "Lhasa",
    "the Prado Museum": "Madrid",
    "the Red Fort": "Delhi",
    "the Reichstag building": "Berlin",
    "the Rialto Bridge": "Venice",
    "the Rijksmuseum": "Amsterdam",
    "the Sacré-Cœur Basilica": "Paris",
    "the Sagrada Família": "Barcelona",
    "the Shwedagon Pagoda": ("Yangon", "Rangoon"),
    "the Space Needle": "Seattle",
    "the Statue of Liberty": ("New York City", "New York", "NYC"),
    "the Temple of Heaven": "Beijing",
    "the Terracotta Army": ("Xi'an", "Xian"),
    "the Trevi Fountain": "Rome",
    "the Uffizi Gallery": "Florence",
    "the Western Wall": "Jerusalem",
    "the White House": _WASHINGTON,
    "Tiananmen Square": "Beijing",
    "Times Square": ("New York City", "New York", "NYC"),
    "Tivoli Gardens": "Copenhagen",
    "Topkapı Palace": "Istanbul",
    "Tower Bridge": "London",
    "Trafalgar Square": "London",
    "Wat Arun": "Bangkok",
    "Westminster Abbey": "London",
}

# ------------------------------------------------------------------------------------------------
# Animals and words
# ------------------------------------------------------------------------------------------------

_ANIMAL_YOUNG: dict[str, _Entry] = {
    "bear": "cub",
    "beaver": "kit",
    "butterfly": ("caterpillar", "larva"),
    "camel": "calf",
    "cat": ("kitten", "kitty"),
    "cheetah": "cub",
    "cow": "calf",
    "deer": "fawn",
    "dog": ("puppy", "pup"),
    "dolphin": "calf",
    "donkey": "foal",
    "duck": "duckling",
    "elephant": "calf",
    "fox": ("kit", "cub", "pup"),
    "frog": ("tadpole", "polliwog", "froglet"),
    "giraffe": "calf",
    "goat": "kid",
    "goose": "gosling",
    "hare": "leveret",
    "hippopotamus": "calf",
    "horse": ("foal", "colt", "filly"),
    "kangaroo": "joey",
    "leopard": "cub",
    "lion": "cub",
    "panda": "cub",
    "pig": "piglet",
    "pigeon": ("squab", "squeaker"),
    "rabbit": ("kit", "kitten", "bunny"),
    "seal": "pup",
    "shark": "pup",
    "sheep": "lamb",
    "swan": "cygnet",
    "tiger": "cub",
    "turkey": "poult",
    "whale": "calf",
    "wolf": ("pup", "cub"),
    "zebra": "foal",
}

_ANIMAL_CLASS_MEMBERS: dict[str, tuple[str, ...]] = {
    "amphibians": ("axolotls", "frogs", "newts", "salamanders", "toads"),
    "arachnids": ("mites", "scorpions", "spiders", "ticks"),
    "birds": (
        "chickens", "crows", "ducks", "eagles", "emus", "flamingos", "ostriches",
        "owls", "parrots", "pelicans", "penguins", "pigeons", "robins", "sparrows", "swans",
        "woodpeckers",
    ),
    "crustaceans": ("crabs", "lobsters", "shrimp"),
    "fish": ("carp", "cod", "eels", "herring", "salmon", "sardines", "seahorses", "sharks", "trout", "tuna"),
    "insects": (
        "ants", "bees", "beetles", "butterflies", "cockroaches", "crickets", "dragonflies", "fleas",
        "grasshoppers", "ladybugs", "mosquitoes", "moths", "termites", "wasps",
    ),
    "mammals": (
        "bats", "bears", "camels", "cats", "cows", "dogs", "dolphins", "elephants", "giraffes",
        "gorillas", "hedgehogs", "horses", "kangaroos", "koalas", "lions", "mice", "otters",
        "platypuses", "rabbits", "seals", "squirrels", "tigers", "walruses", "whales", "wolves",
    ),
    "mollusks": ("octopuses", "snails", "squid"),
    "reptiles": (
        "alligators", "chameleons", "cobras", "crocodiles", "geckos", "iguanas", "lizards", "snakes",
        "tortoises", "turtles",
    ),
}  # fmt: skip

_ANIMAL_CLASS_ALIASES: dict[str, tuple[str, ...]] = {
    "fish": ("fishes",),
    "mollusks": ("molluscs",),
}

# Extra accepted answers for single animals.
_ANIMAL_EXTRA: dict[str, tuple[str, ...]] = {
    "bats": ("flying mammals",),
    "dolphins": ("marine mammals",),
    "kangaroos": ("marsupials",),
    "koalas": ("marsupials",),
    "platypuses": ("monotremes",),
    "seals": ("marine mammals", "pinnipeds"),
    "sharks": ("cartilaginous fish",),
    "walruses": ("marine mammals", "pinnipeds"),
    "whales": ("marine mammals", "cetaceans"),
}

_OPPOSITES: dict[str, _Entry] = {
    "above": ("below", "beneath", "under"),
    "accept": ("reject", "refuse", "decline"),
    "alive": "dead",
    "always": "never",
    "ancient": "modern",
    "arrive": ("depart", "leave"),
    "asleep": "awake",
    "awake": "asleep",
    "bad": "good",
    "before": "after",
    "after": "before",
    "begin": ("end", "finish"),
    "below": "above",
    "big": ("small", "little"),
    "black": "white",
    "borrow": "lend",
    "bottom": "top",
    "boy": "girl",
    "brother": "sister",
    "buy": "sell",
    "cheap": ("expensive", "costly"),
    "clean": "dirty",
    "cold": "hot",
    "dangerous": "safe",
    "daughter": "son",
    "day": "night",
    "dead": ("alive", "living"),
    "deep": "shallow",
    "dirty": "clean",
    "dry": "wet",
    "early": "late",
    "east": "west",
    "empty": "full",
    "enemy": ("friend", "ally"),
    "entrance": "exit",
    "expensive": ("cheap", "inexpensive"),
    "export": "import",
    "fast": "slow",
    "first": "last",
    "forget": "remember",
    "friend": ("enemy", "foe"),
    "full": "empty",
    "girl": "boy",
    "good": ("bad", "evil"),
    "guilty": "innocent",
    "happy": ("sad", "unhappy"),
    "hate": "love",
    "heavy": "light",
    "heaven": "hell",
    "high": "low",
    "hot": "cold",
    "import": "export",
    "increase": "decrease",
    "innocent": "guilty",
    "inside": "outside",
    "late": "early",
    "lend": "borrow",
    "long": "short",
    "loud": ("quiet", "soft"),
    "love": "hate",
    "low": "high",
    "major": "minor",
    "maximum": "minimum",
    "minimum": "maximum",
    "minor": "major",
    "narrow": ("wide", "broad"),
    "negative": "positive",
    "never": "always",
    "night": "day",
    "north": "south",
    "odd": "even",
    "open": ("closed", "shut"),
    "outside": "inside",
    "peace": "war",
    "poor": ("rich", "wealthy"),
    "positive": "negative",
    "private": "public",
    "public": "private",
    "pull": "push",
    "push": "pull",
    "question": "answer",
    "quiet": ("loud", "noisy"),
    "remember": "forget",
    "rich": "poor",
    "rough": "smooth",
    "sad": "happy",
    "safe": "dangerous",
    "sell": "buy",
    "shallow": "deep",
    "sharp": ("dull", "blunt"),
    "sister": "brother",
    "slow": ("fast", "quick"),
    "small": ("big", "large"),
    "smooth": "rough",
    "son": "daughter",
    "south": "north",
    "strong": "weak",
    "success": "failure",
    "tall": "short",
    "thick": "thin",
    "top": "bottom",
    "true": "false",
    "ugly": ("beautiful", "pretty"),
    "victory": "defeat",
    "war": "peace",
    "weak": "strong",
    "west": "east",
    "wet": "dry",
    "white": "black",
    "wide": "narrow",
    "win": "lose",
    "young": "old",
}

_PAST_TENSE: dict[str, _Entry] = {
    "arise": "arose",
    "become": "became",
    "begin": "began",
    "bend": "bent",
    "bleed": "bled",
    "blow": "blew",
    "break": "broke",
    "breed": "bred",
    "bring": "brought",
    "build": "built",
    "buy": "bought",
    "catch": "caught",
    "choose": "chose",
    "cling": "clung",
    "come": "came",
    "creep": "crept",
    "deal": "dealt",
    "dig": "dug",
    "do": "did",
    "draw": "drew",
    "drink": "drank",
    "drive": "drove",
    "eat": "ate",
    "fall": "fell",
    "feed": "fed",
    "feel": "felt",
    "fight": "fought",
    "find": "found",
    "flee": "fled",
    "fly": "flew",
    "forbid": ("forbade", "forbad"),
    "forget": "forgot",
    "forgive": "forgave",
    "freeze": "froze",
    "get": "got",
    "give": "gave",
    "go": "went",
    "grow": "grew",
    "have": "had",
    "hear": "heard",
    "hold": "held",
    "keep": "kept",
    "know": "knew",
    "lay": "laid",
    "lead": "led",
    "leave": "left",
    "lend": "lent",
    "lose": "lost",
    "make": "made",
    "mean": "meant",
    "meet": "met",
    "pay": "paid",
    "ride": "rode",
    "ring": ("rang", "ringed"),  # "ringed" for "to encircle"
    "rise": "rose",
    "run": "ran",
    "say": "said",
    "see": "saw",
    "seek": "sought",
    "sell": "sold",
    "send": "sent",
    "shake": "shook",
    "shine": ("shone", "shined"),
    "shoot": "shot",
    "shrink": ("shrank", "shrunk"),
    "sing": "sang",
    "sink": ("sank", "sunk"),
    "sit": "sat",
    "sleep": "slept",
    "speak": "spoke",
    "spend": "spent",
    "spin": "spun",
    "stand": "stood",
    "steal": "stole",
    "stick": "stuck",
    "sting": "stung",
    "strike": "struck",
    "swear": "swore",
    "swim": "swam",
    "swing": "swung",
    "take": "took",
    "teach": "taught",
    "tell": "told",
    "think": "thought",
    "throw": "threw",
    "understand": "understood",
    "wake": "woke",
    "wear": "wore",
    "weep": "wept",
    "win": "won",
    "write": "wrote",
}

_PLURALS: dict[str, _Entry] = {
    "alga": "algae",
    "alumnus": "alumni",
    "analysis": "analyses",
    "antenna": ("antennae", "antennas"),
    "axis": "axes",
    "bacterium": "bacteria",
    "cactus": ("cacti", "cactuses"),
    "calf": "calves",
    "child": "children",
    "corpus": ("corpora", "corpuses"),
    "crisis": "crises",
    "criterion": "criteria",
    "curriculum": ("curricula", "curriculums"),
    "diagnosis": "diagnoses",
    "elf": "elves",
    "ellipsis": "ellipses",
    "foot": "feet",
    "fungus": ("fungi", "funguses"),
    "genus": "genera",
    "goose": "geese",
    "half": "halves",
    "hero": "heroes",
    "hoof": ("hooves", "hoofs"),
    "hypothesis": "hypotheses",
    "knife": "knives",
    "larva": "larvae",
    "leaf": "leaves",
    "life": "lives",
    "loaf": "loaves",
    "louse": "lice",
    "man": "men",
    "matrix": ("matrices", "matrixes"),
    "memorandum": ("memoranda", "memorandums"),
    "millennium": ("millennia", "millenniums"),
    "mouse": "mice",
    "nucleus": "nuclei",
    "oasis": "oases",
    "ox": "oxen",
    "parenthesis": "parentheses",
    "person": ("people", "persons"),
    "phenomenon": "phenomena",
    "potato": "potatoes",
    "radius": ("radii", "radiuses"),
    "shelf": "shelves",
    "stimulus": "stimuli",
    "thesis": "theses",
    "thief": "thieves",
    "tomato": "tomatoes",
    "tooth": "teeth",
    "vertebra": ("vertebrae", "vertebras"),
    "vertex": ("vertices", "vertexes"),
    "wife": "wives",
    "wolf": "wolves",
    "woman": "women",
}

# ------------------------------------------------------------------------------------------------
# Objects that must never be used for a false statement about a subject: partly true
# (transcontinental territory, a replica, a second work of the same title, a closely related
# language or currency, a cladistic argument).
# ------------------------------------------------------------------------------------------------

_FALSE_EXCLUDE: dict[tuple[str, str], frozenset[str]] = {
    ("country_currency", "Afghanistan"): frozenset({"rupee"}),
    ("country_continent", "Colombia"): frozenset({"North America"}),
    ("country_continent", "Denmark"): frozenset({"North America"}),
    ("country_continent", "Egypt"): frozenset({"Asia"}),
    ("country_continent", "France"): frozenset({"Africa", "North America", "South America"}),
    ("country_continent", "Iceland"): frozenset({"North America"}),
    ("country_continent", "Italy"): frozenset({"Africa"}),
    ("country_continent", "Malta"): frozenset({"Africa"}),
    ("country_continent", "Netherlands"): frozenset({"North America"}),
    ("country_continent", "Panama"): frozenset({"South America"}),
    ("country_continent", "Portugal"): frozenset({"Africa"}),
    ("country_continent", "Spain"): frozenset({"Africa"}),
    ("country_continent", "United Kingdom"): frozenset({"North America", "South America"}),
    ("country_continent", "Yemen"): frozenset({"Africa"}),
    ("invention_inventor", "electric battery"): frozenset({"Benjamin Franklin"}),  # he coined "battery"
    ("landmark_city", "Hermitage Museum"): frozenset({"Amsterdam"}),
    ("landmark_city", "Statue of Liberty"): frozenset({"Paris"}),
    ("play_author", "Faust"): frozenset({"Christopher Marlowe"}),
}

# Objects never used for a false statement in a relation: the US dollar circulates widely beside
# the national currency in several of the countries listed.
_NEVER_FALSE: dict[str, frozenset[str]] = {"country_currency": frozenset({"US dollar"})}

# Groups of objects within a relation that are too close to serve as each other's false object.
_CONFUSABLE: dict[str, tuple[frozenset[str], ...]] = {
    "animal_class": (frozenset({"birds", "reptiles"}), frozenset({"insects", "crustaceans"})),
    "country_currency": (
        frozenset({"krona", "krone", "koruna"}),
        frozenset({"rial", "riyal"}),
        frozenset({"rupee", "rupiah"}),
        frozenset({"som", "somoni"}),
    ),
    "country_language": (
        frozenset({"Indonesian", "Malay"}),
        frozenset({"Persian", "Tajik"}),
        frozenset({"Serbian", "Croatian"}),
    ),
    "invention_inventor": (frozenset({"Thomas Edison", "Emile Berliner", "Alexander Graham Bell"}),),
}

# ------------------------------------------------------------------------------------------------
# Building the records
# ------------------------------------------------------------------------------------------------


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _split(entry: _Entry) -> tuple[str, list[str]]:
    if isinstance(entry, str):
        return entry, []
    return entry[0], list(entry[1:])


def _strip_the(s: str) -> str:
    return s[4:] if s.startswith("the ") else s


def _country_display(name: str) -> str:
    return f"the {name}" if name in _THE else name


def _country_object(name: str) -> tuple[str, list[str]]:
    """The country as an answer ("the United States") and its other accepted forms."""
    display = _country_display(name)
    aliases = [name] if display != name else []
    return display, aliases + list(_COUNTRY_ALIASES.get(name, ()))


def _dedupe(answer: str, aliases: list[str]) -> list[str]:
    seen = {answer.casefold()}
    out = []
    for alias in aliases:
        if alias.casefold() not in seen:
            seen.add(alias.casefold())
            out.append(alias)
    return out


def _leaks(answer: str, prompt: str) -> bool:
    """Whether ``answer`` can be read off ``prompt`` (as a substring, or as a whole word in any case)."""
    return answer in prompt or re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", prompt, re.I) is not None


def _fact(relation: str, display: str, answer: str, aliases: list[str], subject: str | None = None) -> dict:
    prompt = _cap(TEMPLATES[relation].format(s=display))
    if not answer or answer != answer.strip() or prompt != prompt.strip():
        raise LmscopeError(f"{relation}: bad answer or prompt for {display!r}")  # pragma: no cover
    if _leaks(answer, prompt):  # pragma: no cover - guards the tables
        raise LmscopeError(f"{relation}: the answer {answer!r} is in its prompt {prompt!r}")
    return {
        "relation": relation,
        "subject": subject if subject is not None else _strip_the(display),
        "answer": answer,
        "aliases": _dedupe(answer, aliases),
        "prompt": prompt,
    }


def _person(name: str) -> tuple[str, list[str]]:
    return name, list(_PEOPLE.get(name, ()))


def _facts_by_relation() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {r: [] for r in TEMPLATES}

    def add(relation: str, display: str, entry: _Entry, extra: tuple[str, ...] = (), subject=None) -> None:
        answer, aliases = _split(entry)
        out[relation].append(_fact(relation, display, answer, aliases + list(extra), subject))

    for country, entry in _CAPITALS.items():
        add("country_capital", _country_display(country), entry, subject=country)
    for continent, countries in _CONTINENT_MEMBERS.items():
        for country in countries:
            add("country_continent", _country_display(country), continent, subject=country)
    for language, countries in _LANGUAGE_MEMBERS.items():
        for country in countries:
            entry = (language, *_LANGUAGE_ALIASES.get(language, ()))
            add("country_language", _country_display(country), entry, subject=country)
    for country, entry in _CURRENCIES.items():
        add("country_currency", _country_display(country), entry, subject=country)
    for country, cities in _CITIES.items():
        answer, aliases = _country_object(country)
        for city in cities:
            nation = (_UK_NATIONS[city],) if city in _UK_NATIONS else ()
            add("city_country", city, (answer, *aliases), nation)
    for symbol, name in _ELEMENTS:
        add("element_symbol", name, symbol)
        add("symbol_element", symbol, (name, *_ELEMENT_ALIASES.get(name, ())))
    for relation, table in (
        ("book_author", _BOOKS),
        ("play_author", _PLAYS),
        ("poem_author", _POEMS),
        ("painting_artist", _PAINTINGS),
        ("composition_composer", _COMPOSITIONS),
        ("invention_inventor", _INVENTIONS),
        ("discovery_discoverer", _DISCOVERIES),
        ("software_creator", _SOFTWARE),
    ):
        for work, person in table.items():
            answer, aliases = _person(person)
            add(relation, work, (answer, *aliases))
    for landmark, entry in _LANDMARKS.items():
        add("landmark_city", landmark, entry)
    for animal, entry in _ANIMAL_YOUNG.items():
        add("animal_young", animal, entry)
    for group, animals in _ANIMAL_CLASS_MEMBERS.items():
        for animal in animals:
            entry = (group, *_ANIMAL_CLASS_ALIASES.get(group, ()))
            add("animal_class", animal, entry, _ANIMAL_EXTRA.get(animal, ()))
    for relation, table in (("opposite", _OPPOSITES), ("past_tense", _PAST_TENSE), ("plural", _PLURALS)):
        for word, entry in table.items():
            add(relation, word, entry)

    for relation, rows in out.items():
        rows.sort(key=lambda r: r["subject"])
        prompts = [r["prompt"] for r in rows]
        if len(set(prompts)) != len(prompts):
            raise LmscopeError(f"{relation}: duplicate prompts")  # pragma: no cover
    return out


def facts() -> list[dict]:
    """Every fact, sorted by relation then subject, as ``{"relation", "subject", "answer", "aliases"}``."""
    by_relation = _facts_by_relation()
    return [
        {k: row[k] for k in ("relation", "subject", "answer", "aliases")}
        for relation in sorted(by_relation)
        for row in by_relation[relation]
    ]


def factual_recall_rows() -> list[dict]:
    """One completion prompt per fact: ``{"id", "relation", "prompt", "answer", "aliases"}``.

    Sorted by relation then subject; ids are ``"<relation>-<nnn>"``, numbered within the relation.
    """
    by_relation = _facts_by_relation()
    rows = []
    for relation in sorted(by_relation):
        for i, row in enumerate(by_relation[relation], 1):
            rows.append(
                {
                    "id": f"{relation}-{i:03d}",
                    "relation": relation,
                    "prompt": row["prompt"],
                    "answer": row["answer"],
                    "aliases": row["aliases"],
                }
            )
    return rows


def normalize_answer(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of an answer, without a leading "the"."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"[^\w\s]", "", text)
    text = " ".join(text.split())
    return text[4:] if text.startswith("the ") else text


def _forms(row: dict) -> set[str]:
    return {normalize_answer(a) for a in [row["answer"], *row["aliases"]]}


def _swap_allowed(relation: str, gold: dict, other: dict) -> bool:
    if other["subject"] == gold["subject"] or _forms(gold) & _forms(other):
        return False
    if other["answer"] in _FALSE_EXCLUDE.get((relation, gold["subject"]), frozenset()):
        return False
    if other["answer"] in _NEVER_FALSE.get(relation, frozenset()):
        return False
    return not any(
        gold["answer"] in group and other["answer"] in group for group in _CONFUSABLE.get(relation, ())
    )


def true_false_rows(per_relation: int = 22, seed: int = 0) -> list[dict]:
    """True/false statements built from the facts of :data:`TRUE_FALSE_RELATIONS`.

    For each relation, ``per_relation`` facts are drawn with ``random.Random(seed)``; they alternate
    between a true statement (the gold answer) and a false one whose object is the answer of
    another fact of the same relation, chosen so that it shares no form with the gold answer or
    its aliases and is not partly true (see ``_FALSE_EXCLUDE`` and ``_CONFUSABLE``). Half the rows
    are true (``per_relation`` must be even).
    """
    if per_relation < 2 or per_relation % 2:
        raise LmscopeError(f"per_relation must be an even number >= 2, got {per_relation!r}")
    rng = random.Random(seed)
    by_relation = _facts_by_relation()
    rows: list[dict] = []
    for relation in TRUE_FALSE_RELATIONS:
        pool = by_relation[relation]
        chosen = 0
        for gold in rng.sample(pool, len(pool)):
            if chosen == per_relation:
                break
            label = chosen % 2 == 0
            if label:
                obj = gold["answer"]
            else:
                candidates = sorted({o["answer"] for o in pool if _swap_allowed(relation, gold, o)})
                if not candidates:
                    continue  # pragma: no cover - every relation has many objects
                obj = rng.choice(candidates)
            statement = f"{gold['prompt']} {obj}" + ("" if obj.endswith(".") else ".")
            rows.append(
                {
                    "id": f"tf-{len(rows) + 1:03d}",
                    "relation": relation,
                    "subject": gold["subject"],
                    "object": obj,
                    "statement": statement,
                    "label": label,
                    "choices": ["true", "false"],
                    "prompt": f"{statement} True or false? Answer:",
                    "answer": "true" if label else "false",
                }
            )
            chosen += 1
        if chosen < per_relation:  # pragma: no cover - guards the tables
            raise LmscopeError(f"{relation}: only {chosen} statements, {per_relation} wanted")
    return rows


def resources_dir() -> Path:
    """The package folder that holds the bundled JSONL files."""
    return Path(__file__).resolve().parent / "resources"


def write_bundled(directory: str | os.PathLike | None = None) -> list[Path]:
    """Write ``factual_recall.jsonl`` and ``true_false.jsonl`` into ``directory``.

    ``None`` (the default) writes into the package's ``resources`` folder. The files are
    byte-identical on every run.
    """
    directory = Path(directory) if directory is not None else resources_dir()
    return [
        write_jsonl(directory / FACTUAL_RECALL_FILE, factual_recall_rows()),
        write_jsonl(directory / TRUE_FALSE_FILE, true_false_rows()),
    ]


if __name__ == "__main__":  # pragma: no cover
    for written in write_bundled():
        print(written)
