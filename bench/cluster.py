"""Several `storefront serve` hosts on one machine: network namespaces, HAProxy, Redis.

Each instance runs in a network namespace of its own, joined to the root
namespace by a veth pair (`10.213.S.4i+1` on the host side, `10.213.S.4i+2`
inside, S a random subnet not in use), so it is reached only at its own
address, like a separate host. Shared services run in the root namespace on
`Network.service_address` (the first host-side address; the namespaces route
to it through their default route): a private `redis-server` started here,
and whatever the caller puts in front of PostgreSQL (which listens on
127.0.0.1 only, out of a namespace's reach): PgBouncer, or `Forwarder`.
HAProxy runs in the root namespace on 127.0.0.1, from deploy/haproxy.cfg.

Needs root and `ip` (iproute2), `haproxy` and `redis-server`. Every namespace,
interface and process is removed on exit, also after a failure; names carry a
random id, so concurrent runs do not collide.

Example:
    with Network(2) as network, RedisServer(network.service_address) as redis:
        ...
        with Instance(network.hosts[0], env) as a:  # started, not yet ready
            a.wait_until_ready()
            with HAProxy([a.address]) as lb:
                httpx.get(f"{lb.url}/readyz")
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"
INSTANCE_PORT = 8000
LOOPBACK = "127.0.0.1"


class Unavailable(Exception):
    """What this machine lacks to run the hosts (root, `ip netns`, haproxy, redis-server)."""


def require_tools() -> None:
    """Raises `Unavailable` naming what is missing."""
    missing = [tool for tool in ("ip", "haproxy", "redis-server") if _which(tool) is None]
    if missing:
        raise Unavailable("not installed: " + ", ".join(missing) + " (`make scaleout-deps`)")
    if os.geteuid() != 0:
        raise Unavailable("network namespaces need root")


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ip = _which("ip")
    if ip is None:
        raise Unavailable("not installed: ip (iproute2)")
    result = subprocess.run([ip, *args], capture_output=True, text=True, timeout=10, check=False)
    if check and result.returncode != 0:
        raise Unavailable(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Host:
    """One network namespace: its name, its address, and the root namespace's end."""

    namespace: str
    address: str
    gateway: str
    host_interface: str


class Network:
    """`count` namespaces, each joined to the root namespace by a veth pair."""

    def __init__(self, count: int) -> None:
        self.id = secrets.token_hex(3)
        self.count = count
        self.hosts: list[Host] = []

    @property
    def service_address(self) -> str:
        """An address of the root namespace every namespace can reach."""
        return self.hosts[0].gateway

    @property
    def subnet(self) -> str:
        """The /24 all the addresses are in (for TRUSTED_PROXIES)."""
        return self.hosts[0].gateway.rsplit(".", 1)[0] + ".0/24"

    def __enter__(self) -> Self:
        require_tools()
        prefix = _unused_subnet()
        try:
            for i in range(self.count):
                self.hosts.append(self._add(i, prefix))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _add(self, i: int, prefix: str) -> Host:
        namespace, outside, inside = f"sf{self.id}n{i}", f"sf{self.id}h{i}", f"sf{self.id}i{i}"
        gateway, address = f"{prefix}.{4 * i + 1}", f"{prefix}.{4 * i + 2}"
        _ip("netns", "add", namespace)
        host = Host(namespace, address, gateway, outside)
        self.hosts.append(host)  # from here on, __exit__ removes it
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", namespace)
        _ip("addr", "add", f"{gateway}/30", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", namespace, "addr", "add", f"{address}/30", "dev", inside)
        _ip("-n", namespace, "link", "set", inside, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", namespace, "route", "add", "default", "via", gateway)
        self.hosts.pop()
        return host

    def __exit__(self, *_exc: object) -> None:
        for host in self.hosts:
            # Deleting the namespace deletes its veth end, and with it the pair.
            _ip("netns", "delete", host.namespace, check=False)
            _ip("link", "delete", host.host_interface, check=False)
        self.hosts.clear()


def _unused_subnet() -> str:
    """`10.213.S` with no address of this machine in it."""
    used = _ip("-4", "-o", "addr", "show").stdout
    for _ in range(100):
        prefix = f"10.213.{random.randrange(256)}"
        if f" {prefix}." not in used:
            return prefix
    raise Unavailable("no free 10.213.x.0/24 subnet")


class _Process:
    """A subprocess with its output in a temporary file, stopped on exit."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def _start(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def terminate(self) -> None:
        """SIGTERM, without waiting (`__exit__` waits)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop()
        self.log.close()


class RedisServer(_Process):
    """A private `redis-server` on `address` (no persistence), for the instances to share."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address
        self.port = free_port(address)

    @property
    def url(self) -> str:
        return f"redis://{self.address}:{self.port}/0"

    def __enter__(self) -> Self:
        binary = _which("redis-server")
        if binary is None:
            raise Unavailable("not installed: redis-server")
        options = {"bind": self.address, "port": str(self.port), "save": "", "appendonly": "no"}
        arguments = [word for key, value in options.items() for word in (f"--{key}", value)]
        self._start([binary, *arguments, "--protected-mode", "no"])
        _wait_for_port(self.address, self.port, self, timeout=10)
        return self


class Forwarder:
    """A TCP forwarder from `listen` (a free port) to `target`, in a thread of its own.

    Stands in front of a PostgreSQL that listens on 127.0.0.1 only, when the
    caller does not put PgBouncer there.
    """

    def __init__(self, listen: str, target: tuple[str, int]) -> None:
        self.address = listen
        self.port = free_port(listen)
        self.target = target
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._pipe, self.address, self.port), self._loop
        )
        self._server = future.result(timeout=10)
        return self

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    def __exit__(self, *_exc: object) -> None:
        async def close() -> None:
            self._server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class Instance(_Process):
    """`storefront serve` inside `host`'s namespace, on its address; `start`, `stop`, again."""

    def __init__(self, host: Host, env: dict[str, str]) -> None:
        super().__init__()
        self.host = host
        self.env = env

    @property
    def address(self) -> str:
        return f"{self.host.address}:{INSTANCE_PORT}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self, timeout: float = 120) -> None:
        """Starts the server and returns once its `/readyz` answers 200."""
        self.launch()
        self.wait_until_ready(timeout)

    def launch(self) -> None:
        """Starts the server (in its namespace, on its address) without waiting."""
        ip = _which("ip")
        assert ip is not None
        serve = ["-m", "server.cli", "serve", "--host", self.host.address]
        self._start(
            [ip, "netns", "exec", self.host.namespace, sys.executable, *serve,
             "--port", str(INSTANCE_PORT)],
            env={**os.environ, "LOG_LEVEL": "warning", **self.env},
        )  # fmt: skip

    def wait_until_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.host.namespace} not ready in {timeout} s:\n{self.output()}")

    def _check_running(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.host.namespace} exited early:\n{self.output()}")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as an orchestrator sends it; returns the exit status once it exited."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> Self:
        self.launch()
        return self


class HAProxy(_Process):
    """HAProxy from deploy/haproxy.cfg on a free 127.0.0.1 port, over `servers` (`addr:port`)."""

    def __init__(self, servers: Sequence[str], config: Path = HAPROXY_CONFIG) -> None:
        super().__init__()
        self.servers = servers
        self.config = config
        self.port = free_port()
        self.stats_port = free_port()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def environment(self) -> dict[str, str]:
        """The variables deploy/haproxy.cfg reads."""
        env = {
            "STOREFRONT_BIND": f"{LOOPBACK}:{self.port}",
            "STOREFRONT_STATS_BIND": f"{LOOPBACK}:{self.stats_port}",
        }
        for i, server in enumerate(self.servers, start=1):
            env[f"STOREFRONT_{i}"] = server
        return env

    def __enter__(self) -> Self:
        binary = _which("haproxy")
        if binary is None:
            raise Unavailable("not installed: haproxy")
        env = {**os.environ, **self.environment()}
        checked = subprocess.run(
            [binary, "-c", "-q", "-f", str(self.config)],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if checked.returncode != 0:
            raise RuntimeError(f"haproxy -c refused {self.config}:\n{checked.stderr}")
        self._start([binary, "-db", "-f", str(self.config)], env=env)
        _wait_for_port(LOOPBACK, self.port, self, timeout=10)
        return self

    def wait_until_up(self, count: int, timeout: float = 60) -> None:
        """Until `count` backends pass their health checks (read from the stats CSV)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.backends_up() >= count:
                return
            time.sleep(0.1)
        raise RuntimeError(f"fewer than {count} backends up after {timeout} s:\n{self.output()}")

    def backends_up(self) -> int:
        """How many servers pass their health checks now."""
        return sum(1 for row in self.stats() if row["type"] == "2" and row["status"] == "UP")

    def stats(self) -> list[dict[str, str]]:
        """HAProxy's stats CSV, a dict per frontend, backend (type 1) and server (type 2):
        `stot` sessions, `wretr` retries, `wredis` redispatches, `status`..."""
        response = httpx.get(f"http://{LOOPBACK}:{self.stats_port}/stats;csv", timeout=5)
        response.raise_for_status()
        lines = [line for line in response.text.splitlines() if line]
        header = lines[0].removeprefix("# ").split(",")
        return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]


def _wait_for_port(host: str, port: int, process: _Process, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.process is not None
        if process.process.poll() is not None:
            raise RuntimeError(f"exited early:\n{process.output()}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s:\n{process.output()}")
