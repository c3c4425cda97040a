"""A client's SPIFFE identity (``PDM_SPIFFE_ID``): it names the client when only the
certificate directory is given, and a channel is made only with a certificate for that id
(checked against the leaf certificate's URI SAN, on the mesh's own certificates)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mesh import Mesh
from pdm_client import Config, ConfigError, ConsentClient, PdmClient, TlsFiles, Written

DEMO = "spiffe://pdm.local/client/demo"
OUTSIDER = "spiffe://pdm.local/client/outsider"


def test_the_id_names_the_client_when_the_name_is_not_given() -> None:
    config = Config.from_env(
        {
            "PDM_ENDPOINT_CONSENT": "http://consent.pdm:50052",
            "PDM_CERT_DIR": "/certs",
            "PDM_SPIFFE_ID": "spiffe://pdm.local/client/newsletter",
        }
    )
    assert config.spiffe_id == "spiffe://pdm.local/client/newsletter"
    assert config.tls == TlsFiles.client("/certs", "newsletter")


@pytest.mark.parametrize(
    "spiffe_id",
    [
        "spiffe://pdm.local/svc/consent",
        "spiffe://pdm.local/admin",
        "spiffe://pdm.local/client/",
        "spiffe://pdm.local/client/news/letter",
        "spiffe://pdm.local/client/Newsletter",
        "spiffe:///client/newsletter",
        "https://pdm.local/client/newsletter",
    ],
)
def test_an_id_that_is_not_a_company_client_s_is_a_configuration_error(spiffe_id: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env(
            {
                "PDM_ENDPOINT_CONSENT": "http://consent.pdm:50052",
                "PDM_CERT_DIR": "/certs",
                "PDM_SPIFFE_ID": spiffe_id,
            }
        )
    [problem] = raised.value.problems
    assert problem.startswith("PDM_SPIFFE_ID: "), problem


def test_an_id_and_a_client_name_that_disagree_are_a_configuration_error() -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env(
            {
                "PDM_ENDPOINT_CONSENT": "http://consent.pdm:50052",
                "PDM_CERT_DIR": "/certs",
                "PDM_CLIENT_NAME": "billing",
                "PDM_SPIFFE_ID": "spiffe://pdm.local/client/newsletter",
            }
        )
    assert raised.value.problems == [
        "PDM_SPIFFE_ID: names client newsletter, PDM_CLIENT_NAME is billing"
    ]


def test_the_certificate_for_the_id_calls_and_another_s_is_refused(
    session_mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    certs = session_mesh.data_dir / "certs"
    monkeypatch.setenv("PDM_ENDPOINT_CONSENT", session_mesh.endpoints()["consent"])
    monkeypatch.setenv("PDM_CERT_DIR", str(certs))
    monkeypatch.setenv("PDM_SPIFFE_ID", DEMO)
    monkeypatch.delenv("PDM_CLIENT_NAME", raising=False)
    with PdmClient.from_env() as pdm:
        assert pdm.config.tls == TlsFiles.client(certs, "demo")
        assert isinstance(pdm.consent.ledger_position(), Written)

    # demo's certificate files, presented as outsider's identity: no channel is made.
    with pytest.raises(ConfigError) as raised:
        ConsentClient(Config(session_mesh.endpoints(), tls=session_mesh.tls(), spiffe_id=OUTSIDER))
    assert raised.value.problems == [
        f"PDM_SPIFFE_ID: the certificate is for {DEMO}, not {OUTSIDER}"
    ]


def test_a_certificate_without_a_uri_san_is_refused(session_mesh: Mesh) -> None:
    demo = session_mesh.tls()
    # The CA's certificate names no caller.
    anonymous = TlsFiles(demo.ca, demo.ca, demo.key)
    with pytest.raises(ConfigError) as raised:
        ConsentClient(Config(session_mesh.endpoints(), tls=anonymous, spiffe_id=DEMO))
    assert raised.value.problems == [f"PDM_SPIFFE_ID: the certificate is for no URI SAN, not {DEMO}"]


def test_a_rotated_certificate_for_another_id_is_not_used(
    session_mesh: Mesh, tmp_path: Path
) -> None:
    issued = session_mesh.data_dir / "certs"
    files = TlsFiles(tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key")
    for source, target in zip(session_mesh.tls().__dict__.values(), files.__dict__.values()):
        shutil.copyfile(source, target)
    config = Config(session_mesh.endpoints(), tls=files, spiffe_id=DEMO, reload_interval=0)
    with ConsentClient(config) as consent:
        consent.ledger_position()
        shutil.copyfile(issued / "client-outsider.pem", files.cert)
        shutil.copyfile(issued / "client-outsider.key", files.key)
        # The files changed, but not to this client's: the channel in use stays.
        assert isinstance(consent.ledger_position(), Written)
        assert consent._channels.reloads == 0
