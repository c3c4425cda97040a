"""A real SMTP server (aiosmtpd) for the rights service's delivery test, on loopback.

    python smtpd.py --mode starttls|implicit|plain --out DIR
                    [--cert PEM --key PEM] [--user NAME --password-file FILE [--login-only]]

Listens on 127.0.0.1, on a port the system picks, and prints `port <n>` once it accepts
connections. Modes:

- starttls: plain at first, offers STARTTLS and refuses MAIL until it was used;
- implicit: TLS from the first byte (SMTPS);
- plain: offers no STARTTLS at all, and would take mail in the clear.

With --user, AUTH (PLAIN, LOGIN; LOGIN alone with --login-only; over TLS only) is
required before MAIL and checked against that user and the password file. What it sees is written under DIR, for the test
to read: `events.jsonl`, one line per command that matters (ehlo, starttls, auth, mail,
rcpt, data) saying whether the session was encrypted at that point, and `<n>.json` per
message accepted (sender, recipients, TLS version, authenticated user, the content). It
runs until its standard input closes (the test ended or died) or it is terminated.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import warnings
from email import message_from_bytes, policy

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def tls_version(server):
    transport = server.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    return ssl_object.version() if ssl_object is not None else None


class Recorder:
    """The aiosmtpd handler: records events and messages, accepts everything else."""

    def __init__(self, out):
        self.out = out
        self.count = 0

    def event(self, server, session, name, **fields):
        line = {"event": name, "tls": tls_version(server), **fields}
        with open(os.path.join(self.out, "events.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.event(server, session, "ehlo", offered=[r[4:] for r in responses])
        return responses

    def handle_STARTTLS(self, server, session, envelope):
        self.event(server, session, "starttls")
        return True

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.event(server, session, "mail", authenticated=bool(session.authenticated))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.event(server, session, "rcpt")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.event(server, session, "data")
        self.count += 1
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": tls_version(server),
            "auth_user": (
                session.auth_data.login.decode()
                if isinstance(session.auth_data, LoginPassword)
                else None
            ),
            "headers": {k: str(v) for k, v in parsed.items()},
            "text": body.get_content() if body is not None else "",
            "raw": envelope.original_content.decode("utf-8", "replace"),
        }
        path = os.path.join(self.out, f"{self.count}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        return "250 2.0.0 Message accepted"


def authenticator(recorder, user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        recorder.event(server, session, "auth", mechanism=mechanism, success=ok)
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    return check


async def serve(args):
    recorder = Recorder(args.out)
    context = None
    if args.mode in ("starttls", "implicit"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.cert, args.key)
    auth = None
    if args.user:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.read().rstrip("\r\n")
        auth = authenticator(recorder, args.user, password)

    def protocol():
        return SMTP(
            recorder,
            hostname="smtp.test",
            tls_context=context if args.mode == "starttls" else None,
            require_starttls=args.mode == "starttls",
            authenticator=auth,
            auth_required=auth is not None,
            # aiosmtpd only knows of TLS it negotiated itself (STARTTLS); with implicit TLS
            # every byte is encrypted anyway, and the events record it.
            auth_require_tls=args.mode == "starttls",
            auth_exclude_mechanism=["PLAIN"] if args.login_only else None,
            enable_SMTPUTF8=True,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        protocol,
        host="127.0.0.1",
        port=0,
        ssl=context if args.mode == "implicit" else None,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)
    # Runs until stdin closes: the test's end, whichever way it ends.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


def main():
    # aiosmtpd 1.4 warns about its own use of the deprecated Session.login_data.
    warnings.filterwarnings("ignore", module="aiosmtpd")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["starttls", "implicit", "plain"], required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password-file")
    parser.add_argument("--login-only", action="store_true")
    args = parser.parse_args()
    if args.mode != "plain" and not (args.cert and args.key):
        parser.error("--cert and --key are needed for TLS")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
