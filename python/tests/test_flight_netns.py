"""The Flight gateway between two "hosts": network namespaces joined by a veth pair
(scripts/netns.sh). Host A runs `quiver serve` with TLS and a token on its veth address;
host B runs `quiver bridge` into a local channel. /dev/shm stays shared between namespaces,
so the test reads host B's channel and writes host A's directly; only the network is split.
Skipped, with the reason, where namespaces cannot be made (not root, no iproute2)."""
import os
import subprocess
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import quiver
from conftest import REPO
from flight_serve import Serve

NETNS = REPO / "scripts" / "netns.sh"
SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.int64()), ("blob", pa.binary())])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def hosts():
    check = subprocess.run(["bash", str(NETNS), "check"], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"no network namespaces here: {(check.stdout + check.stderr).strip()}")
    name, subnet = f"qv{os.getpid() % 100000}", f"10.201.{os.getpid() % 250}"
    subprocess.run(["bash", str(NETNS), "up", name, subnet], check=True, capture_output=True)
    try:
        yield {"a": f"{name}-a", "b": f"{name}-b", "address_a": f"{subnet}.1"}
    finally:
        subprocess.run(["bash", str(NETNS), "down", name], check=True)


def test_bridge_across_two_namespaces_with_tls_and_token(hosts, build_dir, tmp_path, name):
    address = hosts["address_a"]
    cert, key, token = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "token"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=host-a", "-addext", f"subjectAltName=IP:{address}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    token.write_text("between-hosts\n")

    source = quiver.Channel.create(name, "16MiB", schema=SCHEMA)  # host A's channel
    publisher = source.publisher()
    server = Serve(build_dir, "--tls-cert", str(cert), "--tls-key", str(key),
                   "--token-file", str(token), listen=f"grpc://{address}:0", netns=hosts["a"])
    bridge = None
    try:
        assert server.location.startswith(f"grpc+tls://{address}:")
        bridge = subprocess.Popen(
            ["ip", "netns", "exec", hosts["b"], str(build_dir / "quiver"), "bridge",
             f"{server.location}/{name}", "--to", name + "-b", "--tls-roots", str(cert),
             "--token-file", str(token)], stderr=subprocess.PIPE, text=True)
        local = _wait_open(name + "-b", bridge)  # host B's channel, made by the bridge
        subscriber = local.subscriber()
        _wait(lambda: sum(s["alive"] for s in source.stats()["subscribers"]) == 1, bridge)

        rng = np.random.default_rng(7)
        sent_sum, sent_bytes = 0, 0
        for i in range(64):
            ids = np.arange(i * 500, (i + 1) * 500, dtype=np.int64)
            amounts = rng.integers(-10**9, 10**9, size=500)
            blobs = [rng.bytes(int(n)) for n in rng.integers(0, 2048, size=500)]
            publisher.publish(pa.record_batch([pa.array(ids), pa.array(amounts),
                                               pa.array(blobs, pa.binary())], schema=SCHEMA))
            sent_sum += int(amounts.sum())
            sent_bytes += sum(len(b) for b in blobs)
        publisher = None  # host A's publisher leaves: the stream, then the bridge, ends

        got_sum, got_bytes, got_ids = 0, 0, []
        while True:
            try:
                sample = subscriber.receive(timeout=30)
            except quiver.PeerGone:
                break
            b = sample.to_arrow()
            got_sum += pc.sum(b.column("amount")).as_py()
            got_bytes += pc.sum(pc.binary_length(b.column("blob"))).as_py() or 0
            got_ids.extend(b.column("id").to_pylist())
        assert got_ids == list(range(64 * 500))  # all of it, in order
        assert (got_sum, got_bytes) == (sent_sum, sent_bytes)
        assert bridge.wait(timeout=30) == 0, bridge.stderr.read()
        subscriber = local = None
    finally:
        if bridge is not None and bridge.poll() is None:
            bridge.kill()
            bridge.wait()
        server.stop()
    source = None


def test_plain_text_off_loopback_is_refused(hosts, build_dir):
    refused = subprocess.run(["ip", "netns", "exec", hosts["a"], str(build_dir / "quiver"),
                              "serve", "--listen", f"grpc://{hosts['address_a']}:0"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "not a loopback address" in refused.stderr


def _wait(predicate, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"quiver bridge ended early: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def _wait_open(channel_name, proc):
    found = []

    def opened():
        try:
            found.append(quiver.Channel.open(channel_name))
            return True
        except quiver.NotFound:
            return False

    _wait(opened, proc)
    return found[0]
