#!/usr/bin/env python3
"""Writes docs/python-api.md, the Python API reference, from the docstrings of the installed
package (``import quiver, quiver.control, quiver.flight``).

    .venv/bin/python scripts/gen_python_api.py           # regenerate docs/python-api.md
    .venv/bin/python scripts/gen_python_api.py --check   # exit 1 if the file is out of date

For each module: its docstring, then every name of its ``__all__`` in that order: functions
with their signature (``inspect.signature``) and docstring; classes with their constructor,
docstring, and each public method and property of their own (in definition order) with its
signature and docstring; exceptions in a table; constants with their value. The output
depends only on the package (no addresses, no set order, no dates), so
python/tests/test_docs.py can regenerate it and compare it with the committed file.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pathlib
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "python-api.md"
MODULES = ("quiver", "quiver.control", "quiver.flight")
COMMAND = ".venv/bin/python scripts/gen_python_api.py"

# Special methods worth naming (the protocols a class supports); the rest (__init__,
# __repr__, dataclass plumbing) say nothing a reader needs.
_NOT_LISTED = {"__init__", "__new__", "__repr__", "__eq__", "__hash__", "__setattr__",
               "__delattr__", "__init_subclass__", "__class_getitem__", "__getattr__"}
# A nanobind callable's docstring starts with its signature: "(self) -> int" or "name(...)".
_NB_SIGNATURE = re.compile(r"^\w*\(.*\)(\s*->\s*.+)?$")


class _Raw:
    """An annotation written as a string (``from __future__ import annotations``), shown as
    written instead of quoted."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _unquote(annotation: Any) -> Any:
    if isinstance(annotation, str):
        text = annotation
        while len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]  # a forward reference written as a string: 'Channel'
        return _Raw(text)
    return annotation


def _stable(text: str) -> str:
    """Drops what changes from one run to the next: object addresses in default values."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _signature(obj: Callable[..., Any], drop_first: bool) -> Optional[str]:
    """``(a: int, b: str = 'x') -> Result``, without ``self``/``cls``; None if there is
    none to be had."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if drop_first and params and params[0].name in ("self", "cls"):
        params = params[1:]
    params = [p.replace(annotation=_unquote(p.annotation)) for p in params]
    sig = sig.replace(parameters=params, return_annotation=_unquote(sig.return_annotation))
    return _stable(str(sig))


def _doc(obj: Any) -> str:
    """The object's own docstring, cleaned (never one inherited from a base)."""
    doc = obj.__doc__ if isinstance(getattr(obj, "__doc__", None), str) else ""
    return inspect.cleandoc(doc) if doc else ""


def _nb_split(doc: str) -> Tuple[Optional[str], str]:
    """A nanobind docstring's leading signature line, and the rest."""
    first, _, rest = doc.partition("\n")
    if _NB_SIGNATURE.match(first.strip()):
        sig = first.strip()
        sig = sig[sig.index("("):]
        sig = re.sub(r"^\(self(, )?", "(", sig)
        return sig, inspect.cleandoc(rest) if rest.strip() else ""
    return None, doc


def _async(func: Any) -> str:
    """``async `` for a coroutine function (awaited, not called)."""
    return "async " if inspect.iscoroutinefunction(func) else ""


def _fence(text: str) -> List[str]:
    return ["```text", *text.splitlines(), "```", ""]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _member_kind(value: Any) -> Optional[str]:
    if isinstance(value, property):
        return "property"
    if isinstance(value, classmethod):
        return "classmethod"
    if isinstance(value, staticmethod):
        return "staticmethod"
    if inspect.isroutine(value):
        return "method"
    return None


def _member(qualname: str, name: str, value: Any) -> List[str]:
    kind = _member_kind(value)
    out = [f"#### {qualname}.{name}", ""]
    if kind == "property":
        getter = value.fget
        doc = _doc(value)
        sig = _signature(getter, drop_first=True) if getter is not None else None
        returns = None
        if sig is not None and " -> " in sig:
            returns = sig.split(" -> ", 1)[1]
        elif sig is None:
            nb_sig, doc = _nb_split(doc)
            if nb_sig and " -> " in nb_sig:
                returns = nb_sig.split(" -> ", 1)[1]
        settable = value.fset is not None
        head = f"{name}: {returns}" if returns else name
        head += "  (property, settable)" if settable else "  (property)"
    else:
        func = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
        doc = _doc(func)
        sig = _signature(func, drop_first=kind != "staticmethod")
        if sig is None:
            sig, doc = _nb_split(doc)
        head = f"{_async(func)}{name}{sig or '(...)'}"
        if kind in ("classmethod", "staticmethod"):
            head += f"  ({kind})"
    out += _fence(head + ("\n\n" + doc if doc else ""))
    return out


def _own_members(cls: type) -> List[Tuple[str, Any]]:
    return [(name, value) for name, value in vars(cls).items()
            if not name.startswith("_") and _member_kind(value) is not None]


def _private_bases(cls: type) -> List[type]:
    """The package's private base classes of `cls` (a mixin such as quiver._ClosedByWith):
    documented as part of the class, not named."""
    return [b for b in cls.__mro__[1:]
            if b.__module__.split(".")[0] == "quiver" and b.__name__.startswith("_")]


def _special_methods(cls: type) -> List[str]:
    names: List[str] = []
    for owner in (cls, *_private_bases(cls)):
        names += [name for name, value in vars(owner).items()
                  if name.startswith("__") and name.endswith("__") and name not in _NOT_LISTED
                  and _member_kind(value) is not None and name not in names]
    return names


def _bases(cls: type) -> List[str]:
    names = []
    for base in cls.__mro__[1:]:
        if base in (object, BaseException, Exception) or base in _private_bases(cls):
            continue
        module = base.__module__
        public = module.split(".")[0] == "quiver"
        names.append(f"{_public_module(base)}.{base.__name__}" if public else
                     (base.__name__ if module == "builtins" else f"{module}.{base.__name__}"))
    return names


def _public_module(cls: type) -> str:
    """The public module a class of the package is documented under (quiver._quiver's are
    quiver's)."""
    module = cls.__module__
    return "quiver" if module.startswith("quiver._") else module


def _class(module: str, name: str, cls: type, aliases: List[str]) -> List[str]:
    qualname = f"{module}.{name}"
    out = [f"### {qualname}", ""]
    head = f"class {name}"
    sig = _signature(cls, drop_first=False)  # None for a native class users do not construct
    if sig is not None:
        head += sig.split(" -> ")[0]
    bases = _bases(cls)
    if bases:
        head += f"  (a {', '.join(bases)})"
    body = head
    doc = _doc(cls)
    if doc:
        body += "\n\n" + doc
    out += _fence(body)
    if aliases:
        out += ["Also named " + ", ".join(f"`{module}.{a}`" for a in aliases) + ".", ""]
    special = _special_methods(cls)
    if special:
        out += ["Special methods: " + ", ".join(f"`{s}`" for s in special) + ".", ""]
    for member_name, value in _own_members(cls):
        out += _member(name, member_name, value)
    return out


def _function(module: str, name: str, func: Callable[..., Any]) -> List[str]:
    doc = _doc(func)
    sig = _signature(func, drop_first=False)
    if sig is None:
        sig, doc = _nb_split(doc)
    return [f"### {module}.{name}", "", *_fence(f"{_async(func)}{name}{sig or '(...)'}"
                                                + ("\n\n" + doc if doc else ""))]


def _value(value: Any) -> str:
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(repr(v) for v in sorted(value)) + "}"
    return _stable(repr(value))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _exceptions(module: str, rows: List[Tuple[str, type, List[str]]]) -> List[str]:
    out = [f"### Exceptions of {module}", "",
           "| class | also named | is also a | what it means |", "|---|---|---|---|"]
    for name, cls, aliases in rows:
        bases = ", ".join(f"`{b}`" for b in _bases(cls))
        also = ", ".join(f"`{a}`" for a in aliases)
        out.append(f"| `{module}.{name}` | {also} | {bases} | {_cell(_doc(cls))} |")
    return out + [""]


def _module(module_name: str) -> Tuple[List[str], List[str]]:
    """The module's section, and its table-of-contents lines."""
    module = importlib.import_module(module_name)
    names = list(module.__all__)
    # Names bound to one object: the first name, or the class's own name when it is public,
    # is documented; the others are listed as its aliases.
    by_object: Dict[int, List[str]] = {}
    for name in names:
        by_object.setdefault(id(getattr(module, name)), []).append(name)
    # quiver.TimeoutError stays out of __all__ (a star-import must not shadow the built-in),
    # but it is the class's name: document it under it.
    primary: Dict[int, Tuple[str, List[str]]] = {}
    for ids, group in by_object.items():
        obj = getattr(module, group[0])
        own = obj.__name__ if inspect.isclass(obj) else None
        main = own if own is not None and getattr(module, own, None) is obj else group[0]
        primary[ids] = (main, [n for n in group if n != main])

    title = f"`{module_name}`"
    out = [f"## {title}", ""]
    toc = [f"- [{title}](#{_anchor(module_name)})"]
    doc = _doc(module)
    if doc:
        out += _fence(doc)
    constants: List[Tuple[str, Any]] = []
    exceptions: List[Tuple[str, type, List[str]]] = []
    sections: List[List[str]] = []
    done = set()
    for name in names:
        value = getattr(module, name)
        if id(value) in done:
            continue  # an alias: documented with its class
        done.add(id(value))
        main, aliases = primary[id(value)]
        if inspect.isclass(value) and issubclass(value, BaseException) and \
                not _own_members(value):
            exceptions.append((main, value, aliases))
        elif inspect.isclass(value):
            sections.append(_class(module_name, main, value, aliases))
            toc.append(f"  - [{main}](#{_anchor(f'{module_name}.{main}')})")
        elif inspect.isroutine(value):
            sections.append(_function(module_name, main, value))
            toc.append(f"  - [{main}()](#{_anchor(f'{module_name}.{main}')})")
        else:
            constants.append((name, value))
    if constants:
        heading = f"Constants of {module_name}"
        out += [f"### {heading}", "", "| name | value |", "|---|---|"]
        out += [f"| `{module_name}.{n}` | `{_cell(_value(v))}` |" for n, v in constants]
        out += [""]
        toc.append(f"  - [Constants](#{_anchor(heading)})")
    for section in sections:
        out += section
    if exceptions:
        out += _exceptions(module_name, exceptions)
        heading = f"Exceptions of {module_name}"
        toc.append(f"  - [Exceptions](#{_anchor(heading)})")
    return out, toc


def render() -> str:
    """The whole of docs/python-api.md."""
    import quiver  # noqa: F401 - the package whose docstrings these are

    distribution = "quiver-ipc"
    try:
        from importlib.metadata import version
        release = version(distribution)
    except Exception:  # noqa: BLE001 - not installed as a distribution: no version line
        release = None
    head = [
        "# Python API reference",
        "",
        f"The package `quiver` (distribution `{distribution}`"
        + (f", version {release}" if release else "") + "): every public class, method,",
        "property and function of `quiver`, `quiver.control` and `quiver.flight`, with its",
        "signature and docstring (what `help()` shows). A guided tour is in the",
        "[README](../README.md#use-it-from-python); how it works, in",
        "[ARCHITECTURE.md](ARCHITECTURE.md#the-python-package).",
        "",
        "This page is generated from the installed package's docstrings by",
        "`scripts/gen_python_api.py`; do not edit it by hand. After changing a docstring, run",
        f"`{COMMAND}` (`python/tests/test_docs.py` fails while the page is out of date).",
        "",
    ]
    sections, toc = [], []
    for module_name in MODULES:
        section, entries = _module(module_name)
        sections += section
        toc += entries
    text = "\n".join(head + ["## Contents", ""] + toc + [""] + sections)
    return text.rstrip("\n") + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if docs/python-api.md is out of date")
    parser.add_argument("--output", type=pathlib.Path, default=OUTPUT,
                        help="where to write (default: docs/python-api.md)")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
