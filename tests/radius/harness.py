"""A real FreeRADIUS for the tests, configured by ``occupant radius config``, and real RADIUS clients.

``Radiusd.start`` renders the shipped configuration for the test database into a temporary folder and
runs ``freeradius -f -l stdout -d DIR`` on free loopback ports. Requests go out the way access points
send them: ``radclient`` (PAP, Status-Server), pyrad (MS-CHAPv2, accounting) and ``eapol_test``
(PEAP-MSCHAPv2, a whole 802.1X exchange).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyrad import packet
from pyrad.client import Client
from pyrad.dictionary import Dictionary

from occupant.radius.config import RadiusClient, RadiusOptions, render
from tests.radius import mschapv2

SECRET = "occupant-test-secret-0123456789"
DICTIONARY = Path(__file__).with_name("dictionary")
TOOLS = ("freeradius", "radclient", "eapol_test")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()]


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


@dataclass
class Reply:
    """An answer to an Access-Request: accepted or not, and the attributes that came with it."""

    accepted: bool
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def first(self, name: str) -> str | None:
        values = self.attributes.get(name)
        return values[0] if values else None

    @property
    def vlan(self) -> int | None:
        value = self.first("Tunnel-Private-Group-Id")
        return None if value is None else int(value)


@dataclass
class Radiusd:
    directory: Path
    auth_port: int
    acct_port: int
    process: subprocess.Popen[bytes]
    log: Path
    backend: str

    # --- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def start(cls, database_url: str, workdir: Path, backend: str) -> Radiusd:
        last_error = ""
        for _attempt in range(3):  # a port taken between choosing and binding: choose again
            auth_port, acct_port = _free_udp_ports(2)
            directory = workdir / "raddb"
            render(
                directory,
                RadiusOptions(
                    database_url=database_url,
                    auth_port=auth_port,
                    acct_port=acct_port,
                    clients=[RadiusClient(address="127.0.0.1", secret=SECRET, name="tests")],
                    reject_delay=0,
                    db_connections=4,  # the tests' PostgreSQL is shared by every worker
                ),
            )
            log = workdir / f"radiusd-{auth_port}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    ["freeradius", "-f", "-l", "stdout", "-d", str(directory)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            server = cls(directory, auth_port, acct_port, process, log, backend)
            if server._wait_ready(timeout=15):
                return server
            last_error = server.log_text()[-3000:]
            server.stop()
        raise RuntimeError(f"FreeRADIUS did not start:\n{last_error}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Ready to process requests" in self.log_text():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log_text(self) -> str:
        return self.log.read_bytes().decode("utf-8", "replace") if self.log.exists() else ""

    @property
    def ca_cert(self) -> Path:
        return self.directory / "certs" / "ca.pem"

    # --- radclient: PAP and Status-Server ------------------------------------------------------------

    def _radclient(
        self, command: str, port: int, attributes: dict[str, str]
    ) -> tuple[str, dict[str, list[str]]]:
        lines = [f'{name} = "{_quoted(value)}"' for name, value in attributes.items()]
        lines.append("Message-Authenticator = 0x00")
        result = subprocess.run(
            ["radclient", "-x", "-r", "1", "-t", "3", f"127.0.0.1:{port}", command, SECRET],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            timeout=15,
        )
        match = re.search(r"^Received (\S+) Id \d+ .*$", result.stdout, re.MULTILINE)
        if not match:
            raise AssertionError(f"no answer from FreeRADIUS: {result.stdout}{result.stderr}")
        reply: dict[str, list[str]] = {}
        for line in result.stdout[match.end() :].splitlines():
            attr = re.match(r"^\t([A-Za-z0-9-]+)(?::\d+)? = (.*)$", line)
            if not attr:
                if line.strip() and not line.startswith("\t"):
                    break
                continue
            reply.setdefault(attr.group(1), []).append(attr.group(2).strip('"'))
        return match.group(1), reply

    def status(self) -> bool:
        code, _ = self._radclient("status", self.auth_port, {})
        return code == "Access-Accept"

    def pap(self, username: str, password: str, *, nas: str | None, mac: str = "02-00-00-00-00-01") -> Reply:
        attributes = {"User-Name": username, "User-Password": password, "Calling-Station-Id": mac}
        if nas is not None:
            attributes["NAS-Identifier"] = nas
        code, reply = self._radclient("auth", self.auth_port, attributes)
        return Reply(code == "Access-Accept", reply)

    # --- pyrad: MS-CHAPv2 and accounting ---------------------------------------------------------------

    def _client(self) -> Client:
        client = Client(
            server="127.0.0.1",
            authport=self.auth_port,
            acctport=self.acct_port,
            secret=SECRET.encode(),
            dict=Dictionary(str(DICTIONARY)),
        )
        client.timeout = 3
        client.retries = 1
        return client

    def mschapv2(
        self, username: str, password: str, *, nas: str | None, mac: str = "02-00-00-00-00-01"
    ) -> tuple[Reply, bool]:
        """(the reply, whether its MS-CHAP2-Success proves the server knows the password)."""
        client = self._client()
        exchange = mschapv2.exchange(username, password)
        request = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=username)
        request["Calling-Station-Id"] = mac
        if nas is not None:
            request["NAS-Identifier"] = nas
        request["MS-CHAP-Challenge"] = exchange.challenge
        request["MS-CHAP2-Response"] = exchange.response
        request.add_message_authenticator()
        answer = client.SendPacket(request)
        reply = Reply(answer.code == packet.AccessAccept, _pyrad_attributes(answer))
        success = answer.get("MS-CHAP2-Success")
        proven = bool(success) and success[0][1:] == exchange.expected_success
        return reply, proven

    def accounting(self, status: str, *, username: str | None = None, **attributes: Any) -> bool:
        """Send an Accounting-Request; True when FreeRADIUS answered (it has stored it)."""
        client = self._client()
        request = client.CreateAcctPacket()
        request["Acct-Status-Type"] = status
        request["NAS-IP-Address"] = "127.0.0.1"
        if username is not None:
            request["User-Name"] = username
        for name, value in attributes.items():
            request[name.replace("_", "-")] = value
        answer = client.SendPacket(request)
        return bool(answer.code == packet.AccountingResponse)

    # --- eapol_test: PEAP-MSCHAPv2 and EAP-TTLS ------------------------------------------------------

    def peap(
        self,
        username: str,
        password: str,
        *,
        nas: str | None,
        mac: str = "02:00:00:00:00:01",
        outer_identity: str = "anonymous@occupant.invalid",
        method: str = "PEAP",
        phase2: str = "auth=MSCHAPV2",
    ) -> Reply:
        """A whole 802.1X exchange (PEAP-MSCHAPv2 unless told), the server certificate checked."""
        config = self.directory.parent / f"eapol-{time.monotonic_ns()}.conf"
        config.write_text(
            "network={\n"
            f'\tkey_mgmt=WPA-EAP\n\teap={method}\n\tphase2="{phase2}"\n'
            f'\tidentity="{_quoted(username)}"\n'
            f'\tanonymous_identity="{_quoted(outer_identity)}"\n'
            f'\tpassword="{_quoted(password)}"\n'
            f'\tca_cert="{self.ca_cert}"\n'
            "}\n"
        )
        command = ["eapol_test", "-c", str(config), "-a", "127.0.0.1", "-p", str(self.auth_port)]
        command += ["-s", SECRET, "-M", mac, "-r", "0", "-t", "10"]
        if nas is not None:
            command += ["-N", f"32:s:{nas}"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        finally:
            config.unlink()
        accepted = result.returncode == 0 and result.stdout.rstrip().endswith("SUCCESS")
        return Reply(accepted, _eapol_accept_attributes(result.stdout) if accepted else {})


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _pyrad_attributes(answer: packet.Packet) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key in answer.keys():  # noqa: SIM118 - pyrad's keys() names attributes, iteration gives codes
        if not isinstance(key, str):
            continue
        found[key] = [
            v if isinstance(v, str) else v.hex() if isinstance(v, bytes) else str(v) for v in answer[key]
        ]
    return found


_EAPOL_NAMES = {
    "1": "User-Name",
    "64": "Tunnel-Type",
    "65": "Tunnel-Medium-Type",
    "81": "Tunnel-Private-Group-Id",
}


def _eapol_accept_attributes(output: str) -> dict[str, list[str]]:
    """The attributes of the Access-Accept as eapol_test prints them (``Attribute 81 (...)`` + ``Value:``)."""
    start = output.rfind("(Access-Accept)")
    found: dict[str, list[str]] = {}
    if start < 0:
        return found
    lines = output[start:].splitlines()
    for number, line in enumerate(lines):
        attr = re.match(r"^\s+Attribute (\d+) \(", line)
        if not attr or attr.group(1) not in _EAPOL_NAMES or number + 1 >= len(lines):
            continue
        value = re.match(r"^\s+Value: (.*)$", lines[number + 1])
        if not value:
            continue
        raw = value.group(1).strip()
        if raw.startswith("'") and raw.endswith("'"):
            text = raw[1:-1]
        elif attr.group(1) == "81":
            text = bytes.fromhex(raw).decode()
        else:
            text = str(int(raw, 16)) if re.fullmatch(r"[0-9a-f]+", raw) else raw
        found.setdefault(_EAPOL_NAMES[attr.group(1)], []).append(text)
    return found
