"""Benchmark: Access-Request throughput and latency through FreeRADIUS, Occupant's schema against stock.

Two PostgreSQL databases hold the same 100,000 credentials (username = email, NT-Password = the NT hash
of a per-user password):

- **occupant** (``occupant_bench_radius``): Occupant's schema from its migrations; operator, sites and
  occupiers made with the service actions; users, Wi-Fi accounts and their RADIUS rows bulk-loaded with
  the rows ``radius.sync`` writes (NT-Password and Simultaneous-Use in radcheck, a home group and guest
  groups per user in radusergroup, the site groups' NAS-Identifier regex and VLANs);
- **stock** (``freeradius_bench_stock``): FreeRADIUS's own ``schema.sql`` for PostgreSQL with one
  ``NT-Password :=`` radcheck row per user, no groups.

Each side gets its own ``radiusd`` with the same configuration rendered by ``occupant.radius.config``
(same server, thread pool, modules, SQL connection pool). The stock side then swaps in FreeRADIUS's
stock ``queries.conf`` for PostgreSQL and a stock-style virtual server (authorize: eap, mschap, sql,
pap; session and post-auth: sql; groups read the stock way, ``read_groups = yes``), i.e. FreeRADIUS's
default SQL policy without Occupant's: no lower-casing, no site/VLAN check, no device limit. Debian's
full default site runs more modules (preprocess, files, expiration, ...), so this baseline is, if
anything, faster than the real stock one.

Load: PAP Access-Requests, one per distinct user (NAS-Identifier of the user's homesite), ``inflight``
outstanding at once, from a small sender that pre-encodes every packet so that it costs the shared CPUs
as little as possible; latency is send-to-answer per request. Rounds alternate the two servers so that
machine noise (other processes) falls on both. ``radclient -p 32`` over the same requests gives a second
throughput figure, comparable with the one in the issue.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import re
import selectors
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench import OUT
from bench.backends import PgServer, pg_server
from bench.build import log
from bench.report import Row, percentile

OCCUPANT_DB = "occupant_bench_radius"
STOCK_DB = "freeradius_bench_stock"
STOCK_SQL = Path("/etc/freeradius/3.0/mods-config/sql/main/postgresql")
SECRET = "bench-radius-secret-0123456789"
DATA_VERSION = 5  # bump when the rows below change
SITES = 8
OCCUPIERS = 100
NAS_PER_SITE = 4


# --- the data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    nas: str  # an access point at the user's homesite


def occupier_sites(o: int) -> list[int]:
    """Site numbers (1-based) occupier ``o`` can use: two, a third of occupiers three."""
    numbers = [o % SITES + 1, (o + 1) % SITES + 1] + ([(o + 3) % SITES + 1] if o % 3 == 0 else [])
    return numbers


def people(users: int) -> list[Person]:
    """The same users on both sides: deterministic usernames, passwords and homesite access points."""
    crowd = []
    for i in range(users):
        o = i % OCCUPIERS
        sites = occupier_sites(o)
        home = sites[(i // OCCUPIERS) % len(sites)]
        crowd.append(
            Person(
                username=f"user{i:06d}@tenant{o:03d}.bench.example",
                password=f"pw{i:06d}-Bench",
                nas=f"ap-s{home:02d}-{i % NAS_PER_SITE + 1}",
            )
        )
    return crowd


def _nt_hash(password: str) -> str:
    from occupant.wifi.passwords import nt_hash

    return nt_hash(password)


def _schema_head() -> str:
    """The newest migration: a database built by older migrations is rebuilt."""
    from alembic.script import ScriptDirectory

    from occupant.kit.migrate import alembic_config

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def _cached(server: PgServer, database: str, label: str) -> bool:
    return server.exists(database) and server.comment(database) == label


def build_occupant(server: PgServer, users: int, *, rebuild: bool = False) -> dict[str, Any]:
    """Occupant's database with ``users`` ACTIVE Wi-Fi accounts; reused while its label matches."""
    label = f"occupant radius bench v{DATA_VERSION} users={users} schema={_schema_head()}"
    if not rebuild and _cached(server, OCCUPANT_DB, label):
        return {"built": False}
    from sqlalchemy import select

    from occupant.authz.actor import Actor, ActorKind, Role
    from occupant.kit import migrate
    from occupant.kit.db import make_engine, make_session_factory, transaction
    from occupant.occupiers.schemas import OccupierCreate
    from occupant.occupiers.service import create_occupier
    from occupant.operators.models import Operator
    from occupant.radius import sync
    from occupant.sites.models import Site
    from occupant.sites.schemas import SiteCreate
    from occupant.sites.service import create_site

    started = time.perf_counter()
    server.recreate(OCCUPANT_DB)
    engine = make_engine(server.url(OCCUPANT_DB))
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        operator = Operator(name="Bench Workspaces", wifi_max_devices=5)
        session.add(operator)
        session.flush()
        actor = Actor(kind=ActorKind.SYSTEM, id=None, operator_id=operator.id, role=Role.OPERATOR_ADMIN)
        sites = [
            create_site(
                session,
                SiteCreate(
                    code=f"S{n:02d}",
                    name=f"Site {n}",
                    country="GB",
                    nas_identifiers=[f"ap-s{n:02d}-{k}" for k in range(1, NAS_PER_SITE + 1)],
                ),
                actor=actor,
            )
            for n in range(1, SITES + 1)
        ]
        occupier_ids: list[int] = []
        for o in range(OCCUPIERS):
            own = [sites[n - 1] for n in occupier_sites(o)]
            occupier = create_occupier(
                session,
                OccupierCreate(name=f"Tenant {o:03d}", site_ids=[s.id for s in own]),
                actor=actor,
            )
            occupier_ids.append(occupier.id)
        operator_id = operator.id
    with factory() as session:
        site_list = list(session.scalars(select(Site).order_by(Site.code)))
        session.expunge_all()
    by_nas = {nas: site for site in site_list for nas in site.nas_identifiers}
    by_number = {int(site.code[1:]): site for site in site_list}
    crowd = people(users)
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    conn = psycopg.connect(server.dsn(OCCUPANT_DB))
    try:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY occupier_users (operator_id, occupier_id, first_name, last_name, email, email_key, "
                "language, status, sort_key, search_text, version_id, created_at, updated_at) FROM STDIN"
            ) as copy:
                for i, p in enumerate(crowd):
                    copy.write_row(
                        (
                            operator_id,
                            occupier_ids[i % OCCUPIERS],
                            f"First{i}",
                            f"Last{i}",
                            p.username,
                            p.username,
                            "en",
                            "ACTIVE",
                            f"last{i} first{i}",
                            f"first{i} last{i} {p.username}",
                            1,
                            now,
                            now,
                        )
                    )
            cur.execute("SELECT email_key, id, occupier_id FROM occupier_users")
            ids = {key: (uid, occ) for key, uid, occ in cur.fetchall()}
            hashes = [_nt_hash(p.password) for p in crowd]
            with cur.copy(
                "COPY wifi_accounts (operator_id, occupier_id, user_id, username, status, homesite_id, "
                "device_limit, nt_hash, password_changed_at, provisioned_at, suspended_with_user, "
                "version_id, created_at, updated_at) FROM STDIN"
            ) as copy:
                for p, h in zip(crowd, hashes, strict=True):
                    uid, occ = ids[p.username]
                    home = by_nas[p.nas]
                    copy.write_row(
                        (
                            operator_id,
                            occ,
                            uid,
                            p.username,
                            "ACTIVE",
                            home.id,
                            2,
                            h,
                            now,
                            now,
                            False,
                            1,
                            now,
                            now,
                        )
                    )
            with cur.copy("COPY radcheck (username, attribute, op, value) FROM STDIN") as copy:
                for p, h in zip(crowd, hashes, strict=True):
                    for row in sync.credential_rows(p.username, h, 2):
                        copy.write_row((row["username"], row["attribute"], row["op"], row["value"]))
            with cur.copy("COPY radusergroup (username, groupname, priority) FROM STDIN") as copy:
                for i, p in enumerate(crowd):
                    own = [by_number[n] for n in occupier_sites(i % OCCUPIERS)]
                    for g in sync.group_rows(p.username, by_nas[p.nas], own):
                        copy.write_row((g["username"], g["groupname"], g["priority"]))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    finally:
        conn.close()
        engine.dispose()
    server.set_comment(OCCUPANT_DB, label)
    return {"built": True, "seconds": round(time.perf_counter() - started, 1)}


def build_stock(server: PgServer, users: int, *, rebuild: bool = False) -> dict[str, Any]:
    """FreeRADIUS's stock PostgreSQL schema with the same users' NT-Password rows (no groups)."""
    schema = STOCK_SQL / "schema.sql"
    label = f"stock radius bench v{DATA_VERSION} users={users} schema={_sha(schema)}"
    if not rebuild and _cached(server, STOCK_DB, label):
        return {"built": False}
    started = time.perf_counter()
    server.recreate(STOCK_DB)
    with psycopg.connect(server.dsn(STOCK_DB)) as conn:
        conn.execute(schema.read_text())
        with (
            conn.cursor() as cur,
            cur.copy("COPY radcheck (username, attribute, op, value) FROM STDIN") as copy,
        ):
            for p in people(users):
                copy.write_row((p.username, "NT-Password", ":=", _nt_hash(p.password)))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    server.set_comment(STOCK_DB, label)
    return {"built": True, "seconds": round(time.perf_counter() - started, 1)}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


# --- the servers ----------------------------------------------------------------------------------

STOCK_SITE = """\
# Stock-style policy for the comparison: FreeRADIUS's default SQL authorisation, nothing of Occupant's.
server default {
listen {
	type = auth
	ipaddr = 127.0.0.1
	port = %(auth)d
}
listen {
	type = acct
	ipaddr = 127.0.0.1
	port = %(acct)d
}
authorize {
	eap {
		ok = return
		updated = return
	}
	mschap
	sql
	pap
}
authenticate {
	Auth-Type PAP {
		pap
	}
	Auth-Type MS-CHAP {
		mschap
	}
	eap
}
session {
	sql
}
accounting {
	sql
}
post-auth {
	sql
	Post-Auth-Type REJECT {
		sql
		eap
	}
}
}
"""


@dataclass
class Radiusd:
    name: str
    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _free_udp_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_radiusd(name: str, database_url: str, *, stock: bool) -> Radiusd:
    from occupant.radius.config import RadiusClient, RadiusOptions, render

    directory = OUT / "radius" / name
    shutil.rmtree(directory, ignore_errors=True)
    auth, acct = _free_udp_ports(2)
    render(
        directory,
        RadiusOptions(
            database_url=database_url,
            auth_port=auth,
            acct_port=acct,
            clients=[RadiusClient(address="127.0.0.1", secret=SECRET, name="bench")],
            reject_delay=0,
        ),
    )
    if stock:
        shutil.copyfile(STOCK_SQL / "queries.conf", directory / "sql" / "queries.conf")
        (directory / "sites" / "default").write_text(STOCK_SITE % {"auth": auth, "acct": acct})
        sql_module = directory / "mods" / "sql"  # groups read the stock way (its default)
        sql_module.write_text(sql_module.read_text().replace("read_groups = no", "read_groups = yes"))
    log_path = directory / "radiusd.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            ["freeradius", "-f", "-l", "stdout", "-d", str(directory)], stdout=out, stderr=subprocess.STDOUT
        )
    server = Radiusd(name, directory, auth, process, log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if "Ready to process requests" in text:
            return server
        if process.poll() is not None:
            break
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"FreeRADIUS ({name}) did not start:\n{log_path.read_text(errors='replace')[-3000:]}")


@contextmanager
def servers(server: PgServer) -> Iterator[dict[str, Radiusd]]:
    started: dict[str, Radiusd] = {}
    try:
        started["stock"] = start_radiusd("stock", server.url(STOCK_DB), stock=True)
        started["occupant"] = start_radiusd("occupant", server.url(OCCUPANT_DB), stock=False)
        yield started
    finally:
        for radiusd in started.values():
            radiusd.stop()


# --- the load -------------------------------------------------------------------------------------


def _attribute(kind: int, value: bytes) -> bytes:
    return bytes((kind, len(value) + 2)) + value


def _hide_password(password: bytes, authenticator: bytes, secret: bytes) -> bytes:
    """RFC 2865 5.2: the password padded to 16 bytes, XORed with an MD5 chain keyed by the secret."""
    padded = password + b"\0" * (-len(password) % 16 or (16 if not password else 0))
    out, last = b"", authenticator
    for i in range(0, len(padded), 16):
        key = hashlib.md5(secret + last).digest()
        block = bytes(a ^ b for a, b in zip(padded[i : i + 16], key, strict=True))
        out += block
        last = block
    return out


def access_request(p: Person, secret: bytes, n: int) -> bytes:
    """An Access-Request without its id and Message-Authenticator (both set when sent, see ``_stamp``):
    PAP, from an access point of the user's homesite."""
    authenticator = os.urandom(16)
    mac = f"02-00-{n >> 24 & 255:02X}-{n >> 16 & 255:02X}-{n >> 8 & 255:02X}-{n & 255:02X}"
    attrs = (
        _attribute(1, p.username.encode())
        + _attribute(2, _hide_password(p.password.encode(), authenticator, secret))
        + _attribute(4, socket.inet_aton("127.0.0.1"))
        + _attribute(32, p.nas.encode())
        + _attribute(31, mac.encode())
        + _attribute(61, struct.pack("!I", 19))  # NAS-Port-Type = Wireless-802.11
        + _attribute(80, bytes(16))  # Message-Authenticator, last: its HMAC goes in the final 16 bytes
    )
    return struct.pack("!BBH", 1, 0, 20 + len(attrs)) + authenticator + attrs


def _stamp(template: bytes, ident: int, secret: bytes) -> bytes:
    """The packet with its id and its Message-Authenticator (HMAC-MD5 over the packet, RFC 3579 3.2)."""
    data = bytearray(template)
    data[1] = ident
    data[-16:] = hmac.new(secret, bytes(data), hashlib.md5).digest()
    return bytes(data)


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    lost: int = 0
    bad: int = 0
    vlans: dict[str, int] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return self.accepted + self.rejected

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


def _reply_vlan(data: bytes) -> str | None:
    pos = 20
    while pos + 2 <= len(data):
        kind, length = data[pos], data[pos + 1]
        if length < 2:
            return None
        if kind == 81:  # Tunnel-Private-Group-Id: a tag byte, then the value
            value = data[pos + 2 : pos + length]
            return (value[1:] if value and value[0] < 0x20 else value).decode(errors="replace")
        pos += length
    return None


def send(
    port: int,
    packets: list[bytes],
    *,
    inflight: int,
    timeout: float = 3.0,
    vlans: bool = False,
    max_lost: int = 100,
) -> LoadResult:
    """Keep ``inflight`` requests outstanding (one UDP socket each) until every packet is answered or lost."""
    secret = SECRET.encode()
    selector = selectors.DefaultSelector()
    sockets = []
    for _ in range(min(inflight, len(packets))):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        sockets.append(s)
    # per socket: [packet index, sent at, id, request authenticator]
    slots: dict[socket.socket, list[Any]] = {}
    ids = dict.fromkeys(sockets, 0)
    result = LoadResult(seconds=0.0)
    queue = iter(range(len(packets)))
    perf = time.perf_counter

    def fire(s: socket.socket) -> bool:
        index = next(queue, None)
        if index is None:
            selector.unregister(s)
            slots.pop(s, None)
            return False
        ident = ids[s] = (ids[s] + 1) & 255
        data = _stamp(packets[index], ident, secret)
        slots[s] = [index, perf(), ident, data[4:20]]
        s.send(data)
        return True

    started = perf()
    for s in sockets:
        selector.register(s, selectors.EVENT_READ)
        fire(s)
    while slots:
        events = selector.select(timeout)
        if not events:  # nothing for `timeout` seconds: the outstanding ones are lost
            result.lost += len(slots)
            if result.lost >= max_lost:  # the server is not answering: stop here
                break
            for s in list(slots):
                fire(s)
            continue
        now = perf()
        for key, _ in events:
            s = key.fileobj  # type: ignore[assignment]
            try:
                data = s.recv(4096)
            except OSError:
                result.bad += 1
                fire(s)
                continue
            slot = slots.get(s)
            if slot is None or len(data) < 20 or data[1] != slot[2]:
                continue  # a late answer to an earlier request on this socket
            check = hashlib.md5(data[:4] + slot[3] + data[20:] + secret).digest()
            if check != data[4:20]:
                result.bad += 1
            elif data[0] == 2:
                result.accepted += 1
                if vlans:
                    vlan = _reply_vlan(data) or "none"
                    result.vlans[vlan] = result.vlans.get(vlan, 0) + 1
            elif data[0] == 3:
                result.rejected += 1
            else:
                result.bad += 1
            result.latencies.append(now - slot[1])
            fire(s)
    result.seconds = perf() - started
    for s in sockets:
        s.close()
    selector.close()
    return result


def radclient(
    port: int, crowd: list[Person], *, inflight: int, workdir: Path
) -> tuple[float, dict[str, int]]:
    """``radclient -p N`` over a file of PAP requests: (seconds, counts from its summary)."""
    path = workdir / f"radclient-{len(crowd)}.txt"
    lines = []
    for p in crowd:
        lines.append(
            f'User-Name = "{p.username}"\nUser-Password = "{p.password}"\nNAS-IP-Address = 127.0.0.1\n'
            f'NAS-Identifier = "{p.nas}"\nNAS-Port-Type = Wireless-802.11\nMessage-Authenticator = 0x00\n'
        )
    path.write_text("\n".join(lines))
    started = time.perf_counter()
    done = subprocess.run(
        [
            "radclient",
            "-q",
            "-s",
            "-p",
            str(inflight),
            "-r",
            "1",
            "-t",
            "5",
            "-f",
            str(path),
            f"127.0.0.1:{port}",
            "auth",
            SECRET,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    counts = {
        m.group(1).lower(): int(m.group(2))
        for m in re.finditer(r"^\s*(Accepted|Rejected|Lost|Passed|Failed)\s*:\s*(\d+)", done.stdout, re.M)
    }
    return seconds, counts


# --- the benchmark --------------------------------------------------------------------------------


@dataclass
class RatioRow(Row):
    """A row whose target is a share of another row's throughput (``ok`` when the share is reached)."""

    ratio: float | None = None
    min_ratio: float | None = None

    @property
    def ok(self) -> bool | None:
        if self.skipped or self.ratio is None or self.min_ratio is None:
            return None
        return self.ratio >= self.min_ratio


def missing_tools() -> str | None:
    for tool in ("freeradius", "radclient"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return (
                f"{tool} is not installed (apt-get install freeradius freeradius-utils freeradius-postgresql)"
            )
    if not (STOCK_SQL / "schema.sql").is_file():
        return f"{STOCK_SQL}/schema.sql is missing (freeradius-postgresql)"
    try:
        from occupant.radius import config  # noqa: F401
    except ImportError:
        return "occupant.radius.config does not exist yet"
    return None


LABELS = {
    "stock": "postgresql · stock schema.sql + default SQL policy",
    "occupant": "postgresql · Occupant schema + shipped config",
}


def run(
    *,
    users: int = 100_000,
    requests: int = 25_000,
    rounds: int = 4,
    inflight: int = 32,
    rebuild: bool = False,
    with_radclient: bool = True,
    min_ratio: float = 0.9,
) -> list[Row]:
    title = f"RADIUS Access-Request (PAP), {users:,} accounts, {inflight} in flight"
    reason = missing_tools()
    if reason:
        return [Row(title, "postgresql", skipped=reason)]
    server = pg_server()
    built = {
        "occupant": build_occupant(server, users, rebuild=rebuild),
        "stock": build_stock(server, users, rebuild=rebuild),
    }
    for side, info in built.items():
        log(
            f"radius bench: {side} database "
            + (f"built in {info['seconds']} s" if info["built"] else "reused")
        )
    for database in (OCCUPANT_DB, STOCK_DB):  # every run starts without sessions and sign-in history
        with psycopg.connect(server.dsn(database), autocommit=True) as conn:
            conn.execute("TRUNCATE radpostauth, radacct")
    crowd = people(users)
    rng = random.Random(11)
    order = list(range(users))
    rng.shuffle(order)
    secret = SECRET.encode()
    workdir = OUT / "radius"
    rc_size = min(requests, 10_000)
    with servers(server) as running:
        sides = list(running)
        results: dict[str, list[LoadResult]] = {side: [] for side in sides}
        via_radclient: dict[str, list[tuple[float, dict[str, int]]]] = {side: [] for side in sides}
        sequential: dict[str, LoadResult] = {}
        # correctness first: every user accepted everywhere, Occupant's with the homesite's secure VLAN
        probe = [crowd[i] for i in order[:500]]
        for side, radiusd in running.items():
            packets = [access_request(p, secret, n) for n, p in enumerate(probe)]
            check = send(radiusd.port, packets, inflight=8, vlans=True)
            log(
                f"radius bench: {side} probe: {check.accepted} accepted, {check.rejected} rejected, "
                f"{check.lost} lost, VLANs {check.vlans}"
            )
            if check.accepted != len(probe):
                tail = radiusd.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{side}: not every probe was accepted ({check}); log tail:\n{tail}")
            if side != "stock" and set(check.vlans) != {"100"}:
                raise RuntimeError(f"{side}: expected the secure VLAN 100 for everyone, got {check.vlans}")
        for radiusd in running.values():  # warm every server (connection pools, caches)
            warm = order[:3000]
            send(radiusd.port, [access_request(crowd[i], secret, i) for i in warm], inflight=inflight)
        for side, radiusd in running.items():
            count = 2000
            sample = [access_request(crowd[i], secret, i) for i in order[3000 : 3000 + count]]
            sequential[side] = send(radiusd.port, sample, inflight=1)
        cursor = 5000
        for r in range(rounds):
            chosen = [order[(cursor + k) % users] for k in range(requests)]
            cursor += requests
            packets = [access_request(crowd[i], secret, i) for i in chosen]
            turn = sides[r % len(sides) :] + sides[: r % len(sides)]  # who goes first rotates
            for side in turn:
                outcome = send(running[side].port, packets, inflight=inflight)
                results[side].append(outcome)
                log(
                    f"radius bench: round {r + 1}/{rounds} {side}: {outcome.rate:,.0f} req/s, "
                    f"{outcome.accepted:,} accepted, {outcome.rejected} rejected, {outcome.lost} lost"
                )
            if with_radclient:
                subset = [crowd[i] for i in chosen[:rc_size]]
                for side in turn:
                    seconds, counts = radclient(
                        running[side].port, subset, inflight=inflight, workdir=workdir
                    )
                    via_radclient[side].append((seconds, counts))
                    log(
                        f"radius bench: round {r + 1} radclient {side}: "
                        f"{len(subset) / seconds:,.0f} req/s {counts}"
                    )

    def rate_of(side: str) -> float:
        outcomes = results[side]
        return sum(o.answered for o in outcomes) / sum(o.seconds for o in outcomes)

    def radclient_rate(side: str) -> float | None:
        runs = via_radclient[side]
        return rc_size * len(runs) / sum(sec for sec, _ in runs) if runs else None

    stock_rate = rate_of("stock")
    rows: list[Row] = []
    for side in sides:
        outcomes = results[side]
        rate = rate_of(side)
        ms = [x * 1000 for o in outcomes for x in o.latencies]
        seq_ms = [x * 1000 for x in sequential[side].latencies]
        totals = {k: sum(getattr(o, k) for o in outcomes) for k in ("accepted", "rejected", "lost", "bad")}
        per_round = [round(o.rate) for o in outcomes]
        rc = via_radclient[side]
        rc_rate = radclient_rate(side)
        ratio = rate / stock_rate if stock_rate else None
        notes = (
            f"{totals['accepted']:,} accepted / {sum(totals.values()):,} sent; rounds {per_round} req/s"
            + (f"; radclient -p {inflight}: {rc_rate:,.0f} req/s" if rc_rate else "")
            + f"; 1 in flight: p50 {percentile(seq_ms, 50):.2f} ms, p95 {percentile(seq_ms, 95):.2f} ms"
        )
        extra: dict[str, Any] = {}
        row_cls: Any = Row
        if side != "stock":
            row_cls = RatioRow
            extra = {"ratio": ratio, "min_ratio": min_ratio}
            rc_stock = radclient_rate("stock")
            rc_ratio = rc_rate / rc_stock if rc_rate and rc_stock else None
            notes = (
                f"{(ratio or 0) * 100:.0f} % of stock"
                + (f" (radclient: {rc_ratio * 100:.0f} %)" if rc_ratio else "")
                + "; "
                + notes
            )
        rows.append(
            row_cls(
                benchmark=title,
                backend=LABELS[side],
                p50_ms=percentile(ms, 50),
                p95_ms=percentile(ms, 95),
                max_ms=max(ms) if ms else None,
                target=f"≥ {min_ratio * 100:.0f} % of stock req/s" if side != "stock" else "baseline",
                rate=f"{rate:,.0f} req/s",
                notes=notes,
                samples=len(ms),
                detail={
                    "rate": round(rate, 1),
                    "ratio_to_stock": None if ratio is None else round(ratio, 3),
                    "per_round": per_round,
                    "totals": totals,
                    "radclient": [{"seconds": round(sec, 2), **c} for sec, c in rc],
                    "radclient_rate": round(rc_rate, 1) if rc_rate else None,
                    "sequential_p50_ms": percentile(seq_ms, 50),
                    "sequential_p95_ms": percentile(seq_ms, 95),
                    "users": users,
                    "requests_per_round": requests,
                    "rounds": rounds,
                    "built": built.get("stock" if side == "stock" else "occupant"),
                },
                **extra,
            )
        )
    return rows
