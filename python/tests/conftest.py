import os
import pathlib
import uuid

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def name(request) -> str:
    """A channel name unique to this test run."""
    return f"py-{request.node.name[:30]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")


@pytest.fixture(scope="session")
def build_dir() -> pathlib.Path:
    """Where the C++ test peers are (make test sets QUIVER_TEST_BUILD_DIR)."""
    return pathlib.Path(os.environ.get("QUIVER_TEST_BUILD_DIR", REPO / "build"))


@pytest.fixture(scope="session")
def ledger_peer(build_dir) -> pathlib.Path:
    peer = build_dir / "ledger_peer_main"
    if not peer.exists():
        pytest.fail(f"{peer} is missing: run `make build` (or set QUIVER_TEST_BUILD_DIR)")
    return peer


def named_channels() -> list:
    """The file names in this user's channel directory (empty if there is none)."""
    import quiver

    try:
        return os.listdir(quiver.Channel.named_directory())
    except FileNotFoundError:
        return []


@pytest.fixture(autouse=True)
def no_leaked_segments(name):
    """Every test must leave none of its named channels behind."""
    yield
    import gc

    gc.collect()
    leftovers = [f for f in named_channels() if name in f]
    assert not leftovers, f"segments left behind: {leftovers}"
