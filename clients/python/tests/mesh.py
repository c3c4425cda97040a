"""A real mesh for the tests: the built ``pdm`` binary (``PDM_BIN``, as ``make
clients-test`` sets it) runs ``pdm serve all`` in a temporary directory on free ports, with
its own certificates (``pdm certs init``) and database (SQLite files, or a PostgreSQL
database of its own when ``PDM_TEST_DATABASE=postgres``), as tests/e2e/src/process.rs does.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import grpc

from pdm_client import Config, ConsentClient, TlsFiles
from pdm_client._gen.pdm.common.v1 import common_pb2
from pdm_client._gen.pdm.identity.v1 import identity_pb2, identity_pb2_grpc

SERVING = b"\x08\x01"  # grpc.health.v1.HealthCheckResponse{status: SERVING}


def binary() -> Path:
    path = os.environ.get("PDM_BIN")
    if not path:
        raise RuntimeError(
            "PDM_BIN is not set: run the tests with `make clients-test`, which builds the "
            "binary (cargo build --bin pdm) and points PDM_BIN at it"
        )
    if not Path(path).is_file():
        raise RuntimeError(f"PDM_BIN={path} is not a file")
    return Path(path)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Database:
    """SQLite (the default) or a PostgreSQL database made for one mesh."""

    def __init__(self) -> None:
        self.postgres = Mesh.postgres_wanted()
        self.admin_url = os.environ.get(
            "PDM_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        )
        self.name = f"pdm_py_{uuid.uuid4().hex}"
        if self.postgres:
            self._psql(f'CREATE DATABASE "{self.name}"')

    def _psql(self, sql: str) -> None:
        subprocess.run(
            ["psql", self.admin_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str | None:
        if not self.postgres:
            return None
        return f"{self.admin_url.rsplit('/', 1)[0]}/{self.name}"

    def drop(self) -> None:
        if self.postgres:
            self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Process:
    """One ``pdm serve <services>`` process."""

    def __init__(self, mesh: Mesh, services: str, ports: dict[str, tuple[int, int]]) -> None:
        self.mesh, self.services, self.ports = mesh, services, ports
        self.child: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PDM_") and k != "RUST_LOG"}
        env.update(self.mesh.settings())
        for name, (grpc_port, health_port) in self.ports.items():
            env[f"PDM__SERVICES__{name.upper()}__PORT"] = str(grpc_port)
            env[f"PDM__SERVICES__{name.upper()}__HEALTH_PORT"] = str(health_port)
        with open(self.mesh.dir / "pdm.log", "ab") as log:
            self.child = subprocess.Popen(
                [str(self.mesh.bin), "serve", self.services],
                cwd=self.mesh.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        names = self.ports if self.services != "all" else self.mesh.ports
        limit = time.monotonic() + 90
        for name in (n for n in names if self.services == "all" or n in self.services.split(",")):
            while not self._serving(self.ports[name][1]):
                if self.child.poll() is not None:
                    raise RuntimeError(f"pdm exited while starting; its log:\n{self.mesh.log_tail()}")
                if time.monotonic() > limit:
                    raise RuntimeError(f"{name} not serving after 90 s:\n{self.mesh.log_tail()}")
                time.sleep(0.05)

    @staticmethod
    def _serving(port: int) -> bool:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )
            try:
                return check(b"", timeout=2) == SERVING
            except grpc.RpcError:
                return False

    def kill(self) -> None:
        """SIGKILL: no drain (the gate's stream is cut, as by a crash)."""
        if self.child is not None:
            self.child.send_signal(signal.SIGKILL)
            self.child.wait(timeout=30)
            self.child = None


class Mesh:
    """``pdm serve all`` in a directory of its own."""

    @staticmethod
    def postgres_wanted() -> bool:
        return os.environ.get("PDM_TEST_DATABASE", "sqlite") in ("postgres", "postgresql")

    def __init__(self) -> None:
        self.bin = binary()
        self._tmp = tempfile.TemporaryDirectory(prefix="pdm-py-")
        self.dir = Path(self._tmp.name)
        self.database = Database()
        listed = subprocess.run([str(self.bin), "services"], check=True, capture_output=True, text=True)
        names = [line.split()[0] for line in listed.stdout.splitlines() if "built" in line]
        ports = free_ports(2 * len(names))
        self.ports = {n: (ports[2 * i], ports[2 * i + 1]) for i, n in enumerate(names)}
        subprocess.run(
            [str(self.bin), "certs", "init", "--clients", "demo,outsider"],
            cwd=self.dir,
            env={**os.environ, "PDM__DATA_DIR": str(self.data_dir)},
            check=True,
            capture_output=True,
        )
        self.main = Process(self, "all", self.ports)
        self.replicas: list[Process] = []
        self.main.start()

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def settings(self) -> dict[str, str]:
        env = {
            "PDM__DATA_DIR": str(self.data_dir),
            "PDM__LOG__FORMAT": "json",
            # The web front (issue 20) on any free port: meshes run side by side.
            "PDM__WEB__PORT": "0",
            # serve all holds a pool per service and the web front's: meshes side by side
            # (two consent replicas) must fit PostgreSQL's 100 connections.
            "PDM__DATABASE__MAX_CONNECTIONS": "4",
        }
        if self.database.url is not None:
            env["PDM__DATABASE__URL"] = self.database.url
        return env

    def log_tail(self, lines: int = 40) -> str:
        text = (self.dir / "pdm.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def restart(self) -> None:
        """Kills ``pdm serve all`` and starts it again: same directory, ports, database."""
        self.main.kill()
        self.main.start()

    def start_replica(self) -> int:
        """A second consent (``pdm serve consent``) on the same database; its port."""
        grpc_port, health_port = free_ports(2)
        ports = dict(self.ports)
        ports["consent"] = (grpc_port, health_port)
        replica = Process(self, "consent", ports)
        replica.start()
        self.replicas.append(replica)
        return grpc_port

    def stop(self) -> None:
        for process in [*self.replicas, self.main]:
            process.kill()
        self.database.drop()
        self._tmp.cleanup()

    # -- clients, as a company service configures them

    def tls(self) -> TlsFiles:
        return TlsFiles.client(self.data_dir / "certs", "demo")

    def endpoints(self) -> dict[str, str]:
        """Every service of the mesh, as ``Config.endpoints`` names them."""
        return {name: f"http://127.0.0.1:{grpc_port}" for name, (grpc_port, _) in self.ports.items()}

    def config(self, port: int | None = None, **overrides: object) -> Config:
        port = port or self.ports["consent"][0]
        return Config(
            endpoints={**self.endpoints(), "consent": f"http://127.0.0.1:{port}"},
            **{"tls": self.tls(), **overrides},  # type: ignore[arg-type]
        )

    def admin(self, *args: str) -> str:
        """``pdm <args>`` as the privacy team (the mesh's admin certificate); its output."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PDM_")}
        env.update(self.settings())
        env["PDM__TLS__DIR"] = str(self.data_dir / "certs")
        for name, (grpc_port, _) in self.ports.items():
            env[f"PDM__SERVICES__{name.upper()}__ENDPOINT"] = f"http://127.0.0.1:{grpc_port}"
        done = subprocess.run(
            [str(self.bin), *args], cwd=self.dir, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"pdm {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def consent(self, port: int | None = None) -> ConsentClient:
        return ConsentClient(self.config(port))

    def sign_up(self, region: int = common_pb2.REGION_EEA) -> str:
        """A new account created by client ``demo`` (which links it): its subject id."""
        with self.config().channel("identity") as channel:
            tag = secrets.token_hex(6)
            account = identity_pb2_grpc.IdentityServiceStub(channel).CreateAccount(
                identity_pb2.CreateAccountRequest(
                    first_name="Test",
                    last_name=f"Person{tag}",
                    email=f"test.{tag}@example.org",
                    region=region,
                    password=secrets.token_urlsafe(18),
                ),
                timeout=30,
            )
            return account.account.subject_id
