"""The Python example (examples/python/newsletter.py) run as a company service runs it: a
process of its own, configured only through the environment, against the test mesh. A
subject who opted out of email is skipped with the reason and one who agreed gets the
message; nothing printed names a recipient; a gate that cannot reach consent holds the
messages back (exit 75); a bad configuration exits 64 naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mesh import Mesh, free_ports
from pdm_client import Channel, Grant, MessageKind, Reason

NEWSLETTER = Path(__file__).resolve().parents[3] / "examples" / "python" / "newsletter.py"
TEXT_HASH = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"


def company_env(mesh: Mesh, consent_port: int | None = None, **extra: str) -> dict[str, str]:
    """The environment a company service is deployed with (nothing else of pdm's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDM_")}
    env.update(
        {
            "PDM_ENDPOINT_CONSENT": f"http://127.0.0.1:{consent_port or mesh.ports['consent'][0]}",
            "PDM_CERT_DIR": str(mesh.data_dir / "certs"),
            "PDM_CLIENT_NAME": "demo",
            **extra,
        }
    )
    return env


def newsletter(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(NEWSLETTER), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_newsletter_skips_an_email_opt_out_and_sends_to_who_agreed(
    shared_mesh: Mesh, tmp_path: Path
) -> None:
    agreed, opted_out, never_asked = (shared_mesh.sign_up() for _ in range(3))
    with shared_mesh.consent() as consent:
        for subject in (agreed, opted_out):
            consent.grant(Grant(subject, "marketing_email", "2024-06-28", TEXT_HASH, "signup"))
        opt_out = consent.set_contact_preference(opted_out, Channel.EMAIL, True, "preferences")
        # Every write is applied on the service before the run (read-your-writes).
        check = consent.can_contact(opted_out, Channel.EMAIL, MessageKind.PROMOTIONAL, at_least=opt_out.token)
        assert check.reason is Reason.OPTED_OUT
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(f"# june issue\n{agreed}\n{opted_out}\n\n{never_asked}\n{agreed}\n")

    run = newsletter(company_env(shared_mesh), "--file", str(recipients))

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "message 1: sent",
        "message 2: skipped (opted_out)",
        "message 3: skipped (no_consent)",
        "message 4: skipped (duplicate)",
        "sent 1, skipped 3 (duplicate: 1, no_consent: 1, opted_out: 1)",
    ]
    for subject in (agreed, opted_out, never_asked):
        assert subject not in run.stdout + run.stderr, "a recipient's id was printed"

    # The same from the command line's arguments.
    run = newsletter(company_env(shared_mesh), opted_out, agreed)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "message 2: sent",
        "message 1: skipped (opted_out)",
        "sent 1, skipped 1 (opted_out: 1)",
    ]


def test_without_consent_reachable_the_messages_are_held_back(shared_mesh: Mesh) -> None:
    subject = shared_mesh.sign_up()
    (nowhere,) = free_ports(1)
    run = newsletter(company_env(shared_mesh, nowhere, PDM_TIMEOUT_MS="1000"), subject)
    assert run.returncode == 75, (run.stdout, run.stderr)
    lines = run.stdout.splitlines()
    assert lines[0].startswith("message 1: held back (consent unreachable"), lines
    assert lines[-1] == "sent 0, skipped 1 (failed_closed: 1)"
    assert subject not in run.stdout + run.stderr


def test_a_bad_configuration_or_command_line_exits_64(shared_mesh: Mesh) -> None:
    env = company_env(shared_mesh)
    del env["PDM_ENDPOINT_CONSENT"]
    env["PDM_TIMEOUT_MS"] = "soon"
    run = newsletter(env, "0190aaaa-0000-7000-8000-000000000001")
    assert run.returncode == 64
    assert "PDM_ENDPOINT_<SERVICE>" in run.stderr and "PDM_TIMEOUT_MS" in run.stderr, run.stderr
    assert run.stdout == ""
    run = newsletter(company_env(shared_mesh))
    assert run.returncode == 64 and "no recipients" in run.stderr, run.stderr
