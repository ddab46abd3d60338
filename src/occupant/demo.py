"""Demo data: an operator with five sites, tens of occupiers and thousands of users.

Everything goes through the service actions (create_site, create_group, create_occupier, create_user,
deactivate_user), so demo data obeys the same rules as real data. The output is deterministic for a
seed. One transaction per occupier keeps memory flat and lets a stopped load keep what it finished.
"""

from __future__ import annotations

import html
import random
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import phonenumbers
from faker import Faker
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from occupant.authz.actor import Actor
from occupant.groups import service as groups
from occupant.groups.models import AccessGroup
from occupant.kit.db import transaction
from occupant.kit.errors import OccupantError
from occupant.occupiers import service as occupiers
from occupant.occupiers.models import Occupier
from occupant.occupiers.schemas import OccupierCreate
from occupant.operators.models import Operator
from occupant.sites import service as sites
from occupant.sites.models import Site
from occupant.sites.schemas import SiteCreate
from occupant.users import service as users
from occupant.users.models import OccupierUser
from occupant.users.schemas import UserCreate

DEMO_OPERATOR_NAME = "Demo Workspace"


@dataclass(frozen=True)
class DemoSite:
    code: str
    name: str
    country: str
    language: str
    locale: str
    landline_prefix: str  # E.164 prefix of the building's direct lines
    landline_digits: int
    tlds: tuple[str, ...]


SITES = (
    DemoSite("LON01", "London King's Cross", "GB", "en", "en_GB", "+44207", 7, (".co.uk", ".com")),
    DemoSite("PAR01", "Paris Opéra", "FR", "fr", "fr_FR", "+331", 8, (".fr", ".com")),
    DemoSite("BER01", "Berlin Mitte", "DE", "de", "de_DE", "+4930", 8, (".de", ".com")),
    DemoSite("MAD01", "Madrid Castellana", "ES", "es", "es_ES", "+3491", 7, (".es", ".com")),
    DemoSite("AMS01", "Amsterdam Zuidas", "NL", "nl", "nl_NL", "+3120", 7, (".nl", ".com")),
)
SITE_CODES = tuple(s.code for s in SITES)
# How often an occupier's main office is at each site (London is the biggest building).
SITE_WEIGHTS = (35, 15, 20, 12, 18)
LANGUAGE_WEIGHTS = {"en": 40, "fr": 15, "de": 20, "es": 10, "nl": 15}
NAS_PER_SITE = 8
SITE_GROUPS = ("Front door", "Car park", "Bike store", "Gym")
OCCUPIER_GROUPS = ("Finance", "Engineering", "Leadership team", "Sales", "Reception", "Late access")
LEGAL_SUFFIXES = {
    "ltd",
    "plc",
    "llc",
    "inc",
    "group",
    "and",
    "sons",
    "gmbh",
    "co",
    "kg",
    "kgaa",
    "ag",
    "ev",
    "ohg",
    "gbr",
    "sa",
    "sarl",
    "sas",
    "snc",
    "sl",
    "scoop",
    "hnos",
    "nv",
    "bv",
    "vof",
    "cv",
    "familia",
}
_ASCII_FOLD = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "ae",
        "ø": "o",
        "Ø": "o",
        "œ": "oe",
        "Œ": "oe",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
    }
)


class DemoAlreadyLoaded(OccupantError):
    code = "demo_present"
    status = 409
    default_message = "Demo data is already loaded."


@dataclass
class DemoResult:
    operator_id: int
    operator_name: str
    sites: list[str] = field(default_factory=list)
    occupiers: int = 0
    users: int = 0
    deactivated: int = 0
    groups: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "operator_id": self.operator_id,
            "operator_name": self.operator_name,
            "sites": self.sites,
            "occupiers": self.occupiers,
            "users": self.users,
            "deactivated_users": self.deactivated,
            "groups": self.groups,
            "seconds": round(self.seconds, 2),
        }


def ascii_slug(text: str, sep: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
    folded = folded.encode("ascii", "ignore").decode("ascii").lower()
    words = ["".join(ch for ch in w if ch.isalnum()) for w in folded.replace("-", " ").split()]
    return sep.join(w for w in words if w)


class _Generator:
    """Deterministic people, companies and phone numbers for one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fakers: dict[str, Faker] = {}
        for i, site in enumerate(SITES):
            fk = Faker(site.locale)
            fk.seed_instance(seed * 1000 + i)
            self.fakers[site.language] = fk
        self.site_by_language = {s.language: s for s in SITES}

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def _valid(self, number: str) -> bool:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))

    def mobile(self, country: str) -> str:
        for _ in range(50):
            if country == "GB":
                number = "+447" + self.rng.choice("45789") + self.digits(8)
            elif country == "FR":
                number = (
                    "+336" + self.digits(8)
                    if self.rng.random() < 0.7
                    else "+337" + self.rng.choice("3456789") + self.digits(7)
                )
            elif country == "DE":
                prefix = self.rng.choice(
                    [
                        "151",
                        "152",
                        "157",
                        "160",
                        "162",
                        "170",
                        "171",
                        "172",
                        "175",
                        "176",
                        "177",
                        "178",
                        "179",
                    ]
                )
                number = "+49" + prefix + self.digits(8 if prefix.startswith("15") else 7)
            elif country == "ES":
                number = "+346" + self.digits(8)
            else:
                number = "+316" + self.rng.choice("12345") + self.digits(7)
            if self._valid(number):
                return number
        raise RuntimeError(f"no valid mobile number for {country}")  # pragma: no cover

    def landline(self, site: DemoSite) -> str | None:
        for _ in range(50):
            number = site.landline_prefix + self.digits(site.landline_digits)
            if self._valid(number):
                return number
        return None  # pragma: no cover

    def company(self, site: DemoSite, taken: set[str]) -> str:
        fk = self.fakers[site.language]
        for _ in range(1000):
            name = html.unescape(fk.company()).strip()
            if name.lower() not in taken:
                return name
        raise RuntimeError("ran out of company names")  # pragma: no cover

    def domain(self, name: str, site: DemoSite, taken: set[str]) -> str:
        words = [w for w in ascii_slug(name, " ").split() if w not in LEGAL_SUFFIXES]
        stem = "-".join(words[:2]) or "company"
        tld = site.tlds[0] if self.rng.random() < 0.7 else site.tlds[1]
        domain, n = f"{stem}{tld}", 2
        while domain in taken:
            domain, n = f"{stem}{n}{tld}", n + 1
        return domain

    def language(self, home: DemoSite) -> str:
        if self.rng.random() < 0.7:
            return home.language
        langs = list(LANGUAGE_WEIGHTS)
        return self.rng.choices(langs, [LANGUAGE_WEIGHTS[lang] for lang in langs])[0]


@dataclass
class _SiteInfo:
    site_id: int
    demo: DemoSite
    group_ids: dict[str, int]


def demo_present(session: Session, operator_id: int) -> str | None:
    """The code of a demo site that already exists for the operator, if any."""
    return session.scalar(
        select(Site.code)
        .where(Site.operator_id == operator_id, Site.code.in_(SITE_CODES))
        .order_by(Site.code)
    )


def _operator(session: Session, operator_id: int | None) -> Operator:
    if operator_id is not None:
        operator = session.get(Operator, operator_id)
        if operator is None:
            raise OccupantError(f"There is no operator {operator_id}.")
        return operator
    operator = session.scalars(select(Operator).order_by(Operator.id)).first()
    if operator is None:  # an empty database: the first admin, created later, joins this operator
        operator = Operator(name=DEMO_OPERATOR_NAME)
        session.add(operator)
        session.flush()
    return operator


def _ensure_sites(session: Session, actor: Actor, result: DemoResult) -> list[_SiteInfo]:
    infos = []
    for demo in SITES:
        site = session.scalars(
            select(Site).where(Site.operator_id == actor.operator_id, Site.code == demo.code)
        ).first()
        if site is None:
            nas = [f"{demo.code}-AP{n:02d}" for n in range(1, NAS_PER_SITE + 1)]
            site = sites.create_site(
                session,
                SiteCreate(code=demo.code, name=demo.name, country=demo.country, nas_identifiers=nas),
                actor=actor,
            )
        result.sites.append(site.code)
        existing = {
            g.name: g.id for g in session.scalars(select(AccessGroup).where(AccessGroup.site_id == site.id))
        }
        group_ids = {}
        for label in SITE_GROUPS:
            name = f"{demo.code} {label}"
            if name not in existing:
                existing[name] = groups.create_group(session, actor=actor, name=name, site_id=site.id).id
                result.groups += 1
            group_ids[label] = existing[name]
        infos.append(_SiteInfo(site.id, demo, group_ids))
    return infos


@dataclass
class _UserPlan:
    data: dict[str, object]
    group_keys: list[str]  # "<site code>:<label>" for a site's group, "own:<n>" for the occupier's own
    deactivate: bool


@dataclass
class _OccupierPlan:
    name: str
    home: str
    details: dict[str, object]
    own_groups: list[str]
    users: list[_UserPlan]


def load_demo(
    factory: sessionmaker[Session],
    *,
    occupiers_count: int = 30,
    users_per_occupier: int = 150,
    seed: int = 42,
    operator_id: int | None = None,
    force: bool = False,
    threads: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_occupier: Callable[[str, int], None] | None = None,
) -> DemoResult:
    """Load the demo: five sites with door-access groups, occupiers with access to all five, their users.

    Raises DemoAlreadyLoaded when a demo site exists and ``force`` is not set (with ``force`` the
    existing sites are reused and more occupiers are added). The data is planned first (the same for
    a seed), then each occupier is loaded in its own transaction, several at once on PostgreSQL.
    ``on_occupier(name, users)`` is called after each occupier's transaction commits.
    """
    started = time.monotonic()
    with transaction(factory) as session:
        operator = _operator(session, operator_id)
        actor = Actor.system(operator.id)
        found = demo_present(session, operator.id)
        if found and not force:
            raise DemoAlreadyLoaded(
                f"Demo data is already loaded for {operator.name} (site {found} exists); "
                "use --force to add more occupiers and users."
            )
        result = DemoResult(operator_id=operator.id, operator_name=operator.name)
        site_infos = _ensure_sites(session, actor, result)
        taken_names = {
            n.lower()
            for n in session.scalars(select(Occupier.name).where(Occupier.operator_id == operator.id))
        }
        used_emails = set(
            session.scalars(select(OccupierUser.email_key).where(OccupierUser.operator_id == operator.id))
        )
        dialect = session.get_bind().dialect.name
    gen = _Generator(seed)
    plans = [
        _plan_occupier(gen, users_per_occupier, taken_names, used_emails) for _ in range(occupiers_count)
    ]
    if on_start:
        on_start(sum(len(p.users) for p in plans))

    group_ids = {f"{s.demo.code}:{label}": gid for s in site_infos for label, gid in s.group_ids.items()}
    site_ids = {s.demo.code: s.site_id for s in site_infos}
    lock = threading.Lock()

    def load(plan: _OccupierPlan) -> None:
        with transaction(factory) as session:
            deactivated = _load_occupier(session, actor, plan, site_ids, group_ids)
        with lock:
            result.occupiers += 1
            result.users += len(plan.users)
            result.deactivated += deactivated
            result.groups += len(plan.own_groups)
            if on_occupier:
                on_occupier(plan.name, len(plan.users))

    # SQLite has one writer at a time; PostgreSQL loads occupiers side by side.
    workers = 1 if dialect == "sqlite" else max(1, threads or 3)
    if workers == 1:
        for plan in plans:
            load(plan)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="demo") as pool:
            for future in [pool.submit(load, plan) for plan in plans]:
                future.result()
    result.seconds = time.monotonic() - started
    return result


def _plan_occupier(
    gen: _Generator, n_users: int, taken_names: set[str], used_emails: set[str]
) -> _OccupierPlan:
    rng = gen.rng
    home = rng.choices(SITES, SITE_WEIGHTS)[0]
    name = gen.company(home, taken_names)
    taken_names.add(name.lower())
    domain = gen.domain(name, home, {e.rsplit("@", 1)[1] for e in used_emails})
    telephony = rng.random() < 0.4
    details: dict[str, object] = {
        "telephony_managed": telephony,
        "portal_offered": rng.random() < 0.9,
        "mobile_app_offered": rng.random() < 0.7,
        "default_wifi_device_limit": rng.choice([2, 2, 3, 3, 4, 5]),
    }
    own_groups = rng.sample(OCCUPIER_GROUPS, rng.randint(2, 4)) if rng.random() < 0.6 else []
    employee_prefix = rng.choice(["E", "EMP", "", None, None])
    next_employee = rng.randint(1000, 5000)

    users_plan = []
    for _ in range(n_users):
        language = gen.language(home)
        person_site = gen.site_by_language[language]
        fk = gen.fakers[language]
        first, last = fk.first_name(), fk.last_name()
        local = f"{ascii_slug(first, '-')}.{ascii_slug(last, '')}".strip(".") or "user"
        email, k = f"{local}@{domain}", 2
        while email in used_emails:  # namesakes: anna.smith2@, anna.smith3@, ...
            email, k = f"{local}{k}@{domain}", k + 1
        used_emails.add(email)
        mobile_country = person_site.country if rng.random() < 0.9 else rng.choice(SITES).country
        direct = gen.landline(home) if rng.random() < (0.9 if telephony else 0.35) else None
        employee_number = None
        if employee_prefix is not None:
            employee_number, next_employee = (
                f"{employee_prefix}{next_employee}",
                next_employee + rng.randint(1, 3),
            )
        data: dict[str, object] = {
            "first_name": first,
            "last_name": last,
            "email": email,
            "job_title": html.unescape(fk.job())[:200],
            "mobile": gen.mobile(mobile_country),
            "direct_line": direct,
            "language": language,
            "employee_number": employee_number,
        }
        users_plan.append(_UserPlan(data, _pick_groups(rng, home, len(own_groups)), rng.random() < 0.03))
    return _OccupierPlan(name=name, home=home.code, details=details, own_groups=own_groups, users=users_plan)


def _pick_groups(rng: random.Random, home: DemoSite, own_count: int) -> list[str]:
    picked = []
    if rng.random() < 0.85:
        picked.append(f"{home.code}:Front door")
    for label, chance in (("Car park", 0.15), ("Bike store", 0.2), ("Gym", 0.3)):
        if rng.random() < chance:
            picked.append(f"{home.code}:{label}")
    if rng.random() < 0.15:
        picked.append(f"{rng.choice(SITES).code}:Front door")
    if own_count and rng.random() < 0.5:
        picked.append(f"own:{rng.randrange(own_count)}")
    return sorted(set(picked))


def _load_occupier(
    session: Session,
    actor: Actor,
    plan: _OccupierPlan,
    site_ids: dict[str, int],
    site_group_ids: dict[str, int],
) -> int:
    """Create one occupier, its own groups and its users; returns how many users were deactivated."""
    occupier = occupiers.create_occupier(
        session,
        OccupierCreate.model_validate(
            {
                "name": plan.name,
                "site_ids": list(site_ids.values()),
                "primary_site_id": site_ids[plan.home],
                **plan.details,
            }
        ),
        actor=actor,
    )
    group_ids = dict(site_group_ids)
    for n, group_name in enumerate(plan.own_groups):
        group_ids[f"own:{n}"] = groups.create_group(
            session, actor=actor, name=group_name, occupier_id=occupier.id
        ).id
    deactivated = 0
    for item in plan.users:
        data = UserCreate.model_validate({**item.data, "group_ids": [group_ids[k] for k in item.group_keys]})
        user = users.create_user(session, occupier, data, actor=actor)
        if item.deactivate:
            users.deactivate_user(session, user, actor=actor)
            deactivated += 1
    return deactivated
