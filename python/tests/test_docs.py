"""Every code block of the README and of docs/*.md is compiled or run, so the docs cannot rot;
docs/python-api.md is what scripts/gen_python_api.py makes of the installed package; the docs
say the distribution's name wherever they say pip, and use no private shorthand.

By the language of its fence, a block is:
- ``cpp``: compiled (g++ -std=c++20 -fsyntax-only, with include/ and pyarrow's headers). A block
  with a ``main`` is a whole program. Any other block is a fragment: its ``#include`` lines go
  first, after the ``#include`` of every public header, and the rest becomes the body of
  ``int main() { ... }``. A fragment that needs context writes it out.
- ``python``: compiled; and run as a program (in a temporary directory) unless another test
  runs it (RUN_ELSEWHERE) or it cannot run on its own (COMPILE_ONLY, each with its reason).
- ``toml``: parsed; a pipeline file (``[[channel]]``, ``[[node]]``) is also loaded by the real
  parser (build/pipeline_test, PipelineTest.EveryPipelineSnippetInTheDocsLoads).
- ``sh`` / ``bash``: checked with ``bash -n``.
- ``json``: parsed.
- ``go``: in README.md only, where go/quiverflight/docs_test.go finds each in compiled code.
- ``text`` or no language: output, diagrams, layouts; not checked.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LANGUAGES = {"cpp", "python", "toml", "sh", "bash", "json", "go", "text", ""}
BUILD = pathlib.Path(os.environ.get("QUIVER_TEST_BUILD_DIR", REPO / "build"))

# Python blocks another test runs as written, found by what those tests look for in the
# README: (substring, how many blocks have it, the test).
RUN_ELSEWHERE = [
    ("CommandClient", 1, "test_workflow.py::test_the_readme_workflow_example_runs"),
    ("# producer.py\n", 1,
     "test_python_api.py::test_the_readme_producer_and_consumer_run_as_written_in_either_order"),
    ("# consumer.py\n", 1,
     "test_python_api.py::test_the_readme_producer_and_consumer_run_as_written_in_either_order"),
    ("loan_image(", 1, "test_frames.py::test_the_readme_frames_example_runs"),
    ("quiver.control.Service(", 1, "test_flight_compute.py::test_the_readme_compute_example_runs"),
]
# Python blocks that cannot run on their own: (substring, how many blocks have it, why).
COMPILE_ONLY = [
    ("client.list_flights()", 1,
     "needs a running `quiver serve` (default socket and TCP with a token) and a live channel; "
     "test_flight.py and test_flight_doors.py make those calls"),
]


@dataclasses.dataclass
class Block:
    path: pathlib.Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks_of(path: pathlib.Path) -> list:
    """The fenced blocks of a markdown file (``` fences, maybe indented in a list item)."""
    out = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = re.match(r"^( *)```(\S*)[^`]*$", lines[i])
        if not match:
            i += 1
            continue
        indent, language, start = len(match.group(1)), match.group(2), i + 1
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        assert i < len(lines), f"{path}:{start}: a code block is never closed"
        out.append(Block(path, start, language, "\n".join(body) + "\n"))
        i += 1
    return out


BLOCKS = [block for path in DOCS for block in blocks_of(path)]


def of(*languages: str) -> list:
    return [pytest.param(b, id=b.id) for b in BLOCKS if b.language in languages]


def test_every_block_has_a_language_this_test_checks():
    unknown = [f"{b.id}: ```{b.language}" for b in BLOCKS if b.language not in LANGUAGES]
    assert not unknown, (f"fence these as one of {sorted(LANGUAGES - {''})} (```text for output "
                         f"and diagrams): {unknown}")
    assert len(BLOCKS) >= 20, "the docs' code blocks were not found"


# --- C++ -----------------------------------------------------------------------------------

def _pyarrow_include() -> str:
    import pyarrow

    return pyarrow.get_include()


PUBLIC_HEADERS = sorted(p.name for p in (REPO / "include" / "quiver").glob("*.h"))


def cpp_source(code: str) -> str:
    """A cpp block as a translation unit (see the module's docstring)."""
    if re.search(r"\bint\s+main\s*\(", code):
        return code
    includes = [line for line in code.splitlines() if line.lstrip().startswith("#include")]
    body = [line for line in code.splitlines() if not line.lstrip().startswith("#include")]
    prelude = [f'#include "quiver/{h}"' for h in PUBLIC_HEADERS]
    return "\n".join(prelude + includes + ["", "int main() {", *body, "  return 0;", "}", ""])


@pytest.mark.parametrize("block", of("cpp"))
def test_cpp_blocks_compile(block, tmp_path):
    compiler = shlex.split(os.environ.get("CXX", "")) or \
        [c for c in (shutil.which("g++") or shutil.which("c++"),) if c]
    if not compiler:
        pytest.skip("no C++ compiler")
    source = tmp_path / "block.cc"
    source.write_text(cpp_source(block.code))
    # -Werror=unused-result: a Status or Result the docs drop unread is a bug they teach.
    result = subprocess.run(
        [*compiler, "-std=c++20", "-fsyntax-only", "-Werror=unused-result",
         "-I", str(REPO / "include"), "-isystem", _pyarrow_include(), str(source)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (f"the C++ block at {block.id} does not compile:\n"
                                    f"{source.read_text()}\n{result.stderr}")


# --- Python --------------------------------------------------------------------------------

def _claims(table: list) -> dict:
    """Block id -> the table's entry for each python block an entry's substring finds, and
    a check that each finds as many as it says."""
    python = [b for b in BLOCKS if b.language == "python"]
    found = {}
    for pattern, count, why in table:
        hits = [b for b in python if pattern in b.code]
        assert len(hits) == count, (f"{len(hits)} python blocks contain {pattern!r}, expected "
                                    f"{count}: update RUN_ELSEWHERE/COMPILE_ONLY in {__file__}")
        for b in hits:
            found[b.id] = why
    return found


@pytest.mark.parametrize("block", of("python"))
def test_python_blocks_compile(block):
    compile(block.code, block.id, "exec")


def test_the_python_blocks_run_elsewhere_and_the_compile_only_ones_are_as_listed():
    elsewhere, compile_only = _claims(RUN_ELSEWHERE), _claims(COMPILE_ONLY)
    assert not set(elsewhere) & set(compile_only)


@pytest.mark.parametrize("block", of("python"))
def test_standalone_python_blocks_run(block, tmp_path):
    reason = {**_claims(RUN_ELSEWHERE), **_claims(COMPILE_ONLY)}.get(block.id)
    if reason is not None:
        pytest.skip(f"not run here: {reason}")
    program = tmp_path / "block.py"
    program.write_text(block.code)
    result = subprocess.run([sys.executable, str(program)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"the Python block at {block.id} failed:\n{result.stderr}"


# --- TOML, shell, JSON, Go -----------------------------------------------------------------

@pytest.mark.parametrize("block", of("toml"))
def test_toml_blocks_parse(block):
    toml = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    toml.loads(block.code)


def test_pipeline_blocks_load_with_quiver_s_own_parser():
    """`quiver run` has no dry-run flag; the C++ test that loads every ```toml block of the
    docs with the pipeline parser (relative paths from examples/) is that check."""
    pipelines = [b for b in BLOCKS if b.language == "toml"
                 if re.search(r"^\s*\[\[(channel|node)\]\]", b.code, re.M)]
    assert pipelines, "the docs have pipeline files"
    binary = BUILD / "pipeline_test"
    if not binary.exists():
        pytest.skip(f"{binary} is not built (make build, or set QUIVER_TEST_BUILD_DIR)")
    result = subprocess.run(
        [str(binary), "--gtest_filter=PipelineTest.EveryPipelineSnippetInTheDocsLoads"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[  PASSED  ] 1 test" in result.stdout, result.stdout


@pytest.mark.parametrize("block", of("sh", "bash"))
def test_shell_blocks_are_valid_bash(block):
    result = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, f"{block.id}:\n{result.stderr}"


@pytest.mark.parametrize("block", of("json"))
def test_json_blocks_parse(block):
    json.loads(block.code)


def test_go_blocks_are_only_where_the_go_test_finds_them():
    """go/quiverflight/docs_test.go checks the README's Go blocks against compiled code; a Go
    block anywhere else would be checked by nothing."""
    elsewhere = [b.id for b in BLOCKS if b.language == "go" and b.path.name != "README.md"]
    assert not elsewhere, f"add these to go/quiverflight/docs_test.go: {elsewhere}"


# --- the generated Python reference ---------------------------------------------------------

def test_the_python_api_reference_is_up_to_date():
    spec = importlib.util.spec_from_file_location("gen_python_api",
                                                  REPO / "scripts" / "gen_python_api.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = (REPO / "docs" / "python-api.md").read_text()
    assert generator.render() == committed, (
        "docs/python-api.md is out of date with the package's docstrings: run "
        "`.venv/bin/python scripts/gen_python_api.py`")


# --- the C++ reference -----------------------------------------------------------------------

def test_the_cpp_page_covers_every_public_header():
    page = (REPO / "docs" / "cpp-api.md").read_text()
    missing = [h for h in PUBLIC_HEADERS if f"## `quiver/{h}`" not in page]
    assert not missing, f"docs/cpp-api.md has no section for {missing}"


def test_the_cpp_page_names_only_what_the_headers_declare():
    """Every type, function, constant or member the page names in backticks (a CamelCase or
    kConstant word, or a snake_case one) is declared in a public header: the page invents
    no API. Arrow's, the standard library's and CMake's names are not Quiver's to check."""
    page = (REPO / "docs" / "cpp-api.md").read_text()
    headers = "\n".join((REPO / "include" / "quiver" / h).read_text() for h in PUBLIC_HEADERS)
    prose = re.sub(r"```.*?```", "", page, flags=re.S)
    unknown = set()
    for span in re.findall(r"`([^`\n]+)`", prose):
        if "/" in span or re.search(r"\.(h|cc|md|py|txt)\b", span):
            continue  # a file
        for name in re.findall(r"(?:[A-Za-z_]\w*::)*[A-Za-z_]\w*", span):
            parts = name.split("::")
            if parts[0] in ("std", "arrow", "nlohmann", "Quiver"):
                continue
            for part in parts:
                if re.fullmatch(r"k[A-Z]\w*|[A-Z]\w*[a-z]\w*|[a-z]+_[a-z_]+", part) and \
                        not re.search(rf"\b{part}\b", headers):
                    unknown.add(name)
    assert not unknown, f"docs/cpp-api.md names what no public header declares: {sorted(unknown)}"


# --- links --------------------------------------------------------------------------------

def _anchors(path: pathlib.Path) -> set:
    """GitHub's anchors for the headings of a markdown file."""
    found: set = set()
    seen: dict = {}
    text = re.sub(r"^ *```.*?^ *```", "", path.read_text(), flags=re.S | re.M)
    for heading in re.findall(r"^#+\s+(.*?)\s*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def test_relative_links_lead_to_files_and_headings_that_exist():
    broken = []
    for path in DOCS:
        text = re.sub(r"^ *```.*?^ *```", "", path.read_text(), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            linked = (path.parent / file) if file else path
            if not linked.exists():
                broken.append(f"{path.relative_to(REPO)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


# --- words --------------------------------------------------------------------------------

def _texts() -> dict:
    texts = {str(p.relative_to(REPO)): p.read_text() for p in DOCS}
    quiver = BUILD / "quiver"
    if quiver.exists():
        for command in ("", "run", "ls", "top", "echo", "info", "clean", "bench", "serve",
                        "bridge"):
            args = [str(quiver), *([command] if command else []), "--help"]
            texts[f"quiver {command} --help"] = subprocess.run(
                args, capture_output=True, text=True, timeout=30).stdout
    texts["bench/suite.py --help"] = subprocess.run(
        [sys.executable, str(REPO / "bench" / "suite.py"), "--help"], capture_output=True,
        text=True, timeout=60).stdout
    return texts


# Shorthand of the project's own history that an outsider cannot resolve.
PRIVATE = [
    (r"\bseeds?'", "the seeds'"),
    (r"BENCHMARKS\.md", "BENCHMARKS.md (not in the repository)"),
    (r"\bissue \d+|\(#\d+\)", "an issue number"),
    (r"\bfirst wave\b", "the first wave"),
    (r"\bthis session\b", "this session"),
    (r"\bEvidence\b", "Evidence (say what the example does)"),
]


def test_the_docs_and_help_texts_use_no_private_shorthand():
    found = []
    for name, text in _texts().items():
        if name == "docs/python-api.md":
            continue  # the docstrings' words; their own tests hold them
        for pattern, what in PRIVATE:
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{name}:{line}: {what}")
    assert not found, "\n".join(found)


def test_pip_installs_name_the_distribution():
    """`pip install quiver` installs an unrelated project: the distribution is quiver-ipc."""
    wrong = []
    for path in DOCS:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"pip install\s+(-\S+\s+)*quiver(?![-\w])", line):
                wrong.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not wrong, "say `pip install quiver-ipc` (the import name is quiver):\n" + \
        "\n".join(wrong)
