"""A scikit-build-core metadata provider (pyproject.toml [tool.scikit-build.metadata]): the
wheel's dependencies, with pyarrow pinned to the major version the module is built against.

The module links pyarrow's libarrow, whose file name carries the major version
(libarrow.so.2600 for pyarrow 26): a module built against one major cannot load another.
So the pin is what the binary needs, as pyarrow-based extensions pin it; `import quiver`
with another pyarrow says which one it wants (quiver/_build.py)."""

from __future__ import annotations

from typing import Any, Mapping


def dynamic_metadata(field: str, settings: Mapping[str, Any], project: Any = None) -> list[str]:
    if field != "dependencies":
        raise RuntimeError(f"quiver_metadata provides 'dependencies', not {field!r}")
    import pyarrow  # the build environment's: the one the module is compiled against

    major = int(pyarrow.__version__.split(".")[0])
    return [f"pyarrow>={major},<{major + 1}", *settings.get("others", [])]
