"""The pyarrow the native module needs. The module loads the libarrow of the pyarrow package
beside it, whose file name carries pyarrow's major version (libarrow.so.2600 for pyarrow
26): with another major installed it cannot load. The wheel's metadata pins that major
(pip refuses a mismatch at install); this turns the loader's error at import, after an
install that bypassed the pin, into one that says what to do."""

from __future__ import annotations

from typing import Optional


def built_against() -> Optional[str]:
    """The pyarrow version the module was built against (quiver/_build.py, written by the
    build); None in a source tree that was never installed."""
    try:
        from ._build import PYARROW_VERSION
    except ImportError:
        return None
    return str(PYARROW_VERSION)


def explain(error: ImportError) -> Optional[str]:
    """A message for an ImportError of the native module caused by a pyarrow of another
    major version than the one it was built against; None for any other ImportError."""
    import pyarrow

    built = built_against()
    if built is None:
        return None
    want, have = built.split(".")[0], pyarrow.__version__.split(".")[0]
    if want == have:
        return None
    return (f"quiver-ipc was built against pyarrow {built} and needs pyarrow {want}.x "
            f"(it loads libarrow.so.{want}00 from the pyarrow package), but pyarrow "
            f"{pyarrow.__version__} is installed ({pyarrow.__file__}). Either install a "
            f"matching pyarrow: pip install 'pyarrow>={want},<{int(want) + 1}', or rebuild "
            f"quiver-ipc against this one: pip install --no-build-isolation --no-deps "
            f"--force-reinstall <quiver-ipc source or sdist>. (The loader said: {error})")
