"""Local servers the boto3 / Google client code is tested against: a moto server and the GCS
emulator, each a real process on 127.0.0.1 started by the tests (never a mock of our code)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


@contextmanager
def process(args: list[str], url: str, env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        _wait(url, proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1; yields its endpoint URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # AWS-managed policies (ReadOnlyAccess, AdministratorAccess) exist in a real account
    env = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    with process([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], f"{url}/moto-api/", env):
        yield url


def moto_reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).read()


@contextmanager
def gcs_emulator() -> Iterator[str]:
    """The GCS emulator (gcp-storage-emulator) in memory on 127.0.0.1; yields its host URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process([str(BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"], f"{url}/"):
        yield url
