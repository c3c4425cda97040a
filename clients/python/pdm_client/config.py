"""A client's configuration: endpoints, certificates, timeout; from the environment (the
same variables as the Rust client) or in code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import grpc.aio

from .retry import RetryPolicy

DEFAULT_TIMEOUT = 5.0


class ConfigError(ValueError):
    """What is wrong with a client's configuration: every problem, each with its key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("pdm client configuration: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TlsFiles:
    """The files of mutual TLS: the mesh's CA, this client's certificate and key (PEM)."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def client(cls, directory: str | os.PathLike[str], name: str) -> TlsFiles:
        """The certificates of company client ``name`` laid out as ``pdm certs init`` writes
        them: ``ca.pem``, ``client-<name>.pem``, ``client-<name>.key``."""
        d = Path(directory)
        return cls(d / "ca.pem", d / f"client-{name}.pem", d / f"client-{name}.key")

    def stamp(self) -> tuple[tuple[int, int] | None, ...]:
        """What changes when a file is rewritten: each file's modification time and size
        (None for a file that is missing)."""

        def one(path: Path) -> tuple[int, int] | None:
            try:
                st = path.stat()
            except OSError:
                return None
            return (st.st_mtime_ns, st.st_size)

        return (one(self.ca), one(self.cert), one(self.key))


@dataclass(frozen=True)
class Config:
    """Where the services answer and how to reach them."""

    endpoints: Mapping[str, str]
    """Service name -> URL (``http://consent.pdm:50052``: the scheme stays ``http``, TLS
    comes from the certificates)."""
    tls: TlsFiles | None = None
    """Mutual TLS; None speaks plaintext (a mesh behind a sidecar)."""
    timeout: float = DEFAULT_TIMEOUT
    """The deadline of a call in seconds, retries included."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    server_name: str | None = None
    """The name the server's certificate is checked against, when it is not the
    endpoint's host (gRPC's ``grpc.ssl_target_name_override``)."""
    reload_interval: float = 10.0
    """How often (at most, in seconds) the certificate files are looked at for a change;
    a changed set is used from the next call on."""
    spiffe_id: str | None = None
    """This client's own identity (``spiffe://pdm.local/client/newsletter``). With
    certificates, the leaf certificate's URI SAN must be this id: a channel is not made
    with another's certificate (:class:`ConfigError` naming ``PDM_SPIFFE_ID``)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Reads ``PDM_ENDPOINT_<SERVICE>`` (e.g. ``PDM_ENDPOINT_CONSENT``), ``PDM_CERT_DIR``
        with ``PDM_CLIENT_NAME`` (or ``PDM_CA_FILE``, ``PDM_CERT_FILE`` and
        ``PDM_KEY_FILE``), ``PDM_SPIFFE_ID`` (with ``PDM_CERT_DIR``, it gives the client
        name when ``PDM_CLIENT_NAME`` is not set), ``PDM_TIMEOUT_MS``. Raises
        :class:`ConfigError` naming every problem."""
        env = dict(os.environ if environ is None else environ)
        problems: list[str] = []
        endpoints = {
            key.removeprefix("PDM_ENDPOINT_").lower(): value
            for key, value in sorted(env.items())
            if key.startswith("PDM_ENDPOINT_") and len(key) > len("PDM_ENDPOINT_")
        }
        if not endpoints:
            problems.append("PDM_ENDPOINT_<SERVICE>: no endpoint given")
        for service, url in endpoints.items():
            if target(url) is None:
                problems.append(f"PDM_ENDPOINT_{service.upper()}: not a URL with a host and port")
        tls: TlsFiles | None = None
        files = [env.get(k) for k in ("PDM_CA_FILE", "PDM_CERT_FILE", "PDM_KEY_FILE")]
        cert_dir, name = env.get("PDM_CERT_DIR"), env.get("PDM_CLIENT_NAME")
        spiffe_id = env.get("PDM_SPIFFE_ID")
        named = client_name(spiffe_id) if spiffe_id is not None else None
        if spiffe_id is not None and named is None:
            problems.append(f"PDM_SPIFFE_ID: {SPIFFE_FORM}, not {spiffe_id!r}")
        elif named is not None and name is not None and named != name:
            problems.append(f"PDM_SPIFFE_ID: names client {named}, PDM_CLIENT_NAME is {name}")
        if cert_dir is not None and name is None:
            name = named
        if cert_dir is not None and name is not None:
            tls = TlsFiles.client(cert_dir, name)
        elif cert_dir is not None and spiffe_id is None:
            problems.append("PDM_CLIENT_NAME: required with PDM_CERT_DIR (or PDM_SPIFFE_ID)")
        elif all(f is not None for f in files):
            tls = TlsFiles(*(Path(f) for f in files if f is not None))
        elif any(f is not None for f in files):
            problems.append("PDM_CA_FILE, PDM_CERT_FILE, PDM_KEY_FILE: give all three or none")
        timeout = DEFAULT_TIMEOUT
        raw = env.get("PDM_TIMEOUT_MS")
        if raw is not None:
            if raw.isdigit() and 1 <= int(raw) <= 600_000:
                timeout = int(raw) / 1000
            else:
                problems.append("PDM_TIMEOUT_MS: a whole number of milliseconds, 1 to 600000")
        if problems:
            raise ConfigError(problems)
        return cls(endpoints=endpoints, tls=tls, timeout=timeout, spiffe_id=spiffe_id)

    def endpoint(self, service: str) -> str:
        """The target (``host:port``) of ``service``."""
        url = self.endpoints.get(service)
        if url is None:
            raise ConfigError([f"PDM_ENDPOINT_{service.upper()}: not configured"])
        found = target(url)
        if found is None:
            raise ConfigError([f"PDM_ENDPOINT_{service.upper()}: not a URL with a host and port"])
        return found

    def _credentials(self) -> grpc.ChannelCredentials | None:
        if self.tls is None:
            return None
        try:
            ca, cert, key = (p.read_bytes() for p in (self.tls.ca, self.tls.cert, self.tls.key))
        except OSError as e:
            raise ConfigError([f"certificates: {e.filename}: {e.strerror}"]) from e
        if self.spiffe_id is not None:
            found = certificate_ids(cert)
            if found != [self.spiffe_id]:
                shown = ", ".join(found) or "no URI SAN"
                raise ConfigError(
                    [f"PDM_SPIFFE_ID: the certificate is for {shown}, not {self.spiffe_id}"]
                )
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )

    def _options(self) -> list[tuple[str, str | int]]:
        options: list[tuple[str, str | int]] = [
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # Reconnect quickly after a restart of the mesh (the gate's stream).
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2_000),
        ]
        if self.server_name is not None:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return options

    def channel(self, service: str) -> grpc.Channel:
        """A channel to ``service`` (connects lazily: a mesh that is down shows on the
        first call, as :class:`~pdm_client.Unavailable`)."""
        address, credentials = self.endpoint(service), self._credentials()
        if credentials is None:
            return grpc.insecure_channel(address, options=self._options())
        return grpc.secure_channel(address, credentials, options=self._options())

    def aio_channel(self, service: str) -> grpc.aio.Channel:
        """:meth:`channel` for asyncio (create it inside the running event loop)."""
        address, credentials = self.endpoint(service), self._credentials()
        if credentials is None:
            return grpc.aio.insecure_channel(address, options=self._options())
        return grpc.aio.secure_channel(address, credentials, options=self._options())


def target(url: str) -> str | None:
    """``http://127.0.0.1:50052`` -> ``127.0.0.1:50052`` (a bare ``host:port`` as is)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


SPIFFE_FORM = "a company client's id is spiffe://<trust domain>/client/<name>"


def client_name(spiffe_id: str) -> str | None:
    """The name in a company client's SPIFFE id (``spiffe://pdm.local/client/newsletter``
    gives ``newsletter``), as the mesh reads it: 1-64 lower-case letters, digits, ``-``
    and ``_``. None for any other id."""
    rest = spiffe_id.removeprefix("spiffe://")
    if rest == spiffe_id:
        return None
    domain, _, path = rest.partition("/")
    kind, _, name = path.partition("/")
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    if not domain or kind != "client" or not 1 <= len(name) <= 64 or set(name) - allowed:
        return None
    return name


def certificate_ids(pem: bytes) -> list[str]:
    """The URI SANs of the leaf (first) certificate of a PEM chain."""
    from cryptography import x509  # imported here: only a SPIFFE id check needs it

    try:
        leaf = x509.load_pem_x509_certificates(pem)[0]
    except ValueError as e:
        raise ConfigError([f"PDM_SPIFFE_ID: the certificate cannot be read: {e}"]) from e
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(names.get_values_for_type(x509.UniformResourceIdentifier))
