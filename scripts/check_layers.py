#!/usr/bin/env python3
"""Fails on an #include that breaks Quiver's layering.

The layers and what each may use are written by CMake (build/layers.json, from the
quiver_layer() calls in CMakeLists.txt). A file of layer L (src/L/, or a public header
include/quiver/H.h that L owns) may include:
  - its own layer's files;
  - a layer that L depends on, directly or through others: its public headers
    (include/quiver/), and its src/<layer>/ headers unless it is sealed.
Anything else (a layer above, a layer beside, another layer's internals) is an error,
printed as FILE:LINE with what to do. Tests (*_test.cc), benchmarks and test peers are
left out: they may reach into the layer they test.

  scripts/check_layers.py BUILD_DIR/layers.json [SOURCE_DIR]
"""
import json
import pathlib
import re
import sys

INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"', re.MULTILINE)
SKIPPED = re.compile(r"(_test|_benchmark|_main)\.cc$")


def reachable(layers: dict, name: str) -> set:
    """The layers `name` may use: its dependencies, and theirs."""
    seen, stack = set(), list(layers[name]["deps"])
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.add(dep)
            stack.extend(layers[dep]["deps"])
    return seen


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    layers = json.loads(pathlib.Path(sys.argv[1]).read_text())
    root = pathlib.Path(sys.argv[2] if len(sys.argv) == 3 else ".").resolve()
    owner = {f"quiver/{h}": name for name, layer in layers.items()
             for h in layer["public_headers"]}
    known = {f"quiver/{p.name}" for p in (root / "include" / "quiver").glob("*.h")}
    errors = []
    for header in sorted(known - owner.keys()):
        errors.append(f"include/{header}: no layer owns this public header; add it to a "
                      f"quiver_layer(... PUBLIC_HEADERS ...) in CMakeLists.txt")

    files = []
    for name in layers:
        files += [(name, p) for p in sorted((root / "src" / name).glob("*"))
                  if p.suffix in (".h", ".cc") and not SKIPPED.search(p.name)]
    files += [(owner[f"quiver/{p.name}"], p)
              for p in sorted((root / "include" / "quiver").glob("*.h"))
              if f"quiver/{p.name}" in owner]
    for directory in sorted((root / "src").iterdir()):
        if directory.is_dir() and directory.name not in layers:
            errors.append(f"src/{directory.name}/: not a layer; add a quiver_layer() call "
                          f"for it in CMakeLists.txt")

    for name, path in files:
        allowed = reachable(layers, name)
        text = path.read_text(errors="replace")
        for match in INCLUDE.finditer(text):
            target = match.group(1)
            line = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(root)}:{line}"
            if target in owner:
                used = owner[target]
                internal = False
            elif "/" in target and target.split("/")[0] in layers:
                used = target.split("/")[0]
                internal = layers[used]["sealed"]
            else:
                continue  # a header of the same directory's tests, or not ours
            if used == name:
                continue
            if used not in allowed:
                errors.append(f"{where}: layer '{name}' includes \"{target}\" of layer '{used}', "
                              f"which is not below it (it may use: "
                              f"{', '.join(sorted(allowed)) or 'nothing'})")
            elif internal:
                public = ", ".join(f"quiver/{h}" for h in layers[used]["public_headers"])
                errors.append(f"{where}: \"{target}\" is internal to layer '{used}'; use its "
                              f"public API ({public}) or add what is missing to it")
    for error in errors:
        print(error)
    checked = len(files)
    if errors:
        print(f"check_layers: {len(errors)} problem(s) in {checked} files", file=sys.stderr)
        return 1
    print(f"check_layers: {checked} files follow the layers of {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
