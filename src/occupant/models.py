"""Every model, imported once so that the metadata (and Alembic) sees all tables."""

from occupant.accounts.models import AccountToken, AppAccount, AppSession
from occupant.audit.models import AuditEvent
from occupant.bulk.models import BulkItem, BulkJob
from occupant.groups.models import AccessGroup, group_members
from occupant.kit.throttle import Throttle
from occupant.notify.models import MessageStatus, OutboxMessage
from occupant.occupiers.models import Occupier, OccupierState, occupier_sites
from occupant.operators.models import Operator
from occupant.radius.models import (
    Nas,
    RadAcct,
    RadCheck,
    RadGroupCheck,
    RadGroupReply,
    RadPostAuth,
    RadReply,
    RadUserGroup,
)
from occupant.sites.models import Site, SiteNas
from occupant.staff.models import ApiKey, StaffSession, StaffUser, staff_sites
from occupant.users.models import OccupierUser, UserStatus
from occupant.wifi.models import WifiAccount, WifiStatus

__all__ = [
    "AccessGroup",
    "AccountToken",
    "ApiKey",
    "AppAccount",
    "AppSession",
    "AuditEvent",
    "BulkItem",
    "BulkJob",
    "MessageStatus",
    "Nas",
    "Occupier",
    "OccupierState",
    "OccupierUser",
    "Operator",
    "OutboxMessage",
    "RadAcct",
    "RadCheck",
    "RadGroupCheck",
    "RadGroupReply",
    "RadPostAuth",
    "RadReply",
    "RadUserGroup",
    "Site",
    "SiteNas",
    "StaffSession",
    "StaffUser",
    "Throttle",
    "UserStatus",
    "WifiAccount",
    "WifiStatus",
    "group_members",
    "occupier_sites",
    "staff_sites",
]
