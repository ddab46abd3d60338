"""A fixed, seeded list of what people type into the users search box.

Fragments of first and last names of 2 to 8 characters (mostly the start of a name, some from its
middle), "first las" pairs, e-mail fragments (local parts such as "smith", "j.smith", "@",
company domain parts, top-level domains), a few typos that match nothing, and mixed-case input
("SMI", "Jo", "Van De"). Built from the same Faker pools and occupier domains as the dataset, so
the list is the same for the same seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench import dataset as ds


@dataclass(frozen=True)
class Query:
    text: str
    kind: str  # name-prefix, name-infix, full-name, email, domain, tld, at, nomatch


def _case(rng: random.Random, text: str) -> str:
    roll = rng.random()
    if roll < 0.15:
        return text.title()
    if roll < 0.22:
        return text.upper()
    return text


def make_queries(spec: ds.Spec, count: int, *, seed: int) -> list[Query]:
    pools = ds.Pools.make(spec.seed)
    plans = ds.plan_occupiers(spec, pools)
    rng = random.Random(seed)
    langs = sorted(ds.LANGS)
    weights = [ds.LANGS[lang][1] for lang in langs]
    domains = [d for p in plans for d in p.domains]

    def name() -> tuple[str, str]:
        lang = rng.choices(langs, weights)[0]
        return rng.choice(pools.first[lang]), rng.choice(pools.last[lang])

    def piece(word: str, lo: int, hi: int, infix: bool) -> str:
        word = word.strip()
        n = rng.randint(lo, min(hi, max(lo, len(word))))
        start = rng.randint(0, max(0, len(word) - n)) if infix else 0
        return word[start : start + n]

    kinds = [
        ("name-prefix", 40),
        ("name-infix", 12),
        ("full-name", 12),
        ("email", 14),
        ("domain", 10),
        ("tld", 3),
        ("at", 2),
        ("nomatch", 7),
    ]
    out: list[Query] = []
    while len(out) < count:
        kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        first, last = name()
        if kind == "name-prefix":
            text = piece(rng.choice([first, last, last]), 2, 8, infix=False)
        elif kind == "name-infix":
            text = piece(rng.choice([first, last]), 3, 6, infix=True)
        elif kind == "full-name":
            text = f"{first} {piece(last, 1, 4, infix=False)}"
        elif kind == "email":
            local = f"{ds.ascii_slug(first, '-')}.{ds.ascii_slug(last, '')}"
            text = rng.choice(
                [
                    ds.ascii_slug(last, "")[:8],
                    local[: rng.randint(3, len(local))],
                    f"{ds.ascii_slug(first, '-')[:1]}.{ds.ascii_slug(last, '')}",
                ]
            )
        elif kind == "domain":
            domain = rng.choice(domains)
            base = domain.split(".")[0]
            text = rng.choice([f"@{base[: rng.randint(3, 8)]}", base[: rng.randint(4, 12)], domain])
        elif kind == "tld":
            text = rng.choice([".co.uk", ".de", ".nl", "@", ".com", "co.uk"])
        elif kind == "at":
            text = "@"
        else:
            text = rng.choice(["zqx", "xxj", "qwrt", "zzyzx", "jqpl", "bq", "kxv", "vvq", "@@", "wxyz"])
        text = text.strip()
        if not text:
            continue
        if kind not in ("at", "tld", "nomatch"):
            text = _case(rng, text)
        out.append(Query(text=text, kind=kind))
    return out
