#!/usr/bin/python3
"""Test SMTP server for the LLR Transitions Hub.

A real SMTP server (aiosmtpd) bound to a loopback address that stores every
accepted message in a Maildir, so tests can assert on what the services sent.

Behaviour:
  * every accepted message is delivered once into the Maildir given with
    --maildir (its new/ folder), with two headers prepended the way a delivery
    agent would: "Return-Path: <envelope sender>" and
    "X-Envelope-To: <rcpt>, <rcpt>...";
  * any recipient whose domain is invalid.example.org is refused at RCPT time
    with "550 5.1.1 mailbox unavailable" (for bad-recipient tests);
  * STARTTLS is offered only when --tls-cert and --tls-key are given;
  * one line per message (and per refused recipient) is appended to --log;
  * runs until SIGTERM or SIGINT.

Started by scripts/infra.sh (hub_smtp_start); can be run by hand:
  /usr/bin/python3 scripts/infra/smtp_server.py --port 2525 --maildir /tmp/mail
"""

import argparse
import datetime
import logging
import mailbox
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer

REFUSED_DOMAIN = "invalid.example.org"


def _domain_of(address):
    address = address.strip().strip("<>")
    _, _, domain = address.rpartition("@")
    return domain.lower()


def _first_header(content, name):
    """Return the first value of header `name` in raw message bytes, or ''."""
    head = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    prefix = name.lower().encode("ascii") + b":"
    for line in head.splitlines():
        if line.lower().startswith(prefix):
            return line[len(prefix):].strip().decode("utf-8", "replace")
    return ""


class MaildirHandler:
    """aiosmtpd handler: refuses the test-only bad domain, stores the rest."""

    def __init__(self, maildir_path, log_path):
        self.maildir = mailbox.Maildir(maildir_path, create=True)
        self.log_path = log_path
        self.lock = threading.Lock()

    def _log(self, line):
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        with self.lock, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"{stamp} {line}\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if _domain_of(address) == REFUSED_DOMAIN:
            self._log(f"refused rcpt=<{address}> peer={session.peer[0]}")
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        prefix = (
            f"Return-Path: <{envelope.mail_from}>\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode("utf-8")
        with self.lock:
            key = self.maildir.add(mailbox.MaildirMessage(prefix + content))
        subject = _first_header(content, "Subject")
        message_id = _first_header(content, "Message-ID")
        self._log(
            f"delivered key={key} from=<{envelope.mail_from}> "
            f"to={','.join('<%s>' % r for r in envelope.rcpt_tos)} size={len(content)} "
            f"message-id={message_id} subject={subject!r}"
        )
        return "250 2.0.0 OK: queued as " + key


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True, help="Maildir to deliver into (created)")
    parser.add_argument("--log", default=None, help="one line per message (default: <maildir>/../smtp.log)")
    parser.add_argument("--ready-file", default=None, help="written with our pid once listening")
    parser.add_argument("--tls-cert", default=None, help="PEM certificate: enables STARTTLS")
    parser.add_argument("--tls-key", default=None, help="PEM private key for --tls-cert")
    args = parser.parse_args()

    log_path = args.log or os.path.join(os.path.dirname(os.path.abspath(args.maildir)), "smtp.log")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    tls_context = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            parser.error("--tls-cert and --tls-key go together")
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    handler = MaildirHandler(args.maildir, log_path)
    controller = Controller(
        handler,
        hostname=args.host,
        port=args.port,
        server_hostname="hub-test-smtp.localhost",
        ident="LLR Hub test SMTP",
        decode_data=False,
        enable_SMTPUTF8=True,
        tls_context=tls_context,
        require_starttls=False,
    )

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    controller.start()  # returns once the server answers on the port
    handler._log(f"listening on {args.host}:{args.port} maildir={args.maildir} "
                 f"starttls={'on' if tls_context else 'off'} pid={os.getpid()}")
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as ready:
            ready.write(f"{os.getpid()}\n")
        os.replace(tmp, args.ready_file)

    while not stop.wait(3600):
        pass
    controller.stop()
    handler._log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
