"""Every way the search finds a page (index, walk, short fragment) returns what a plain filter would."""

from __future__ import annotations

import pytest

from occupant.users import queries
from tests.factories import admin_actor, make_occupier, make_operator, make_user

NAMES = [
    ("Ann", "Smith"),
    ("Anna", "Smithson"),
    ("Bob", "Kögel"),
    ("Kör", "Mäder"),
    ("Zoë", "Annet"),
    ("Sam", "Ansel"),
    ("Tom", "Bans"),
    ("Eve", "Nash"),
    ("Ian", "Hann"),
    ("Ned", "Anders"),
    ("Oli", "Vanna"),
    ("Pia", "Kowal"),
    ("Ray", "Mann"),
    ("Sue", "Annan"),
    ("Uma", "Dann"),
]


@pytest.mark.parametrize("thresholds", [(2, 3, 5), (5000, 500, 20_000)], ids=["tiny", "default"])
def test_every_search_path_matches_a_plain_filter(db, monkeypatch, thresholds):
    few, peek, short_walk = thresholds
    monkeypatch.setattr(queries, "FEW_MATCHES", few)
    monkeypatch.setattr(queries, "PEEK", peek)
    monkeypatch.setattr(queries, "SHORT_WALK", short_walk)
    operator = make_operator(db)
    occupier = make_occupier(db, operator)
    users = [
        make_user(db, occupier, first_name=f, last_name=last, email=f"{f}.{last}@corp.example".lower())
        for f, last in NAMES
    ]
    me = admin_actor(operator)
    for needle in ["an", "ann", "Smith", "kö", "ä", "corp", "@", "zzz", "n", "ans"]:
        expected = sorted(
            (u for u in users if needle.lower() in u.search_text), key=lambda u: (u.sort_key, u.id)
        )
        found, cursor = [], None
        while True:  # walk every page of 4
            page = queries.list_users(db, me, q=needle, cursor=cursor, limit=4)
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        assert [u.id for u in found] == [u.id for u in expected], needle
