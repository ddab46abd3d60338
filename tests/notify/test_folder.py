"""Without SMTP, mail lands in the mail folder, and the mailbox functions show it."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from tests.notify.conftest import BRAND_COLOR, OPERATOR_NAME, admin_of, fresh, queue_many

from occupant.kit.db import transaction
from occupant.kit.errors import NotFound
from occupant.kit.settings import Settings, get_settings
from occupant.notify.delivery import deliver_due, message_id
from occupant.notify.mailbox import count_folder, list_folder, read_folder_message
from occupant.notify.models import MessageStatus, OutboxMessage
from occupant.users import service as users


@pytest.fixture
def instance(tmp_path, monkeypatch) -> Iterator[Settings]:
    """The process's settings pointed at a fresh data folder, no SMTP: what ``occupant serve`` runs with."""
    monkeypatch.setenv("OCCUPANT_DATA_DIR", str(tmp_path / "instance"))
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_mail_lands_in_the_folder_and_the_mailbox_shows_it(committed, world, instance):
    user = world.users["de"]
    with transaction(committed) as session:
        users.change_email(
            session, fresh(session, user), "juergen.neu@tenant.example", actor=admin_of(session, world)
        )

    report = deliver_due(committed)

    assert report.sent == 2
    folder = instance.mail_dir / str(world.operator_id)
    files = sorted(folder.iterdir())
    assert len(files) == 2 and all(f.suffix == ".eml" for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)  # mail holds personal data
    summaries = list_folder(50, 0, operator_id=world.operator_id)
    assert {s.to for s in summaries} == {"juergen@tenant.example", "juergen.neu@tenant.example"}
    assert {s.subject for s in summaries} == {
        f"Ihre E-Mail-Adresse bei {OPERATOR_NAME} wurde geändert",
        f"Ihr Konto bei {OPERATOR_NAME} verwendet jetzt diese E-Mail-Adresse",
    }
    assert all(OPERATOR_NAME in s.sender for s in summaries)

    old = next(s for s in summaries if s.to == "juergen@tenant.example")
    headers, text, html = read_folder_message(old.name, operator_id=world.operator_id)
    assert "Hallo Jürgen," in (text or "") and "juergen.neu@tenant.example" in (text or "")
    assert html is not None and BRAND_COLOR in html and OPERATOR_NAME in html
    assert headers["Content-Language"] == "de"
    with transaction(committed) as session:
        ids = session.scalars(select(OutboxMessage.id)).all()
    assert any(old.name.endswith(f"-{i}.eml") and headers["Message-ID"] == message_id(i) for i in ids)


def test_newest_first_in_pages(committed, world, instance):
    queue_many(committed, world, 3)
    deliver_due(committed)
    queue_many(committed, world, 2, language="nl")
    deliver_due(committed)

    assert count_folder(operator_id=world.operator_id) == 5
    first, second, third = (list_folder(2, offset, operator_id=world.operator_id) for offset in (0, 2, 4))
    assert [len(first), len(second), len(third)] == [2, 2, 1]
    everything = first + second + third
    assert [s.date for s in everything] == sorted((s.date for s in everything), reverse=True)
    assert all(s.subject.startswith("Uw e-mailadres") for s in first)  # the later, Dutch ones on top
    assert len({s.name for s in everything}) == 5


def test_the_mailbox_never_leaves_the_operators_folder(committed, world, instance):
    queue_many(committed, world, 1)
    deliver_due(committed)
    [summary] = list_folder(10, 0, operator_id=world.operator_id)
    (instance.data_dir / "secret.txt").write_text("top secret")

    other_operator = world.operator_id + 1000
    assert list_folder(10, 0, operator_id=other_operator) == []
    for name in (
        summary.name,
        "../secret.txt",
        "../../secret.txt",
        "/etc/passwd",
        "",
        ".",
        "..",
        f"../{world.operator_id}/{summary.name}",
        summary.name + "/../../secret.txt",
    ):
        with pytest.raises(NotFound):
            read_folder_message(name, operator_id=other_operator)
    for name in ("../secret.txt", "../../secret.txt", "/etc/passwd", f"./{summary.name}"):
        with pytest.raises(NotFound):
            read_folder_message(name, operator_id=world.operator_id)
    assert read_folder_message(summary.name, operator_id=world.operator_id).text


def test_deleting_a_user_removes_their_mail_from_the_folder(committed, world, instance):
    zoe, daan = world.users["fr"], world.users["nl"]
    with transaction(committed) as session:
        actor = admin_of(session, world)
        users.change_email(session, fresh(session, zoe), "zoe.b@tenant.example", actor=actor)
        users.change_email(session, fresh(session, daan), "daan.b@tenant.example", actor=actor)
    deliver_due(committed)
    assert count_folder(operator_id=world.operator_id) == 4

    with transaction(committed) as session:
        users.delete_user(session, fresh(session, zoe), actor=admin_of(session, world))

    left = list_folder(10, 0, operator_id=world.operator_id)
    assert {s.to for s in left} == {"daan@tenant.example", "daan.b@tenant.example"}
    raw = b"".join(p.read_bytes() for p in (instance.mail_dir / str(world.operator_id)).iterdir())
    assert b"zoe" not in raw.lower()


def test_a_rolled_back_deletion_keeps_the_mail(committed, world, instance):
    user = world.users["es"]
    queue_many(committed, world, 1, language="es")
    deliver_due(committed)
    with pytest.raises(RuntimeError), transaction(committed) as session:
        users.delete_user(session, fresh(session, user), actor=admin_of(session, world))
        raise RuntimeError("the request failed")
    assert count_folder(operator_id=world.operator_id) == 1


def test_an_unwritable_folder_keeps_the_mail_queued(committed, world, instance):
    instance.data_dir.mkdir(parents=True, exist_ok=True)
    instance.mail_dir.write_text("not a folder")
    queue_many(committed, world, 3)
    report = deliver_due(committed)
    assert (report.sent, report.deferred) == (0, 3) and report.connection_error
    with transaction(committed) as session:
        assert all(
            m.status == MessageStatus.QUEUED and m.attempts == 0
            for m in session.scalars(select(OutboxMessage))
        )


def test_a_secret_sealed_with_another_key_is_retried_then_dead(committed, world, make_settings):
    queue_many(committed, world, 1, secrets={"password": "x"})
    settings = make_settings(secret_key="a-different-instance-key", mail_max_attempts=2)
    first = deliver_due(committed, settings=settings)
    with transaction(committed) as session:
        [row] = session.scalars(select(OutboxMessage)).all()
    assert first.retried == 1 and row.status == MessageStatus.QUEUED
    assert row.last_error and "cannot render" in row.last_error and "decrypted" in row.last_error
    second = deliver_due(committed, settings=settings, now=row.next_attempt_at)
    assert second.dead == 1
    assert not (settings.mail_dir).exists() or not any(settings.mail_dir.rglob("*.eml"))
