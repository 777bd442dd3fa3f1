from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from audit import sealer


class Command(BaseCommand):
    help = (
        "Seal committed audit events into the log as they arrive, until stopped (SIGTERM or "
        "Ctrl-C). Run one per database; a second one stands by and takes over if the first "
        "dies. --once seals what is waiting and exits."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="seal what is waiting, then exit")
        parser.add_argument(
            "--interval",
            type=float,
            default=0.1,
            help="seconds to wait when nothing is waiting (default 0.1)",
        )

    def handle(self, *args, once: bool = False, interval: float = 0.1, **options) -> None:
        if once:
            self.stdout.write(f"Sealed {sealer.seal_all()} events.")
            return
        stopping = {"now": False}

        def stop(signum, frame) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("Sealing audit events as they are committed.")
        sealer.run(interval=interval, stop=lambda: stopping["now"])
        self.stdout.write("Sealer stopped.")
