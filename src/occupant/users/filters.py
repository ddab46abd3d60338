"""The user filter shared by lists, exports and bulk selections: one model, one query, and the values each
of the bulk dialog's filters offers.

``UserFilter`` holds every criterion an admin can set ("All" is ``None``: no filter on that column). The
Wi-Fi criteria ask about the user's Wi-Fi account, the portal, mobile-app, account-status and role criteria
about their app account. A user without an app account is ``NOT_INVITED`` for the portal, the mobile app
and the account status (that is what every page shows for them); ``no_account`` asks for exactly those
users.

``filtered_users`` always applies the actor's scope first (``authz.scope.user_filter``): a filter can only
narrow what the actor may see. A bulk selection "every user matching this filter" is
``filtered_users(...).with_only_columns(OccupierUser.id)``, evaluated when the job is submitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from occupant.accounts.models import AccountRole, AccountStatus, AppAccount, InviteState
from occupant.authz import scope
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, require, user_filter
from occupant.kit.clock import utcnow
from occupant.kit.pagination import Page, decode_cursor, page_of
from occupant.occupiers.models import Occupier
from occupant.sites.models import Site
from occupant.users import queries
from occupant.users.models import OccupierUser
from occupant.users.schemas import RecordId
from occupant.wifi.models import WifiAccount, WifiStatus

NO_ACCOUNT = "no_account"
NO_WIFI = "none"
# Keep in step with WifiStatus, InviteState, AccountStatus (tests/users/test_filters.py checks).
WifiChoice = Literal["none", "PROVISIONING", "ACTIVE", "DEACTIVATED"]
AppChoice = Literal["no_account", "NOT_INVITED", "INVITED", "SIGNED_IN"]
AccountStatusChoice = Literal["NOT_INVITED", "AWAITING_SIGN_IN", "ACTIVE", "DEACTIVATED"]
RoleChoice = Literal["admin", "user"]
StatusChoice = Literal["ACTIVE", "DEACTIVATED", "SETUP_REQUIRED", "PASSWORD_REQUIRED"]

# The criteria whose values are personal (a search fragment may be a name): never written to the audit log.
PERSONAL_CRITERIA = frozenset({"q"})


def _blank_is_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


class UserFilter(BaseModel):
    """Which users: every field left ``None`` ("All") does not filter.

    ``wifi``: ``none`` (no Wi-Fi account) or the account's state — ``DEACTIVATED`` is what the bulk dialog
    calls "inactive". ``portal`` / ``mobile_app``: that app's invitation state, or ``no_account``.
    ``busy``: True for users an action in progress holds, False for those free (the bulk dialog offers only
    those). Values are taken in any case (``active`` = ``ACTIVE``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    occupier_id: RecordId | None = Field(default=None, description="Only this occupier's users.")
    q: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=200)] = Field(
        default=None, description="Any fragment of name or email."
    )
    status: StatusChoice | None = Field(default=None, description="The user's record status.")
    wifi: WifiChoice | None = Field(
        default=None, description="`none` (no Wi-Fi account), `PROVISIONING`, `ACTIVE` or `DEACTIVATED`."
    )
    wifi_homesite_id: RecordId | None = Field(default=None, description="Wi-Fi homesite (a site id).")
    wifi_device_limit: Annotated[int | None, Field(ge=1, le=1000)] = Field(
        default=None, description="Wi-Fi concurrent device limit."
    )
    portal: AppChoice | None = Field(
        default=None, description="Portal: `NOT_INVITED`, `INVITED`, `SIGNED_IN`, or `no_account`."
    )
    mobile_app: AppChoice | None = Field(
        default=None, description="Mobile app: `NOT_INVITED`, `INVITED`, `SIGNED_IN`, or `no_account`."
    )
    account_status: AccountStatusChoice | None = Field(
        default=None,
        description="App account: `NOT_INVITED`, `AWAITING_SIGN_IN`, `ACTIVE` or `DEACTIVATED`.",
    )
    role: RoleChoice | None = Field(default=None, description="App account role: `admin` or `user`.")
    busy: bool | None = Field(default=None, description="Held by an action in progress (true) or free.")

    @field_validator("q", mode="before")
    @classmethod
    def _search(cls, value: Any) -> Any:
        value = _blank_is_none(value)
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("The search must not contain a NUL character.")
        return value

    @field_validator("status", "account_status", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        value = _blank_is_none(value)
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("wifi", "portal", "mobile_app", mode="before")
    @classmethod
    def _state_or_none(cls, value: Any) -> Any:
        value = _blank_is_none(value)
        if not isinstance(value, str):
            return value
        text = value.strip()
        return text.lower() if text.lower() in (NO_WIFI, NO_ACCOUNT) else text.upper()

    @field_validator("role", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        value = _blank_is_none(value)
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("occupier_id", "wifi_homesite_id", "wifi_device_limit", "busy", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_is_none(value)

    @property
    def criteria(self) -> dict[str, Any]:
        """The criteria that are set, by name."""
        return self.model_dump(exclude_none=True)

    @property
    def non_personal(self) -> dict[str, Any]:
        """The criteria that may be written to the audit log (not the search fragment)."""
        return {k: v for k, v in self.criteria.items() if k not in PERSONAL_CRITERIA}

    @property
    def needs_wifi(self) -> bool:
        return (
            self.wifi is not None or self.wifi_homesite_id is not None or self.wifi_device_limit is not None
        )

    @property
    def needs_account(self) -> bool:
        return any(v is not None for v in (self.portal, self.mobile_app, self.account_status, self.role))


# --- the query ---------------------------------------------------------------------------------------


def _app_state(column: Any, wanted: str, not_invited: str) -> ColumnElement[bool]:
    """An app-account criterion on the outer-joined account: a user without one is ``not_invited``."""
    if wanted == NO_ACCOUNT:
        return AppAccount.id.is_(None)
    if wanted == not_invited:
        return or_(AppAccount.id.is_(None), column == wanted)
    return column == wanted


def wifi_clauses(f: UserFilter) -> list[ColumnElement[bool]]:
    """The Wi-Fi criteria, on ``wifi_accounts`` outer-joined to the users."""
    clauses: list[ColumnElement[bool]] = []
    if f.wifi == NO_WIFI:
        clauses.append(WifiAccount.id.is_(None))
    elif f.wifi is not None:
        clauses.append(WifiAccount.status == f.wifi)
    if f.wifi_homesite_id is not None:
        clauses.append(WifiAccount.homesite_id == f.wifi_homesite_id)
    if f.wifi_device_limit is not None:
        clauses.append(WifiAccount.device_limit == f.wifi_device_limit)
    return clauses


def account_clauses(f: UserFilter) -> list[ColumnElement[bool]]:
    """The app-account criteria, on ``app_accounts`` outer-joined to the users."""
    clauses: list[ColumnElement[bool]] = []
    if f.portal is not None:
        clauses.append(_app_state(AppAccount.portal, f.portal, InviteState.NOT_INVITED))
    if f.mobile_app is not None:
        clauses.append(_app_state(AppAccount.mobile_app, f.mobile_app, InviteState.NOT_INVITED))
    if f.account_status is not None:
        clauses.append(_app_state(AppAccount.status, f.account_status, AccountStatus.NOT_INVITED))
    if f.role is not None:
        clauses.append(AppAccount.role == f.role)
    return clauses


def user_clauses(session: Session, f: UserFilter) -> list[ColumnElement[bool]]:
    """The criteria on the user row itself (occupier, status, search, busy)."""
    clauses: list[ColumnElement[bool]] = []
    if f.occupier_id is not None:
        clauses.append(OccupierUser.occupier_id == f.occupier_id)
    if f.status is not None:
        clauses.append(OccupierUser.status == f.status)
    if f.q:
        search = queries.search_clause(session, f.q)
        if search is not None:
            clauses.append(search)
    if f.busy is not None:
        now = utcnow()
        held = and_(OccupierUser.busy_until.is_not(None), OccupierUser.busy_until > now)
        clauses.append(
            held if f.busy else or_(OccupierUser.busy_until.is_(None), OccupierUser.busy_until <= now)
        )
    return clauses


def filtered_users(
    session: Session, actor: Actor, f: UserFilter, *, join_accounts: bool = False
) -> Select[Any]:
    """``SELECT occupier_users`` the actor may see that match ``f`` (no order, no limit).

    ``wifi_accounts`` and ``app_accounts`` (at most one row per user each) are LEFT JOINed when a criterion
    needs them, or always with ``join_accounts`` — then their columns can be selected too
    (``.with_only_columns(OccupierUser.id, WifiAccount.status, ...)``); do not join them again.
    """
    stmt = select(OccupierUser).where(user_filter(actor), *user_clauses(session, f))
    if join_accounts or f.needs_wifi:
        stmt = stmt.outerjoin(WifiAccount, WifiAccount.user_id == OccupierUser.id).where(*wifi_clauses(f))
    if join_accounts or f.needs_account:
        stmt = stmt.outerjoin(AppAccount, AppAccount.user_id == OccupierUser.id).where(*account_clauses(f))
    return stmt


def count_filtered(session: Session, actor: Actor, f: UserFilter) -> int:
    """How many users the actor may see match ``f``."""
    stmt = filtered_users(session, actor, f).with_only_columns(func.count(OccupierUser.id))
    return int(session.scalar(stmt) or 0)


def matching_ids(session: Session, actor: Actor, f: UserFilter) -> list[int]:
    """The ids of every matching user, in id order (a bulk selection frozen at submission)."""
    stmt = filtered_users(session, actor, f).with_only_columns(OccupierUser.id).order_by(OccupierUser.id)
    return list(session.scalars(stmt))


_LIST_CRITERIA = frozenset({"occupier_id", "q", "status"})


def list_filtered(
    session: Session, actor: Actor, f: UserFilter, *, cursor: str | None = None, limit: int = 50
) -> Page[OccupierUser]:
    """One page of matching users in name order, with the next page's cursor (the bulk dialog's list).

    Criteria the users tab knows (occupier, status, search) go through ``users.queries.list_users`` and its
    search paths; the others walk the name-ordered index and test each user (matches are frequent).
    """
    if set(f.criteria) <= _LIST_CRITERIA:
        return queries.list_users(
            session, actor, q=f.q, occupier_id=f.occupier_id, status=f.status, cursor=cursor, limit=limit
        )
    stmt = filtered_users(session, actor, f)
    after = decode_cursor(cursor, 2)
    if after is not None:
        stmt = stmt.where(tuple_(OccupierUser.sort_key, OccupierUser.id) > tuple_(after[0], after[1]))
    stmt = stmt.order_by(OccupierUser.sort_key, OccupierUser.id).limit(limit + 1)
    return page_of(list(session.scalars(stmt)), limit, lambda u: [u.sort_key, u.id])


# --- the values each filter offers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One value a filter offers: what to send (``value``) and show (``label``), how many users have it."""

    value: str
    label: str
    count: int


@dataclass(frozen=True)
class FilterOptions:
    """The values present among an occupier's users, for each of the bulk dialog's filters ("All" aside)."""

    total: int
    wifi: list[Option]
    wifi_homesite: list[Option]
    wifi_device_limit: list[Option]
    portal: list[Option]
    mobile_app: list[Option]
    account_status: list[Option]
    role: list[Option]


def _options(counts: dict[str, int], order: Iterable[str]) -> list[Option]:
    return [Option(value=v, label=v, count=counts[v]) for v in order if counts.get(v)]


def filter_options(session: Session, actor: Actor, occupier: Occupier) -> FilterOptions:
    """What each filter of the occupier's bulk dialog can be set to: only values some user has, with counts.

    Four queries whatever the number of users (one count, one grouping of the Wi-Fi accounts, one of the
    app accounts, the homesites' codes). Raises PermissionDenied for actors who do not manage users, and
    NotFound for an occupier outside the actor's scope.
    """
    require(actor, Perm.MANAGE_USERS)
    occupier = scope.get_occupier(session, actor, occupier.id)
    total = int(
        session.scalar(
            select(func.count(OccupierUser.id)).where(
                OccupierUser.occupier_id == occupier.id, user_filter(actor)
            )
        )
        or 0
    )
    wifi_rows = session.execute(
        select(WifiAccount.status, WifiAccount.homesite_id, WifiAccount.device_limit, func.count())
        .where(WifiAccount.occupier_id == occupier.id, WifiAccount.operator_id == actor.operator_id)
        .group_by(WifiAccount.status, WifiAccount.homesite_id, WifiAccount.device_limit)
    ).all()
    wifi: dict[str, int] = {}
    homesites: dict[int, int] = {}
    limits: dict[int, int] = {}
    for wifi_status, homesite_id, limit, n in wifi_rows:
        wifi[str(wifi_status)] = wifi.get(str(wifi_status), 0) + n
        homesites[homesite_id] = homesites.get(homesite_id, 0) + n
        limits[limit] = limits.get(limit, 0) + n
    wifi[NO_WIFI] = total - sum(wifi.values())

    app_rows = session.execute(
        select(AppAccount.status, AppAccount.role, AppAccount.portal, AppAccount.mobile_app, func.count())
        .where(AppAccount.occupier_id == occupier.id, AppAccount.operator_id == actor.operator_id)
        .group_by(AppAccount.status, AppAccount.role, AppAccount.portal, AppAccount.mobile_app)
    ).all()
    statuses: dict[str, int] = {}
    roles: dict[str, int] = {}
    portal: dict[str, int] = {}
    mobile: dict[str, int] = {}
    for status, role, portal_state, mobile_state, n in app_rows:
        for counts, value in (
            (statuses, status),
            (roles, role),
            (portal, portal_state),
            (mobile, mobile_state),
        ):
            counts[str(value)] = counts.get(str(value), 0) + n
    without = total - sum(statuses.values())
    for counts, not_invited in (
        (statuses, AccountStatus.NOT_INVITED),
        (portal, InviteState.NOT_INVITED),
        (mobile, InviteState.NOT_INVITED),
    ):
        counts[not_invited] = counts.get(not_invited, 0) + without
    portal[NO_ACCOUNT] = mobile[NO_ACCOUNT] = without

    labels: dict[int, str] = {}
    if homesites:
        found = session.execute(select(Site.id, Site.code, Site.name).where(Site.id.in_(sorted(homesites))))
        labels = {site_id: f"{code} · {name}" for site_id, code, name in found}
    site_options = sorted(
        (Option(value=str(i), label=labels[i], count=n) for i, n in homesites.items() if i in labels),
        key=lambda o: o.label,
    )
    invite_order = [InviteState.NOT_INVITED, InviteState.INVITED, InviteState.SIGNED_IN, NO_ACCOUNT]
    return FilterOptions(
        total=total,
        wifi=_options(wifi, [NO_WIFI, *WifiStatus]),
        wifi_homesite=site_options,
        wifi_device_limit=[Option(value=str(n), label=str(n), count=limits[n]) for n in sorted(limits)],
        portal=_options(portal, invite_order),
        mobile_app=_options(mobile, invite_order),
        account_status=_options(statuses, list(AccountStatus)),
        role=_options(roles, list(AccountRole)),
    )
