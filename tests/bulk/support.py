"""Kinds that read files, for the API and CLI tests of uploads and rows while the real ones (``create``,
the deactivation file) are written: registered in ``KINDS`` only for the test that asks for them.

``test_deactivate_file`` deactivates the users a file names by email (a kind over existing users);
``test_make`` makes nothing but needs an occupier, as a kind that makes users does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pytest
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.bulk.kinds import KINDS
from occupant.bulk.kinds.base import Item, Kind, Run
from occupant.kit.csvin import Column, CsvRow, CsvSpec
from occupant.kit.errors import FieldErrors
from occupant.occupiers.models import Occupier


class MakeKind(Kind):
    name = "test_make"
    title = "Make things"
    holds_users = False
    outcome = "made"
    csv_spec: ClassVar[CsvSpec | None] = CsvSpec(
        (
            Column("email", required=True),
            Column("first_name"),
            Column("last_name"),
            Column("wifi"),
            Column("groups"),
        ),
        key="email",
    )

    def items_from_rows(
        self, session: Session, actor: Actor, occupier: Occupier | None, rows: Sequence[CsvRow]
    ) -> list[Item]:
        assert occupier is not None  # the engine refuses the job before
        return [Item(position=r.line, identifier=r.values["email"], payload=dict(r.values)) for r in rows]

    def check(self, run: Run, items: Sequence[Item]) -> None:
        for item in items:
            assert item.payload is not None
            if not item.payload["email"]:
                item.fail(FieldErrors.single("email", "required", "The email is required."))

    def apply(self, run: Run, items: Sequence[Item]) -> None:
        for item in items:
            item.succeed("made")


@pytest.fixture
def file_kinds(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    kinds = {"test_make": MakeKind()}
    for name, kind in kinds.items():
        monkeypatch.setitem(KINDS, name, kind)
    yield kinds
