"""Background tasks. Each takes ids, opens its own transaction and re-reads what it needs."""

from __future__ import annotations

import logging

from huey import crontab

from occupant.kit.db import transaction
from occupant.kit.runtime import get_session_factory
from occupant.worker.queue import huey

log = logging.getLogger(__name__)


@huey.task(retries=0)
def deliver_mail() -> None:
    from occupant.notify.delivery import deliver_due

    deliver_due(get_session_factory())


@huey.task(retries=0)
def run_decommission(occupier_id: int) -> None:
    from occupant.occupiers.decommission import run_decommission as run

    run(get_session_factory(), occupier_id)


@huey.task(retries=2, retry_delay=5)
def confirm_wifi(account_id: int) -> None:
    from occupant.wifi.service import confirm_provisioning

    with transaction(get_session_factory()) as session:
        confirm_provisioning(session, account_id)


@huey.periodic_task(crontab(minute="*"))
def sweep() -> None:
    """Re-enqueue whatever a lost message or a killed worker left behind."""
    from occupant.notify.delivery import deliver_due
    from occupant.occupiers.decommission import pending_decommissions

    factory = get_session_factory()
    deliver_due(factory)
    with transaction(factory) as session:
        pending = pending_decommissions(session)
    for occupier_id in pending:
        run_decommission(occupier_id)
    from occupant.wifi.service import confirm_provisioning, pending_provisioning

    with transaction(factory) as session:
        for account_id in pending_provisioning(session):
            confirm_provisioning(session, account_id)


def enqueue_mail_delivery() -> None:
    deliver_mail()


def enqueue_decommission(occupier_id: int) -> None:
    run_decommission(occupier_id)


def enqueue_wifi_confirmation(account_id: int) -> None:
    confirm_wifi(account_id)
