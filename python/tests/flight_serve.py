"""`quiver serve` in a subprocess for the Flight tests (test_flight*.py)."""
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Optional

import pyarrow.flight
import pytest

import quiver.flight


class Serve:
    """`quiver serve ARGS...`, started and accepting connections (or the test fails).

    `listen` defaults to a Unix socket in a fresh private directory (the server's secure
    default, without sharing the one default path between concurrent tests). A TCP listener
    started without --token-file gets the token the server generates; `token` is the token
    in force either way (None on a Unix socket without one), and `client()` sends it.
    `location` is the server's grpc[+tls|+unix]://... address; for TCP, `addr` is HOST:PORT
    and `port` the port."""

    def __init__(self, build_dir: pathlib.Path, *args: str, listen: Optional[str] = None,
                 netns: str = "", token: Optional[str] = None) -> None:
        quiver_bin = build_dir / "quiver"
        if not quiver_bin.exists():
            pytest.fail(f"{quiver_bin} is missing: run `make build` (or set QUIVER_TEST_BUILD_DIR)")
        self.quiver = quiver_bin
        self.private_dir = None
        if listen is None:
            self.private_dir = tempfile.mkdtemp(prefix="qv-serve-")  # mode 0700
            listen = f"grpc+unix://{self.private_dir}/flight.sock"
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.proc = subprocess.Popen([*prefix, str(quiver_bin), "serve", "--listen", listen, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr = ""
        line = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                break
        if "listening on " not in line:
            self.stop(check=False)
            pytest.fail(f"quiver serve did not start: {line!r}\n{self.stderr}")
        self.line = line
        self.location = line.split("listening on ")[1].split()[0]
        self.token = token
        self.token_file = None
        if "--token-file " in line:  # generated for a TCP listener started without one
            self.token_file = line.split("--token-file ")[1].split(")")[0]
            self.token = pathlib.Path(self.token_file).read_text().strip()
        self.unix_socket = None
        if self.location.startswith("grpc+unix://"):
            self.unix_socket = self.location[len("grpc+unix://"):]
            self.addr, self.port = None, None
        else:
            self.addr = self.location.split("://", 1)[1]
            self.port = int(self.addr.rsplit(":", 1)[1])
        if not netns:
            while True:  # accepting connections?
                try:
                    if self.unix_socket:
                        with socket.socket(socket.AF_UNIX) as s:
                            s.connect(self.unix_socket)
                    else:
                        socket.create_connection((self.addr.rsplit(":", 1)[0], self.port),
                                                 timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop(check=False)
                        pytest.fail(f"quiver serve does not accept connections on "
                                    f"{self.location}")
                    time.sleep(0.05)

    def client(self, **kwargs) -> "pyarrow.flight.FlightClient":
        """A pyarrow.flight client that sends the server's token, if it has one."""
        return quiver.flight.connect(self.location, token=self.token, **kwargs)

    def token_args(self) -> list:
        """The arguments that give `quiver bridge` this server's token."""
        if self.token is None:
            return []
        if self.token_file is None:
            raise AssertionError("the test gave the token: pass its --token-file itself")
        return ["--token-file", self.token_file]

    def rss_kib(self) -> int:
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self, check: bool = True) -> None:
        """SIGTERM; with `check`, it must exit 0 within 15 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    raise AssertionError("quiver serve did not stop within 15 s of SIGTERM")
        if not self.proc.stderr.closed:
            self.stderr = self.proc.stderr.read()
            self.proc.stdout.close()
            self.proc.stderr.close()
        if self.private_dir is not None:
            shutil.rmtree(self.private_dir, ignore_errors=True)
        if check:
            assert self.proc.returncode == 0, self.stderr
