"""Every kind of bulk job, by name. A new kind: a class in one of these modules, and a line here."""

from __future__ import annotations

from occupant.bulk.kinds.accounts import ForcePasswordResetKind, ResendInvitationKind, SendWelcomeKind
from occupant.bulk.kinds.base import Kind
from occupant.bulk.kinds.create import CreateKind
from occupant.bulk.kinds.edit import EditKind
from occupant.bulk.kinds.lifecycle import DeactivateKind, DeleteKind, ReactivateKind

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        CreateKind(),
        DeleteKind(),
        DeactivateKind(),
        ReactivateKind(),
        SendWelcomeKind(),
        ForcePasswordResetKind(),
        ResendInvitationKind(),
        EditKind(),
    )
}
