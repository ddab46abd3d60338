"""FreeRADIUS's standard SQL schema, inside Occupant's database.

FreeRADIUS's stock ``rlm_sql`` queries read these tables unchanged. Occupant's Wi-Fi actions keep
``radcheck``, ``radusergroup``, ``radgroupcheck`` and ``radgroupreply`` exactly in step with its own
state, in the same transaction; FreeRADIUS writes ``radacct`` (sessions) and ``radpostauth``.
Column names are lower case so that the stock, unquoted queries find them on PostgreSQL too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from occupant.kit.db import Base, BigId


class RadCheck(Base):
    __tablename__ = "radcheck"
    __table_args__ = (Index("radcheck_username", "username", "attribute"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(254), default="", server_default="")
    attribute: Mapped[str] = mapped_column(String(64), default="", server_default="")
    op: Mapped[str] = mapped_column(String(2), default="==", server_default="==")
    value: Mapped[str] = mapped_column(String(253), default="", server_default="")


class RadReply(Base):
    __tablename__ = "radreply"
    __table_args__ = (Index("radreply_username", "username", "attribute"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(254), default="", server_default="")
    attribute: Mapped[str] = mapped_column(String(64), default="", server_default="")
    op: Mapped[str] = mapped_column(String(2), default="=", server_default="=")
    value: Mapped[str] = mapped_column(String(253), default="", server_default="")


class RadGroupCheck(Base):
    __tablename__ = "radgroupcheck"
    __table_args__ = (Index("radgroupcheck_groupname", "groupname", "attribute"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    groupname: Mapped[str] = mapped_column(String(64), default="", server_default="")
    attribute: Mapped[str] = mapped_column(String(64), default="", server_default="")
    op: Mapped[str] = mapped_column(String(2), default="==", server_default="==")
    value: Mapped[str] = mapped_column(Text, default="", server_default="")


class RadGroupReply(Base):
    __tablename__ = "radgroupreply"
    __table_args__ = (Index("radgroupreply_groupname", "groupname", "attribute"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    groupname: Mapped[str] = mapped_column(String(64), default="", server_default="")
    attribute: Mapped[str] = mapped_column(String(64), default="", server_default="")
    op: Mapped[str] = mapped_column(String(2), default="=", server_default="=")
    value: Mapped[str] = mapped_column(String(253), default="", server_default="")


class RadUserGroup(Base):
    __tablename__ = "radusergroup"
    __table_args__ = (Index("radusergroup_username", "username"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(254), default="", server_default="")
    groupname: Mapped[str] = mapped_column(String(64), default="", server_default="")
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RadAcct(Base):
    """Accounting sessions, written by FreeRADIUS: the open ones are a user's connected devices."""

    __tablename__ = "radacct"
    __table_args__ = (
        Index("radacct_active_session_idx", "acctuniqueid", postgresql_where=text("acctstoptime IS NULL")),
        Index(
            "radacct_bulk_close",
            "nasipaddress",
            "acctstarttime",
            postgresql_where=text("acctstoptime IS NULL"),
        ),
        Index("radacct_start_user_idx", "acctstarttime", "username"),
        Index("radacct_username_open", "username", "acctstoptime"),
    )

    radacctid: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    acctsessionid: Mapped[str] = mapped_column(Text)
    acctuniqueid: Mapped[str] = mapped_column(Text, unique=True)
    username: Mapped[str | None] = mapped_column(Text)
    realm: Mapped[str | None] = mapped_column(Text)
    nasipaddress: Mapped[str] = mapped_column(Text)
    nasportid: Mapped[str | None] = mapped_column(Text)
    nasporttype: Mapped[str | None] = mapped_column(Text)
    acctstarttime: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acctupdatetime: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acctstoptime: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acctinterval: Mapped[int | None] = mapped_column(BigInteger)
    acctsessiontime: Mapped[int | None] = mapped_column(BigInteger)
    acctauthentic: Mapped[str | None] = mapped_column(Text)
    connectinfo_start: Mapped[str | None] = mapped_column(Text)
    connectinfo_stop: Mapped[str | None] = mapped_column(Text)
    acctinputoctets: Mapped[int | None] = mapped_column(BigInteger)
    acctoutputoctets: Mapped[int | None] = mapped_column(BigInteger)
    calledstationid: Mapped[str | None] = mapped_column(Text)
    callingstationid: Mapped[str | None] = mapped_column(Text)
    acctterminatecause: Mapped[str | None] = mapped_column(Text)
    servicetype: Mapped[str | None] = mapped_column(Text)
    framedprotocol: Mapped[str | None] = mapped_column(Text)
    framedipaddress: Mapped[str | None] = mapped_column(Text)
    framedipv6address: Mapped[str | None] = mapped_column(Text)
    framedipv6prefix: Mapped[str | None] = mapped_column(Text)
    framedinterfaceid: Mapped[str | None] = mapped_column(Text)
    delegatedipv6prefix: Mapped[str | None] = mapped_column(Text)
    class_: Mapped[str | None] = mapped_column("class", Text)
    nasidentifier: Mapped[str | None] = mapped_column(Text)


class RadPostAuth(Base):
    """Authentication attempts, written by FreeRADIUS (never the attempted password: see the config)."""

    __tablename__ = "radpostauth"
    __table_args__ = (Index("radpostauth_username_idx", "username"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(Text)
    pass_: Mapped[str | None] = mapped_column("pass", Text)
    reply: Mapped[str | None] = mapped_column(Text)
    calledstationid: Mapped[str | None] = mapped_column(Text)
    callingstationid: Mapped[str | None] = mapped_column(Text)
    authdate: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("CURRENT_TIMESTAMP")
    )
    class_: Mapped[str | None] = mapped_column("class", Text)


class Nas(Base):
    """RADIUS clients (access points, controllers) with their shared secret."""

    __tablename__ = "nas"
    __table_args__ = (Index("nas_nasname", "nasname"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    nasname: Mapped[str] = mapped_column(Text)
    shortname: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text, default="other", server_default="other")
    ports: Mapped[int | None] = mapped_column(Integer)
    secret: Mapped[str] = mapped_column(Text)
    server: Mapped[str | None] = mapped_column(Text)
    community: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
