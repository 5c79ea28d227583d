"""The `quiver` command of a pip install: runs the program the wheel carries
(quiver/bin/quiver, the same C++ CLI as a CMake build's build/quiver) in this process's
place, with the same arguments, environment and signals."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def program() -> Path:
    """Where the wheel put the `quiver` program."""
    return Path(__file__).resolve().parent / "bin" / "quiver"


def main() -> None:
    exe = program()
    if not os.access(exe, os.X_OK):
        sys.exit(f"quiver: {exe} is missing: this install of quiver-ipc has no command-line "
                 f"program (a build made without it); reinstall from the wheel, or use "
                 f"build/quiver of a CMake build")
    os.execv(exe, [str(exe), *sys.argv[1:]])


if __name__ == "__main__":
    main()
