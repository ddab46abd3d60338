"""Background tasks. Each takes ids, opens its own transaction and re-reads what it needs."""

from __future__ import annotations

import logging
from collections.abc import Sequence

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


@huey.task(retries=2, retry_delay=5)
def confirm_wifi_many(account_ids: list[int]) -> None:
    """Confirm a batch of new Wi-Fi accounts (a bulk create) set-based; retried while some are not live."""
    from occupant.wifi.bulk import confirm_provisioning_many
    from occupant.wifi.service import ProvisioningNotLive

    with transaction(get_session_factory()) as session:
        outcome = confirm_provisioning_many(session, account_ids)
    if outcome.not_live:
        raise ProvisioningNotLive(
            f"{len(outcome.not_live)} Wi-Fi accounts have no NT-Password row in radcheck yet"
        )


@huey.task(retries=0)
def run_bulk_job(job_id: int) -> None:
    from occupant.bulk.engine import run_job

    run_job(get_session_factory(), job_id)


@huey.periodic_task(crontab(minute="*"))
def sweep() -> None:
    """Re-enqueue whatever a lost message or a killed worker left behind. Everything here only queues or
    does short work: the mail that is due is a task of its own (a backlog of thousands of messages must
    not hold up a killed worker's bulk job)."""
    from occupant.occupiers.decommission import pending_decommissions

    factory = get_session_factory()
    with transaction(factory) as session:
        pending = pending_decommissions(session)
    for occupier_id in pending:
        run_decommission(occupier_id)
    from occupant.bulk.engine import purge_old_jobs, stalled_jobs
    from occupant.wifi.service import pending_provisioning

    with transaction(factory) as session:
        stalled = stalled_jobs(session)
        purge_old_jobs(session)
    for job_id in stalled:
        run_bulk_job(job_id)

    from occupant.wifi.bulk import confirm_provisioning_many

    with transaction(factory) as session:  # set-based: a killed bulk create leaves thousands
        confirmed = confirm_provisioning_many(session, pending_provisioning(session))
    if confirmed.not_live:
        log.warning(
            "%d Wi-Fi accounts are not in RADIUS yet; `occupant radius sync` rewrites RADIUS's rows from "
            "Occupant's state",
            len(confirmed.not_live),
        )
    deliver_mail()


def enqueue_mail_delivery() -> None:
    deliver_mail()


def enqueue_decommission(occupier_id: int) -> None:
    run_decommission(occupier_id)


def enqueue_bulk_job(job_id: int) -> None:
    run_bulk_job(job_id)


def enqueue_wifi_confirmation(account_id: int) -> None:
    confirm_wifi(account_id)


WIFI_CONFIRMATION_BATCH = 1_000  # account ids per queue message


def enqueue_wifi_confirmations(account_ids: Sequence[int]) -> None:
    """Confirmation of many new accounts: one message per batch of ids, not one per account."""
    ids = list(account_ids)
    for start in range(0, len(ids), WIFI_CONFIRMATION_BATCH):
        confirm_wifi_many(ids[start : start + WIFI_CONFIRMATION_BATCH])
