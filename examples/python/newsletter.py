#!/usr/bin/env python3
"""newsletter: sends the newsletter to the subjects named on the command line or in a file,
asking pdm's consent gate before each message whether a promotional email may go to that
subject ("You can opt out of receiving promotional messages at any time"). Only allowed
messages are sent; skips are reported with their reason.

    python examples/python/newsletter.py --file recipients.txt
    python examples/python/newsletter.py <subject-id> ...

The recipients file holds one subject id a line (blank lines and ``#`` comments are
ignored). The pdm client is configured from the environment as every company service
configures it: ``PDM_ENDPOINT_CONSENT``, ``PDM_CERT_DIR`` and ``PDM_CLIENT_NAME`` (or
``PDM_CA_FILE``, ``PDM_CERT_FILE``, ``PDM_KEY_FILE``), ``PDM_TIMEOUT_MS``
(clients/python/README.md).

Output names a message by its number in the run, never by its recipient: a subject id is
personal data too. Exit codes: 0 when every message was decided, 64 for a bad command line
or configuration, 75 when some messages were held back because consent could not be
checked (run again later for them).

The same program as examples/rust/src/newsletter.rs, with the same output.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from pdm_client import Channel, ConfigError, ConsentClient, ConsentGate, MessageKind, Verdict

BAD_SETUP = 64  # EX_USAGE-like: nothing was sent
HELD_BACK = 75  # EX_TEMPFAIL: some messages were held back


@dataclass(frozen=True)
class Message:
    """One message of a run."""

    number: int
    """Its number in the run (1-based, in the order of the recipients)."""
    sent: bool
    skip: str | None = None
    """Why it was not sent: the reason's name (``opted_out``), ``failed_closed`` or
    ``duplicate``."""
    why: str | None = None
    """For ``failed_closed``: why no decision could be had (no personal data)."""


@dataclass
class Report:
    """What a run did, message by message."""

    messages: list[Message] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(1 for m in self.messages if m.sent)

    @property
    def skipped(self) -> dict[str, int]:
        """Skipped messages counted by reason, in the reasons' order."""
        counts = Counter(m.skip for m in self.messages if m.skip is not None)
        return dict(sorted(counts.items()))

    @property
    def failed_closed(self) -> int:
        return sum(1 for m in self.messages if m.skip == "failed_closed")

    def __str__(self) -> str:
        """``sent 1, skipped 2 (no_consent: 1, opted_out: 1)``."""
        skipped = self.skipped
        text = f"sent {self.sent}, skipped {sum(skipped.values())}"
        if skipped:
            text += " (" + ", ".join(f"{k}: {n}" for k, n in skipped.items()) + ")"
        return text


def _outcome(number: int, verdict: Verdict) -> Message:
    if verdict.decision is None:
        return Message(number, sent=False, skip="failed_closed", why=verdict.why)
    return Message(number, sent=False, skip=verdict.decision.reason.name.lower())


def send(gate: ConsentGate, recipients: Sequence[str], deliver: Callable[[int, str], None]) -> Report:
    """Sends the newsletter to ``recipients`` (subject ids): each message goes to
    ``deliver`` (with its number and recipient) only when the gate allows a promotional
    email to that subject. One newsletter per person: a repeated recipient is skipped.

    Messages are asked about one after the other, which keeps the example plain; a large
    list would ask from several threads at once (the gate is thread-safe and shares its
    cache between them)."""
    seen: set[str] = set()
    report = Report()
    for number, subject in enumerate(recipients, start=1):
        if subject in seen:
            report.messages.append(Message(number, sent=False, skip="duplicate"))
            continue
        seen.add(subject)
        verdict = gate.can_contact(subject, Channel.EMAIL, MessageKind.PROMOTIONAL)
        if verdict.allowed:
            deliver(number, subject)
            report.messages.append(Message(number, sent=True))
        else:
            report.messages.append(_outcome(number, verdict))
    return report


def parse_recipients(text: str) -> list[str]:
    """Subject ids, one a line; blank lines and ``#`` comments are ignored."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(BAD_SETUP, f"newsletter: {message}\n")


def recipients_from_args(argv: Sequence[str]) -> list[str]:
    """The recipients named by the command line: ``--file <path>`` or the ids themselves.
    A bad command line exits with 64."""
    parser = _Parser(prog="newsletter", description="Sends the newsletter to who allowed it.")
    parser.add_argument("-f", "--file", type=Path, help="one subject id a line")
    parser.add_argument("subjects", nargs="*", metavar="subject-id")
    args = parser.parse_args(argv)
    if args.file is not None and args.subjects:
        parser.error("give --file or subject ids, not both")
    if args.file is not None:
        try:
            recipients = parse_recipients(args.file.read_text())
        except OSError as e:
            parser.error(f"cannot read the recipients file {args.file}: {e.strerror}")
    else:
        recipients = [s.strip() for s in args.subjects if s.strip()]
    if not recipients:
        parser.error("no recipients")
    return recipients


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    recipients = recipients_from_args(sys.argv[1:] if argv is None else argv)
    try:
        consent = ConsentClient.from_env()
    except ConfigError as e:
        print(f"newsletter: {e}", file=sys.stderr)
        return BAD_SETUP

    def deliver(number: int, _subject: str) -> None:
        # The "mailer": the message number only, never the recipient.
        print(f"message {number}: sent", flush=True)

    with consent, ConsentGate(consent) as gate:
        report = send(gate, recipients, deliver)
    for message in report.messages:
        if message.skip == "failed_closed":
            print(f"message {message.number}: held back ({message.why})")
        elif message.skip is not None:
            print(f"message {message.number}: skipped ({message.skip})")
    print(report)
    return HELD_BACK if report.failed_closed else 0


if __name__ == "__main__":
    sys.exit(main())
