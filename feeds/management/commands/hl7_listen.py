"""Listen for HL7 v2 messages over MLLP: `manage.py hl7_listen --host 127.0.0.1 --port 2575`.

Every connection is matched to a configured feed (admin → HL7 v2 feeds) by its address or TLS client certificate;
each message is stored, applied and acknowledged (feeds.listener explains what each kind of bad input gets).
With `--tls-cert` (and `--tls-key`) the listener speaks TLS; with `--tls-client-ca` a client certificate signed
by that CA is required, and its SHA-256 fingerprint can name the feed. Runs until SIGTERM or SIGINT, then
finishes the messages in flight. Run one per port; two processes on two ports share the load.
"""

from django.core.management.base import BaseCommand, CommandError

from feeds.listener import Listener, run, tls_context


class Command(BaseCommand):
    help = "Receive HL7 v2 messages (ADT, ORU) over MLLP from configured hospital feeds."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=2575, help="TCP port (default 2575, MLLP's usual).")
        parser.add_argument("--tls-cert", default="", help="PEM certificate (chain) for TLS.")
        parser.add_argument("--tls-key", default="", help="PEM private key, if not in the certificate file.")
        parser.add_argument("--tls-client-ca", default="", help="PEM CA bundle: require client certificates it signed.")
        parser.add_argument("--workers", type=int, default=4, help="Threads applying messages (default 4).")

    def handle(self, *args, host, port, tls_cert, tls_key, tls_client_ca, workers, **options):
        if (tls_key or tls_client_ca) and not tls_cert:
            raise CommandError("--tls-key and --tls-client-ca need --tls-cert.")
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        try:
            tls = tls_context(tls_cert, tls_key or None, tls_client_ca or None) if tls_cert else None
        except (OSError, ValueError) as exc:
            raise CommandError(f"TLS: {exc}") from exc
        run(Listener(host, port, tls=tls, workers=workers))
