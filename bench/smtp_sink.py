"""An SMTP server that accepts every message and counts them: ``python -m bench.smtp_sink PORT``.

Runs in its own process so that it does not share the interpreter lock with the deliverer. Prints
``ready`` once listening; answers each ``count`` line on stdin with ``<messages> <bytes>``; stops at
``quit`` or end of input.
"""

from __future__ import annotations

import sys
from typing import Any

from aiosmtpd.controller import Controller


class Counter:
    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        self.bytes += len(envelope.original_content or envelope.content or b"")
        return "250 OK"


def main() -> None:
    port = int(sys.argv[1])
    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "count":
                print(f"{counter.messages} {counter.bytes}", flush=True)
            elif line.strip() == "quit":
                break
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
