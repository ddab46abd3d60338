"""App-account kinds over a selection: welcome email, forced password reset, resent invitations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from occupant.accounts import bulk, service
from occupant.authz.actor import Actor
from occupant.bulk.kinds.base import UserKind
from occupant.users.models import OccupierUser


class SendWelcomeKind(UserKind):
    name = "send_welcome"
    title = "Send welcome email"
    outcome = "welcome_sent"

    def each(self, session: Session, user: OccupierUser, params: Any, actor: Actor) -> object:
        return service.send_welcome(session, user, actor=actor)

    def many(
        self, session: Session, users: Sequence[OccupierUser], params: Any, actor: Actor
    ) -> Sequence[object]:
        return bulk.send_welcome_many(session, users, actor=actor)


class ForcePasswordResetKind(UserKind):
    name = "force_password_reset"
    title = "Force password reset"
    outcome = "reset_forced"

    def each(self, session: Session, user: OccupierUser, params: Any, actor: Actor) -> object:
        return service.force_password_reset(session, user, actor=actor)

    def many(
        self, session: Session, users: Sequence[OccupierUser], params: Any, actor: Actor
    ) -> Sequence[object]:
        return bulk.force_password_reset_many(session, users, actor=actor)


class ResendInvitationKind(UserKind):
    name = "resend_invitation"
    title = "Resend invitations"
    outcome = "invitation_resent"

    def each(self, session: Session, user: OccupierUser, params: Any, actor: Actor) -> object:
        return service.resend_invitation(session, user, actor=actor)

    def many(
        self, session: Session, users: Sequence[OccupierUser], params: Any, actor: Actor
    ) -> Sequence[object]:
        return bulk.resend_invitation_many(session, users, actor=actor)
