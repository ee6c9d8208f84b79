"""Debian's nginx as a real TLS reverse proxy, and a reader on another host, for deploy tests.

The nginx site is docs/deploy/nginx.conf itself, with only its names, ports and certificate
paths replaced, so the tests check the configuration an operator installs. The reader lives in
a network namespace of its own with an address of an Indian network (49.36.0.10, which the
country lookup places in IN), reaching nginx over a veth pair, as a browser would over the
internet: what adserver learns of the reader comes only through the proxy.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.waiting import wait_for

DOCS = Path(__file__).resolve().parent.parent / "docs" / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PROXY_ADDRESS = "49.36.0.1"
READER_ADDRESS = "49.36.0.10"
SERVER_NAME = "ads.example.com"


def have_nginx() -> bool:
    return Path(NGINX).exists()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the server name (the reader does not verify it)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={SERVER_NAME}", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def site_config(
    *, upstreams: list[int], https_port: int, http_port: int, cert: Path, key: Path,
    timeouts: dict[str, str] | None = None,
) -> str:  # fmt: skip
    """docs/deploy/nginx.conf with this test's addresses, ports and certificate."""
    text = (DOCS / "nginx.conf").read_text()
    text = text.replace(
        "    server 127.0.0.1:8000;\n",
        "".join(f"    server 127.0.0.1:{port};\n" for port in upstreams),
    )
    text = text.replace("    listen [::]:80;\n", "").replace("    listen [::]:443 ssl http2;\n", "")
    text = text.replace("listen 80;", f"listen {PROXY_ADDRESS}:{http_port};")
    text = text.replace("listen 443 ssl http2;", f"listen {PROXY_ADDRESS}:{https_port} ssl http2;")
    text = text.replace(f"/etc/letsencrypt/live/{SERVER_NAME}/fullchain.pem", str(cert))
    text = text.replace(f"/etc/letsencrypt/live/{SERVER_NAME}/privkey.pem", str(key))
    for name, value in (timeouts or {}).items():
        start = text.index(f"    {name} ")
        end = text.index(";", start)
        text = text[:start] + f"    {name} {value}" + text[end:]
    return text


@dataclass
class Nginx:
    """nginx with its own prefix, config and log, in the foreground (never the system one)."""

    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, site: str) -> Nginx:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "site.conf").write_text(site)
        (self.directory / "nginx.conf").write_text(
            "user root;\n"
            f"pid {self.directory}/nginx.pid;\n"
            f"error_log {self.directory}/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "  log_format upstreams '$remote_addr $status $upstream_addr';\n"
            f"  access_log {self.directory}/access.log upstreams;\n"
            f"  client_body_temp_path {self.directory}/body;\n"
            f"  proxy_temp_path {self.directory}/proxy;\n"
            f"  include {self.directory}/site.conf;\n"
            "}\n"
        )
        check = subprocess.run(
            [NGINX, "-t", "-p", str(self.directory), "-c", str(self.directory / "nginx.conf")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.directory), "-c", str(self.directory / "nginx.conf"),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._accepting, "nginx to accept connections", seconds=20)
        return self

    def _accepting(self) -> bool:
        """Every address nginx listens on takes a connection."""
        assert self.process is not None and self.process.poll() is None, "nginx exited"
        site = (self.directory / "site.conf").read_text()
        for line in site.splitlines():
            words = line.split()
            if words[:1] == ["listen"]:
                host, _, port = words[1].rstrip(";").rpartition(":")
                try:
                    socket.create_connection((host, int(port)), timeout=1).close()
                except OSError:
                    return False
        return True

    def access_log(self) -> list[str]:
        path = self.directory / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@contextmanager
def reader_host() -> Iterator[ReaderHost]:
    """A network namespace standing in for a reader's machine on the internet, joined to this
    host by a veth pair: the host side holds the proxy's public address."""
    suffix = secrets.token_hex(3)
    namespace, host_end, reader_end = f"adr{suffix}", f"adh{suffix}", f"adn{suffix}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", namespace)
    try:
        ip("link", "add", host_end, "type", "veth", "peer", "name", reader_end)
        ip("link", "set", reader_end, "netns", namespace)
        ip("addr", "add", f"{PROXY_ADDRESS}/24", "dev", host_end)
        ip("link", "set", host_end, "up")
        ip(
            "netns",
            "exec",
            namespace,
            "ip",
            "addr",
            "add",
            f"{READER_ADDRESS}/24",
            "dev",
            reader_end,
        )
        ip("netns", "exec", namespace, "ip", "link", "set", reader_end, "up")
        ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        yield ReaderHost(namespace)
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)


_FETCH = """
import json, sys, httpx
request = json.loads(sys.argv[1])
try:
    with httpx.Client(verify=False, timeout=10) as client:
        answer = client.request(**request)
    print(json.dumps({"status": answer.status_code, "headers": dict(answer.headers),
                      "text": answer.text}))
except httpx.HTTPError as exc:
    print(json.dumps({"error": type(exc).__name__}))
"""


@dataclass
class ReaderHost:
    namespace: str

    def fetch(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        """One HTTP request made from the reader's machine; the answer as a dict, or
        ``{"error": NAME}`` when the connection fails."""
        request = {"method": method, "url": url, **options}
        done = subprocess.run(
            ["ip", "netns", "exec", self.namespace, sys.executable, "-c", _FETCH,
             json.dumps(request)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(done.stdout)
        return result
