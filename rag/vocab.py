"""Football knowledge as data: club names and nicknames, and the vocabulary of football news.

``rag/data/aliases.json`` maps each club (or competition, or national side) to the other names
news uses for it; retrieval expands questions with it and the answerer treats those names as
the same thing. ``rag/data/football.json`` says which nouns name a person, a side, a place or a
competition, lists grounds, countries and nationality words, and groups words used
interchangeably. Keeping this in data means a fan can extend it without touching code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .text import stem


@lru_cache(maxsize=1)
def alias_table() -> dict[str, list[str]]:
    """Canonical name -> nicknames, from the packaged data file."""
    raw = json.loads(resources.files("rag").joinpath("data/aliases.json").read_text("utf-8"))
    return {k: v for k, v in raw.items() if not k.startswith("_")}



@dataclass(frozen=True)
class Vocabulary:
    """Lower-cased football vocabulary from the data files."""

    person_nouns: frozenset[str]
    club_nouns: frozenset[str]
    country_nouns: frozenset[str]
    place_nouns: frozenset[str]
    competition_nouns: frozenset[str]
    org_nouns: frozenset[str]
    clubs: frozenset[str]
    venues: frozenset[str]
    countries: frozenset[str]
    demonyms: frozenset[str]
    synonyms: dict[str, frozenset[str]]  # stem -> stems of words used interchangeably
    building_nouns: frozenset[str]  # "Which *stadium*": never answered with a club or a person
    opponent_words: frozenset[str]  # a name after these is probably a side: "against *Wimbledon*"
    on_pitch: frozenset[str]  # stems of what only players do: "scored", "headed"
    off_pitch: frozenset[str]  # stems of roles that do not play: "president", "referee"
    money_verbs: frozenset[str]  # stems of verbs a fee answers: "pay", "sell"
    meet_verbs: frozenset[str]  # stems of verbs a match answers: "meet", "play"
    match_words: frozenset[str]  # stems of words that say a match happened: "beat", "final"


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    raw = json.loads(resources.files("rag").joinpath("data/football.json").read_text("utf-8"))
    low = lambda key: frozenset(x.lower() for x in raw[key])  # noqa: E731
    stemmed = lambda key: frozenset(stem(x) for x in raw[key])  # noqa: E731
    clubs: set[str] = set()
    for canon, aliases in alias_table().items():
        clubs.add(canon.lower())
        clubs.update(a.lower().removeprefix("the ") for a in aliases)
    venues = set(low("venues"))
    clubs -= venues
    syn: dict[str, set[str]] = {}
    for group in raw["synonyms"]:
        stems = {stem(w) for w in group}
        for s in stems:
            syn.setdefault(s, set()).update(stems - {s})
    return Vocabulary(
        person_nouns=low("person_nouns"), club_nouns=low("club_nouns"),
        country_nouns=low("country_nouns"), place_nouns=low("place_nouns"),
        competition_nouns=low("competition_nouns"), org_nouns=low("org_nouns"),
        clubs=frozenset(clubs), venues=frozenset(venues), countries=low("countries"),
        demonyms=frozenset(raw["demonyms"]),
        synonyms={k: frozenset(v) for k, v in syn.items()},
        building_nouns=low("building_nouns"), opponent_words=low("opponent_words"),
        on_pitch=stemmed("on_pitch_verbs"), off_pitch=stemmed("off_pitch_roles"), money_verbs=stemmed("money_verbs"),
        meet_verbs=stemmed("meet_verbs"), match_words=stemmed("match_words"),
    )




_COMPETITION = re.compile(r"\b(League|Liga|Cup|Copa|Trophy|Championships?|Bundesliga|Serie|Ligue|Premiership|Shield|Final|Olympics|Games|Euro|Conference|Division|Award|Association|Federation)\b")
_VENUE_WORD = re.compile(r"\b(Park|Stadium|Stadio|Estadio|Stade|Arena|Road|Lane|Ground|Cottage|Bridge|Hall|Hotel)\b")
_CLUB_WORD = re.compile(r"\b(FC|AFC|CF|AC|AS|SS|VfB|VfL|SV|SC|RC|RCD|CD|UD|FK|NK|SK|KV|KRC|RSC|RKC|RFC|NAC|AZ|HSV|TSV|United|City|Town|Rovers|Athletic|Albion|Wanderers|County|Villa|Hotspur|Rangers|Celtic|Real|Sporting|Inter|Juventus|Dynamo|Dinamo|Borussia|Olympique|Bayern|Ajax|PSV|Benfica|Porto|Thistle|Academical|Alexandra|Argyle|Orient|Hapoel|Maccabi|Partizan|Partizani|Steaua|Lokomotiv|Spartak|Sparta|Slavia|Legia|Wisla|Feyenoord|Galatasaray|Besiktas|Fenerbahce)\b")
_CALENDAR = re.compile(r"^(?:January|February|March|April|May|June|July|August|September|October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|Christmas|Easter|New Year)$")


def entity_kind(name: str) -> str:
    """place / competition / country / club / calendar / name, from the data and the name itself."""
    voc = vocabulary()
    low = name.lower().removeprefix("the ")
    if low in voc.venues or _VENUE_WORD.search(name):
        return "place"
    if _COMPETITION.search(name):
        return "competition"
    if low in voc.countries:
        return "country"
    if low in voc.clubs or low.removeprefix("as ") in voc.clubs or _CLUB_WORD.search(name):
        return "club"
    if _CALENDAR.match(name):
        return "calendar"
    return "name"
