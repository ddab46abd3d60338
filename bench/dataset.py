"""The benchmark dataset: one operator, 5 sites, 2,000 occupiers, 1,000,000 occupier users.

Everything is derived from one seed (and the Faker version), so a rebuild gives the same rows.
Names come from Faker's per-locale providers (en_GB, fr_FR, de_DE, es_ES, nl_NL); each occupier
has its own e-mail domain, so e-mail addresses are unique per operator by construction, and
namesakes within an occupier get john.smith2@, john.smith3@, ...

Occupier sizes: ``big_occupiers`` of exactly ``big_size`` users (the "Users tab with 5,000 users"
case), the rest log-normally distributed (a few hundred each, a long tail). Users of different
occupiers are interleaved in id order (waves of 50 occupiers, shuffled), as they would be when
created over time, so an occupier's users are not one contiguous run of rows.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from faker import Faker

from occupant.users.models import OccupierUser, UserStatus

# code, name, country, language of the site's city
SITES: tuple[tuple[str, str, str, str], ...] = (
    ("LON01", "London Bridge", "GB", "en"),
    ("PAR01", "Paris Opéra", "FR", "fr"),
    ("BER01", "Berlin Mitte", "DE", "de"),
    ("MAD01", "Madrid Castellana", "ES", "es"),
    ("AMS01", "Amsterdam Zuidas", "NL", "nl"),
)
# language -> Faker locale, weight among users, e-mail top-level domain of local companies
LANGS: dict[str, tuple[str, int, str]] = {
    "en": ("en_GB", 40, ".co.uk"),
    "fr": ("fr_FR", 15, ".fr"),
    "de": ("de_DE", 20, ".de"),
    "es": ("es_ES", 10, ".es"),
    "nl": ("nl_NL", 15, ".nl"),
}
SITE_LANG = {code: lang for code, _n, _c, lang in SITES}
MOBILE_PREFIX = {
    "en": ("+447", 9),
    "fr": ("+336", 8),
    "de": ("+4915", 9),
    "es": ("+346", 8),
    "nl": ("+316", 8),
}
LANDLINE_PREFIX = {
    "LON01": ("+44207", 7),
    "PAR01": ("+331", 8),
    "BER01": ("+4930", 8),
    "MAD01": ("+3491", 7),
    "AMS01": ("+3120", 7),
}
STATUSES = (
    [
        UserStatus.ACTIVE.value,
        UserStatus.DEACTIVATED.value,
        UserStatus.SETUP_REQUIRED.value,
        UserStatus.PASSWORD_REQUIRED.value,
    ],
    [85, 5, 7, 3],
)
EPOCH = datetime(2023, 1, 2, 8, 0, 0)
SPAN_SECONDS = 3 * 365 * 24 * 3600

# The columns filled for each user, in this order (COPY) or as dict keys (SQLite inserts).
COLUMNS = (
    "operator_id",
    "occupier_id",
    "first_name",
    "last_name",
    "email",
    "email_key",
    "job_title",
    "mobile",
    "direct_line",
    "language",
    "employee_number",
    "username",
    "external_id",
    "status",
    "sort_key",
    "search_text",
    "busy_owner",
    "busy_until",
    "version_id",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class Spec:
    users: int = 1_000_000
    occupiers: int = 2_000
    big_occupiers: int = 10
    big_size: int = 5_000
    seed: int = 42

    @property
    def key(self) -> str:
        return f"u{self.users}-o{self.occupiers}-s{self.seed}"

    def validate(self) -> None:
        small = self.occupiers - self.big_occupiers
        if small < 1 or self.users - self.big_occupiers * self.big_size < small * 3:
            raise SystemExit(
                f"{self.users} users cannot fill {self.big_occupiers} occupiers of "
                f"{self.big_size} plus {small} others"
            )


@dataclass
class OccupierPlan:
    name: str
    lang: str
    site_codes: list[str]  # the first is the primary site
    domains: list[str]
    size: int
    big: bool = False


@dataclass
class Pools:
    """Names and job titles drawn from Faker (keeping its per-locale frequencies), then reused."""

    first: dict[str, list[str]] = field(default_factory=dict)
    last: dict[str, list[str]] = field(default_factory=dict)
    jobs: dict[str, list[str]] = field(default_factory=dict)
    companies: dict[str, Faker] = field(default_factory=dict)

    @classmethod
    def make(cls, seed: int) -> Pools:
        pools = cls()
        for i, lang in enumerate(sorted(LANGS)):
            fk = Faker(LANGS[lang][0])
            fk.seed_instance(seed * 1000 + i)
            pools.first[lang] = [fk.first_name() for _ in range(4000)]
            pools.last[lang] = [fk.last_name() for _ in range(4000)]
            pools.jobs[lang] = [fk.job() for _ in range(1000)]
            pools.companies[lang] = fk
        return pools


def ascii_slug(text: str, sep: str) -> str:
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    words = ["".join(ch for ch in w if ch.isalnum()) for w in norm.replace("-", " ").split()]
    return sep.join(w for w in words if w)


def plan_occupiers(spec: Spec, pools: Pools) -> list[OccupierPlan]:
    """Names, sites, domains and sizes of every occupier, in creation order."""
    spec.validate()
    rng = random.Random(spec.seed)
    codes = [code for code, *_ in SITES]
    names: set[str] = set()
    domains: set[str] = set()
    plans: list[OccupierPlan] = []
    for _ in range(spec.occupiers):
        primary = rng.choices(codes, [35, 15, 20, 12, 18])[0]
        lang = SITE_LANG[primary]
        name = pools.companies[lang].company()
        while name in names:
            name = f"{name} {rng.choice(['Holdings', 'Europe', 'Services', 'Group', 'Partners', 'Labs'])}"
        names.add(name)
        others = [c for c in codes if c != primary]
        extra = rng.choices([0, 1, 2, 4], [70, 20, 8, 2])[0]
        site_codes = [primary, *rng.sample(others, extra)]
        base = ascii_slug(name, "-")[:40].strip("-") or "company"
        tld = LANGS[lang][2] if rng.random() < 0.6 else ".com"
        occ_domains = []
        for variant in range(2 if rng.random() < 0.15 else 1):
            domain = base + tld if variant == 0 else base + "-group.com"
            n = 2
            while domain in domains:
                domain = f"{base}{n}{tld}"
                n += 1
            domains.add(domain)
            occ_domains.append(domain)
        plans.append(OccupierPlan(name=name, lang=lang, site_codes=site_codes, domains=occ_domains, size=0))
    _assign_sizes(spec, plans, rng)
    return plans


def _assign_sizes(spec: Spec, plans: list[OccupierPlan], rng: random.Random) -> None:
    big = set(rng.sample(range(len(plans)), spec.big_occupiers))
    rest = [i for i in range(len(plans)) if i not in big]
    budget = spec.users - spec.big_occupiers * spec.big_size
    cap = max(3, int(spec.big_size * 0.9))
    weights = [rng.lognormvariate(0.0, 1.0) for _ in rest]
    scale = budget / sum(weights)
    sizes = [min(cap, max(3, int(w * scale))) for w in weights]
    drift = budget - sum(sizes)
    order = sorted(range(len(rest)), key=lambda k: sizes[k])  # settle the remainder on the small ones
    k = 0
    while drift != 0:
        j = order[k % len(order)]
        step = 1 if drift > 0 else -1
        if 3 <= sizes[j] + step <= cap:
            sizes[j] += step
            drift -= step
        k += 1
    for i in big:
        plans[i].size = spec.big_size
        plans[i].big = True
    for i, size in zip(rest, sizes, strict=True):
        plans[i].size = size


class _Derived:
    """What refresh_derived reads and writes, without the ORM's attribute machinery."""

    __slots__ = ("email", "first_name", "last_name", "search_text", "sort_key")

    def __init__(self) -> None:
        self.first_name = self.last_name = self.email = self.sort_key = self.search_text = ""


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randrange(10**n)).zfill(n)


def iter_user_batches(
    spec: Spec,
    pools: Pools,
    plans: list[OccupierPlan],
    *,
    operator_id: int,
    occupier_ids: list[int],
    batch: int = 5000,
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows (tuples in COLUMNS order) for every user, ``batch`` at a time, in insertion order."""
    rng = random.Random(spec.seed + 1)
    langs = sorted(LANGS)
    weights = [LANGS[lang][1] for lang in langs]
    slugs: dict[str, str] = {}
    derived = _Derived()
    refresh = OccupierUser.refresh_derived  # the model's own rule for sort_key and search_text

    def slug(text: str, sep: str) -> str:
        key = sep + text
        value = slugs.get(key)
        if value is None:
            value = slugs[key] = ascii_slug(text, sep)
        return value

    order = list(range(len(plans)))
    rng.shuffle(order)
    pending: list[tuple[Any, ...]] = []
    for start in range(0, len(order), 50):
        wave: list[tuple[Any, ...]] = []
        for idx in order[start : start + 50]:
            plan = plans[idx]
            occupier_id = occupier_ids[idx]
            seen: dict[str, int] = {}
            for _ in range(plan.size):
                lang = plan.lang if rng.random() < 0.6 else rng.choices(langs, weights)[0]
                first = rng.choice(pools.first[lang])
                last = rng.choice(pools.last[lang])
                style = rng.random()
                f_slug, l_slug = slug(first, "-"), slug(last, "")
                if style < 0.70:
                    local = f"{f_slug}.{l_slug}"
                elif style < 0.85:
                    local = f"{f_slug[:1]}.{l_slug}"
                elif style < 0.95:
                    local = f"{f_slug}{l_slug}"
                else:
                    local = f"{f_slug}_{l_slug}"
                domain = plan.domains[0] if len(plan.domains) == 1 or rng.random() < 0.85 else plan.domains[1]
                email_key = f"{local}@{domain}"
                if email_key in seen:  # namesakes: john.smith2@, john.smith3@, ...
                    k = seen[email_key]
                    while f"{local}{k}@{domain}" in seen:
                        k += 1
                    seen[email_key] = k + 1
                    email_key = f"{local}{k}@{domain}"
                seen[email_key] = 2
                email = email_key
                if rng.random() < 0.1:  # some people type their address capitalised
                    at = email.index("@")
                    email = ".".join(p[:1].upper() + p[1:] for p in email[:at].split(".")) + email[at:]
                derived.first_name, derived.last_name, derived.email = first, last, email
                refresh(derived)  # a duck-typed holder: the model's rule, without ORM overhead
                site = plan.site_codes[0] if rng.random() < 0.8 else rng.choice(plan.site_codes)
                mobile = None
                if rng.random() < 0.85:
                    prefix, n = MOBILE_PREFIX[lang]
                    mobile = prefix + _digits(rng, n)
                direct = None
                if rng.random() < 0.6:
                    prefix, n = LANDLINE_PREFIX[site]
                    direct = prefix + _digits(rng, n)
                created = EPOCH + timedelta(seconds=rng.randrange(SPAN_SECONDS))
                wave.append(
                    (
                        operator_id,
                        occupier_id,
                        first,
                        last,
                        email,
                        email_key,
                        rng.choice(pools.jobs[lang]) if rng.random() < 0.8 else None,
                        mobile,
                        direct,
                        lang,
                        f"E{_digits(rng, 6)}" if rng.random() < 0.3 else None,
                        None,
                        f"{rng.getrandbits(64):016x}" if rng.random() < 0.2 else None,
                        rng.choices(*STATUSES)[0],
                        derived.sort_key,
                        derived.search_text,
                        None,
                        None,
                        1,
                        created,
                        created,
                    )
                )
        rng.shuffle(wave)
        pending.extend(wave)
        while len(pending) >= batch:
            yield pending[:batch]
            del pending[:batch]
    if pending:
        yield pending


def total_users(plans: list[OccupierPlan]) -> int:
    return sum(p.size for p in plans)


def log_scale_check(plans: list[OccupierPlan]) -> dict[str, float]:
    sizes = sorted(p.size for p in plans)
    return {
        "min": sizes[0],
        "median": sizes[len(sizes) // 2],
        "p90": sizes[math.ceil(len(sizes) * 0.9) - 1],
        "max": sizes[-1],
    }
