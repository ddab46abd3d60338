"""Render Occupant's FreeRADIUS 3 configuration (deploy/freeradius/) into a directory for one database.

The bundle is a complete FreeRADIUS configuration directory (``freeradius -d DIR``): the server, its
RADIUS clients, the SQL module reading Occupant's database (PostgreSQL or SQLite), EAP, and the
policy. Words between ``@@`` in the templates are filled in here; every other character is copied.
EAP needs a server certificate: a throwaway CA and certificate are made on the first render and kept
on later ones, so that an operator's own certificate (or devices that trust the first) survive.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import URL, make_url

PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")
_SAFE_SECRET = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class RadiusConfigError(ValueError):
    """The options cannot make a working configuration; the message says which and why."""


def bundle_dir() -> Path:
    """Where the templates are: inside the installed package, else the checkout's deploy/freeradius."""
    packaged = Path(__file__).with_name("freeradius")
    if (packaged / "radiusd.conf").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "deploy" / "freeradius"
    if (checkout / "radiusd.conf").is_file():
        return checkout
    raise RadiusConfigError("the FreeRADIUS templates (deploy/freeradius) are not installed")


@dataclass(frozen=True)
class RadiusClient:
    """An access point or controller (or a network of them) allowed to send requests."""

    address: str  # an IP address or a network in CIDR form
    secret: str
    name: str = ""
    # Refuse Access-Requests without a Message-Authenticator: stops forged answers to PAP (BlastRADIUS).
    require_message_authenticator: bool = True

    def checked(self) -> RadiusClient:
        try:
            network = ipaddress.ip_network(self.address, strict=False)
        except ValueError:
            raise RadiusConfigError(
                f"client address {self.address!r} is not an IP address or network"
            ) from None
        if not _SAFE_SECRET.match(self.secret) or '"' in self.secret or "\\" in self.secret:
            raise RadiusConfigError(
                "a client secret must be printable ASCII without spaces, quotes or backslashes"
            )
        if len(self.secret) < 16:
            raise RadiusConfigError("a client secret must be at least 16 characters long")
        name = self.name or "nas-" + re.sub(r"[^0-9A-Za-z]+", "-", str(network)).strip("-")
        if not _NAME.match(name):
            raise RadiusConfigError(f"client name {name!r}: use letters, digits, '.', '-' and '_'")
        return RadiusClient(str(network), self.secret, name, self.require_message_authenticator)


@dataclass
class RadiusOptions:
    database_url: str
    listen: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    clients: list[RadiusClient] = field(default_factory=list)
    log_dir: Path | None = None  # default: DIR/log
    run_dir: Path | None = None  # default: DIR/run
    run_as: str | None = None  # "user" or "user:group" (FreeRADIUS started as root switches to it)
    reject_delay: int = 1  # seconds before an Access-Reject (slows password guessing); 0 in tests
    interim_interval: int = 600  # Acct-Interim-Interval sent to the NAS; 0 sends none
    stale_after: int | None = None  # seconds without accounting before a session stops counting
    db_connections: int = 32  # at most this many database connections (FreeRADIUS keeps a quarter spare)


@dataclass(frozen=True)
class Rendered:
    directory: Path
    dialect: str
    database: str  # where FreeRADIUS will connect, without a password
    generated_certificate: bool


def render(out: Path, options: RadiusOptions) -> Rendered:
    """Write the configuration into ``out`` (made if missing; files of the bundle are replaced).

    Files holding secrets (the sql module, clients.conf, pgpass, the EAP key) are not world-readable.
    With ``run_as``, a root caller hands the directory to that user, who must read it after the switch.
    """
    out = out.resolve()
    values, dialect, database = _values(out, options)
    source = bundle_dir()
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir() or relative.parts[0] == "sql":
            continue
        private = relative.parts[0] == "mods" or relative.name == "clients.conf"
        _write(out / relative, _fill(path, values), private=private)
    queries = source / "sql" / f"queries.{dialect}.conf"
    _write(out / "sql" / "queries.conf", _fill(queries, values), private=False)
    for directory in (Path(values["LOGDIR"]), Path(values["RUNDIR"])):
        directory.mkdir(parents=True, exist_ok=True)
    password = make_url(options.database_url).password
    if dialect == "postgresql" and password:
        write_pgpass(out / "pgpass", str(password))
    else:
        (out / "pgpass").unlink(missing_ok=True)
    generated = ensure_certificates(out / "certs")
    if options.run_as and os.geteuid() == 0:
        _hand_over(out, [Path(values["LOGDIR"]), Path(values["RUNDIR"])], options.run_as)
    return Rendered(directory=out, dialect=dialect, database=database, generated_certificate=generated)


def _hand_over(out: Path, extra: list[Path], run_as: str) -> None:
    import grp
    import pwd

    user, _, group = run_as.partition(":")
    try:
        uid = pwd.getpwnam(user).pw_uid
        gid = grp.getgrnam(group or user).gr_gid
    except KeyError:
        raise RadiusConfigError(f"--run-as {run_as!r}: no such user or group on this machine") from None
    for top in (out, *extra):
        os.chown(top, uid, gid)
        for path in top.rglob("*"):
            os.chown(path, uid, gid, follow_symlinks=False)


def _fill(path: Path, values: dict[str, str]) -> str:
    text = path.read_text()

    def one(match: re.Match[str]) -> str:
        try:
            return values[match.group(1)]
        except KeyError:
            raise RadiusConfigError(f"{path.name}: unknown template word {match.group(0)}") from None

    return PLACEHOLDER.sub(one, text)


def _write(path: Path, text: str, *, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")  # FreeRADIUS's $INCLUDE of a directory skips dot files
    tmp.write_text(text)
    tmp.chmod(0o640 if private else 0o644)
    tmp.replace(path)


def _values(out: Path, options: RadiusOptions) -> tuple[dict[str, str], str, str]:
    for port, what in ((options.auth_port, "auth"), (options.acct_port, "accounting")):
        if not 1 <= port <= 65535:
            raise RadiusConfigError(f"the {what} port must be between 1 and 65535")
    if options.auth_port == options.acct_port:
        raise RadiusConfigError("the auth and accounting ports must differ")
    try:
        listen = ipaddress.ip_address(options.listen)
    except ValueError:
        raise RadiusConfigError(f"listen address {options.listen!r} is not an IP address") from None
    if listen.version != 4:
        raise RadiusConfigError("listen on an IPv4 address (or 0.0.0.0 for every interface)")
    if options.reject_delay < 0 or options.reject_delay > 5:
        raise RadiusConfigError("the reject delay must be between 0 and 5 seconds")
    if options.interim_interval and not 60 <= options.interim_interval <= 86400:
        raise RadiusConfigError("the interim interval must be 0 (none) or between 60 and 86400 seconds")
    if not 1 <= options.db_connections <= 1000:
        raise RadiusConfigError("the number of database connections must be between 1 and 1000")
    clients = [c.checked() for c in options.clients]
    if not clients:
        raise RadiusConfigError("give at least one RADIUS client (--client ADDRESS with --secret)")
    names = [c.name for c in clients]
    if len(set(names)) != len(names):
        raise RadiusConfigError("two clients have the same name")
    url = make_url(options.database_url)
    dialect, connection, database = _connection(url, out)
    stale = options.stale_after
    if stale is None:
        stale = 3 * options.interim_interval
    values = {
        "CONFDIR": _config_string(str(out)),
        "LOGDIR": _config_string(str((options.log_dir or out / "log").resolve())),
        "RUNDIR": _config_string(str((options.run_dir or out / "run").resolve())),
        "RUN_AS": _run_as(options.run_as),
        "REJECT_DELAY": str(options.reject_delay),
        "LISTEN": str(listen),
        "AUTH_PORT": str(options.auth_port),
        "ACCT_PORT": str(options.acct_port),
        "CLIENTS": "\n".join(_client_block(c) for c in clients),
        "DIALECT": dialect,
        "CONNECTION": connection,
        "INTERIM": (
            f"\tupdate reply {{\n\t\t&Acct-Interim-Interval := {options.interim_interval}\n\t}}\n"
            if options.interim_interval
            else ""
        ),
        "FRESH_SESSION": _fresh_clause(dialect, stale),
        "STALE_SECONDS": str(max(0, int(stale))),
        "POOL_MAX": str(options.db_connections),
        "POOL_SPARE": str(max(1, options.db_connections // 4)),
    }
    return values, dialect, database


def _config_string(value: str) -> str:
    if any(c in value for c in '"\\${}%\n'):
        raise RadiusConfigError(f"{value!r}: a path for FreeRADIUS must not contain quotes, $, braces or %")
    return value


def _run_as(run_as: str | None) -> str:
    if not run_as:
        return "\t# Runs as the user that starts it (render with --run-as freerad:freerad to switch)."
    user, _, group = run_as.partition(":")
    for part in (user, group or user):
        if not _NAME.match(part):
            raise RadiusConfigError(f"--run-as {run_as!r}: expected USER or USER:GROUP")
    return f"\tuser = {user}\n\tgroup = {group or user}"


def _client_block(client: RadiusClient) -> str:
    return (
        f"client {client.name} {{\n"
        f"\tipaddr = {client.address}\n"
        f'\tsecret = "{client.secret}"\n'
        f"\tshortname = {client.name}\n"
        "\tnas_type = other\n"
        f"\trequire_message_authenticator = {'yes' if client.require_message_authenticator else 'no'}\n"
        "}\n"
    )


def _fresh_clause(dialect: str, stale_after: int) -> str:
    if stale_after <= 0:
        return ""
    if dialect == "postgresql":
        return f"AND COALESCE(acctupdatetime, acctstarttime) > NOW() - INTERVAL '{int(stale_after)} seconds'"
    return (
        "AND julianday(COALESCE(acctupdatetime, acctstarttime)) > "
        f"julianday('now', '-{int(stale_after)} seconds')"
    )


def _connection(url: URL, out: Path) -> tuple[str, str, str]:
    """(dialect, the sql module's connection lines, a printable description) for a SQLAlchemy URL."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise RadiusConfigError("FreeRADIUS needs a SQLite database file, not an in-memory database")
        path = Path(url.database).expanduser().resolve()
        text = _config_string(str(path))
        lines = (
            "\tsqlite {\n"
            f'\t\tfilename = "{text}"\n'
            "\t\t# Occupant writes while FreeRADIUS reads: wait for the lock rather than fail.\n"
            "\t\tbusy_timeout = 5000\n"
            "\t}"
        )
        return "sqlite", lines, str(path)
    if backend in ("postgresql", "postgres"):
        conninfo = libpq_conninfo(url, passfile=out / "pgpass" if url.password else None)
        lines = (
            "\t# A libpq connection string; the password is in the file named by passfile.\n"
            f"\tradius_db = '{conninfo}'"
        )
        return "postgresql", lines, url.render_as_string(hide_password=True)
    raise RadiusConfigError(f"FreeRADIUS can use Occupant's PostgreSQL or SQLite database, not {backend!r}")


def libpq_conninfo(url: URL, *, passfile: Path | None) -> str:
    """``key=\\'value\\' ...``: libpq's connection string from a SQLAlchemy PostgreSQL URL, written as the
    inside of a FreeRADIUS single-quoted string. Query options such as sslmode are kept."""
    parts: dict[str, str] = {}
    if url.host:
        parts["host"] = url.host
    if url.port:
        parts["port"] = str(url.port)
    if url.database:
        parts["dbname"] = url.database
    if url.username:
        parts["user"] = url.username
    for key, value in url.query.items():
        parts[key] = value if isinstance(value, str) else value[-1]
    if passfile is not None:
        parts["passfile"] = str(passfile)
    parts.setdefault("application_name", "freeradius")
    for key, value in parts.items():
        if not re.fullmatch(r"[a-z_]+", key) or any(c in value for c in "'\\\n\r"):
            raise RadiusConfigError(
                f"database setting {key}: quotes, backslashes and line breaks are not supported"
            )
    # FreeRADIUS keeps a single-quoted string as written except \\' (a quote).
    return " ".join(f"{key}=\\'{value}\\'" for key, value in parts.items())


def write_pgpass(path: Path, password: str) -> None:
    """libpq's password file (read by FreeRADIUS's connections; never the configuration itself)."""
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    _write(path, f"*:*:*:*:{escaped}\n", private=True)
    path.chmod(0o600)


# --- EAP certificate ---------------------------------------------------------------------------------


def ensure_certificates(directory: Path, *, days: int = 825) -> bool:
    """Make a throwaway CA and server certificate for EAP unless ``directory`` has them; True if made."""
    names = ("ca.pem", "server.pem", "server.key")
    if all((directory / n).is_file() for n in names):
        return False
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Occupant RADIUS throwaway CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "radius.occupant.invalid")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("radius.occupant.invalid")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    _write(directory / "ca.pem", ca.public_bytes(pem).decode(), private=False)
    _write(directory / "server.pem", server.public_bytes(pem).decode(), private=False)
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(directory / "server.key", key_pem.decode(), private=True)
    os.chmod(directory / "server.key", 0o600)
    return True
