"""`quiver serve` in a subprocess for the Flight tests (test_flight*.py)."""
import pathlib
import select
import signal
import socket
import subprocess
import time

import pyarrow.flight as flight
import pytest


class Serve:
    """`quiver serve --listen grpc://127.0.0.1:0 ARGS...`, started and bound (or the test
    fails); `location` is its grpc[+tls]://HOST:PORT, `addr` its HOST:PORT."""

    def __init__(self, build_dir: pathlib.Path, *args: str, listen: str = "grpc://127.0.0.1:0",
                 netns: str = "") -> None:
        quiver_bin = build_dir / "quiver"
        if not quiver_bin.exists():
            pytest.fail(f"{quiver_bin} is missing: run `make build` (or set QUIVER_TEST_BUILD_DIR)")
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
        self.location = line.split("listening on ")[1].split()[0]
        self.addr = self.location.split("://", 1)[1]
        host, port = self.addr.rsplit(":", 1)
        self.port = int(port)
        if not netns:
            while True:  # accepting connections?
                try:
                    socket.create_connection((host, self.port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop(check=False)
                        pytest.fail(f"quiver serve does not accept connections on {self.addr}")
                    time.sleep(0.05)

    def client(self, **kwargs) -> flight.FlightClient:
        return flight.connect(self.location, **kwargs)

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
        if check:
            assert self.proc.returncode == 0, self.stderr
