"""Running the huey consumer inside the web process (the embedded default of ``occupant serve``)."""

from __future__ import annotations

from typing import Any

from occupant.kit.settings import get_settings


def start_consumer() -> Any:
    import occupant.worker.tasks  # noqa: F401  (registers the tasks)
    from occupant.worker.queue import huey

    consumer = huey.create_consumer(
        workers=get_settings().worker_threads, worker_type="thread", periodic=True, check_worker_health=False
    )
    # The web server owns the process's signals: huey's handlers would swallow Ctrl+C and SIGTERM.
    consumer._set_signal_handlers = lambda: None
    consumer.start()
    return consumer
