"""Local servers the boto3 / Google client code is tested against: a moto server and the GCS
emulator, each a real process on 127.0.0.1 started by the tests (never a mock of our code)."""

from __future__ import annotations

import http.server
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], seconds: float = 30, cafile: Path | None = None) -> None:
    import ssl

    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1, context=context).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


@contextmanager
def process(args: list[str], url: str, env: dict[str, str] | None = None, cafile: Path | None = None) -> Iterator[None]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        _wait(url, proc, cafile=cafile)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM), so clients verify TLS to a local server."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


@contextmanager
def moto_server(tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """A moto server on 127.0.0.1 (HTTPS with ``tls=(cert, key)``); yields its endpoint URL."""
    port = free_port()
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    # AWS-managed policies (ReadOnlyAccess, AdministratorAccess) exist in a real account
    env = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    args = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    if tls:
        args += ["--ssl-cert", str(tls[0]), "--ssl-key", str(tls[1])]
    with process(args, f"{url}/moto-api/", env, cafile=tls[0] if tls else None):
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


@contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 answering with ``handler``; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def engine_example() -> ModuleType:
    """``examples/engine/main.py`` (the provider-free stack) as a module: ``build(outdir)``."""
    path = Path(__file__).resolve().parent.parent / "examples" / "engine" / "main.py"
    spec = importlib.util.spec_from_file_location("engine_example", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
