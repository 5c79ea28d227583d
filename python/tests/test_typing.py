"""The package as type checkers and readers see it: the committed stubs of the native module
are what nanobind.stubgen makes of it, the installed package ships them with py.typed, every
public class, method and property says what it does, and help(quiver) is a useful page.
(The type check itself, mypy on the package, the examples and these tests, is
scripts/typecheck.sh, run by `make test`.)"""
import ast
import difflib
import inspect
import pathlib
import pydoc
import subprocess
import sys

import pytest

import quiver
import quiver.control
import quiver.flight
from quiver import _quiver

REPO = pathlib.Path(__file__).resolve().parents[2]
STUBS = REPO / "python" / "quiver" / "_quiver"
PATTERNS = REPO / "scripts" / "stubgen-patterns.txt"


def _stubs(directory: pathlib.Path) -> dict:
    return {p.relative_to(directory).as_posix(): p.read_text()
            for p in sorted(directory.rglob("*.pyi"))}


def test_the_committed_stubs_are_what_stubgen_makes_of_the_installed_module(tmp_path):
    out = tmp_path / "out"
    # From tmp_path, so that `quiver` is the installed package (the one `make python` built),
    # with the command of `make stubs`.
    command = [sys.executable, "-m", "nanobind.stubgen", "-m", "quiver._quiver", "-r",
               "-O", str(out), "-M", str(out / "py.typed"), "-q", "-p", str(PATTERNS)]
    made = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, f"{' '.join(command)} failed:\n{made.stdout}{made.stderr}"
    fresh, committed = _stubs(out / "_quiver"), _stubs(STUBS)
    differ = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    diff = "".join(line for name in differ for line in difflib.unified_diff(
        committed.get(name, "").splitlines(keepends=True),
        fresh.get(name, "").splitlines(keepends=True),
        f"committed python/quiver/_quiver/{name}", f"stubgen's {name}"))
    assert not differ, (
        f"python/quiver/_quiver/ {differ} differ from what nanobind.stubgen makes of the "
        f"installed quiver._quiver: run `make stubs` (it installs the package, then runs "
        f"`cd /tmp && python -m nanobind.stubgen -m quiver._quiver -r -O python/quiver "
        f"-M python/quiver/py.typed -q -p scripts/stubgen-patterns.txt`) and commit them.\n"
        f"{diff[:6000]}")


def test_the_installed_package_ships_its_stubs_and_py_typed():
    installed = pathlib.Path(quiver.__file__).parent
    assert (installed / "py.typed").is_file(), f"{installed} has no py.typed"
    assert (REPO / "python" / "quiver" / "py.typed").is_file()
    missing = [name for name in _stubs(STUBS) if not (installed / "_quiver" / name).is_file()]
    assert not missing, f"the installed package ({installed}) lacks the stubs {missing}"


def test_type_checkers_see_every_error_class_of_the_table():
    """quiver/__init__.py makes the error classes in a loop over the C++ error table; its
    `if TYPE_CHECKING:` import names them for type checkers, so it must name them all."""
    tree = ast.parse((REPO / "python" / "quiver" / "__init__.py").read_text())
    declared = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            declared |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
              and node.test.id == "TYPE_CHECKING"):
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom):
                    declared |= {a.asname or a.name for a in statement.names}
    table = {name for pair in _quiver.error_names for name in pair}
    missing = sorted(table - declared)
    assert not missing, (f"add {missing} to the `if TYPE_CHECKING:` import of "
                         f"python/quiver/__init__.py")
    for name in table:
        assert getattr(quiver, name) is getattr(_quiver, name)


def _public_classes() -> list:
    classes = [quiver.Channel, quiver.Publisher, quiver.Subscriber, quiver.Sample,
               quiver.Retainer, quiver.NdarrayLoan, quiver.FrameLoan, quiver.ImageFrameInfo,
               quiver.AudioFrameInfo]
    for module in (quiver.control, quiver.flight):
        classes += [value for name in module.__all__
                    if inspect.isclass(value := getattr(module, name))]
    return classes


def _undocumented(cls: type) -> list:
    """The public methods and properties of `cls` itself that have no docstring."""
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (classmethod, staticmethod)):
            value = value.__func__
        if isinstance(value, property) or inspect.isroutine(value):
            if not (value.__doc__ or "").strip():  # its own: getdoc would inherit one
                out.append(name)
    return out


@pytest.mark.parametrize("cls", _public_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_public_class_method_and_property_has_a_docstring(cls):
    doc = cls.__doc__ or ""
    assert doc.strip(), f"{cls.__name__} has no docstring"
    assert not _undocumented(cls), f"{cls.__name__}: no docstring on {_undocumented(cls)}"
    if not issubclass(cls, BaseException):
        assert "thread" in doc.lower(), f"{cls.__name__}'s docstring says nothing of threads"


def test_every_public_name_has_a_docstring():
    undocumented = []
    for module in (quiver, quiver.control, quiver.flight):
        for name in module.__all__:
            value = getattr(module, name)
            if (inspect.isclass(value) or inspect.isroutine(value)) and \
                    not (value.__doc__ or "").strip():
                undocumented.append(f"{module.__name__}.{name}")
    assert not undocumented, f"no docstring: {undocumented}"


def test_help_quiver_is_a_useful_page():
    page = pydoc.plain(pydoc.render_doc(quiver))  # what help(quiver) shows, unbolded
    assert "zero-copy shared-memory channels" in page
    for name in ("Channel", "Publisher", "Subscriber", "Sample", "NotFoundError"):
        assert f"class {name}(" in page, f"help(quiver) does not show {name}"
    for method in ("create(", "publish(", "receive(", "to_arrow("):
        assert f" |  {method}" in page, f"help(quiver) does not show {method}...)"
