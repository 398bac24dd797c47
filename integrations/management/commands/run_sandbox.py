"""`manage.py run_sandbox`: serve the sandbox provider until Ctrl-C or SIGTERM."""

import logging
import signal
import sys

from django.core.management.base import BaseCommand

from sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxServer


class Command(BaseCommand):
    help = "Run the sandbox provider (HubSpot, Salesforce, Greenhouse, Lever, Workday, PandaDoc, Clearbit)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
        parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
        parser.add_argument(
            "--state-file", help="Keep accounts, credentials and records across restarts in this file."
        )

    def handle(self, *args, **options):
        logger = logging.getLogger("sandbox")
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        server = SandboxServer(
            host=options["host"],
            port=options["port"],
            client_id=options["client_id"],
            client_secret=options["client_secret"],
            state_file=options["state_file"],
        )

        def stop(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(
            f"Sandbox provider on {server.url} (providers under /<slug>, control under /_control); "
            "Ctrl-C to stop."
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Sandbox provider stopped.")
