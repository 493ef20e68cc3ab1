"""The documentation runs: every ```python block of README.md and docs/*.md, page by page.

The blocks of one page run in order in one namespace, in a temporary working directory holding
a copy of ``problems/`` (so paths read as from the repository root). A block whose first line is
``# doctest: skip`` is only shown; a block whose first line is ``# file: PATH`` is also written
to ``PATH`` (relative to the working directory) before it runs, as the page tells the reader to.
"""

from __future__ import annotations

import importlib.util
import linecache
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md")) + ([ROOT / "README.md"] if (ROOT / "README.md").is_file() else [])
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
SKIP = "# doctest: skip"
FILE = re.compile(r"^# file: (?P<path>\S+)")
QUICKSTART = [
    "pip install torch==2.13.0 -e . && kanphys run problems/poisson2d.py",
    "pip install -e '.[test]' && python -m pytest",
]


def code_blocks(path: Path, lang: str) -> list[str]:
    """The bodies of the fenced blocks of language ``lang`` in a Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    return [m["body"] for m in FENCE.finditer(text) if m["lang"] == lang]


def compile_block(block: str, name: str):
    """Compile a block under ``name``, registering its source so tracebacks and the printed
    lambdas of ``print(problem)`` show it as they would from a file."""
    linecache.cache[name] = (len(block), None, block.splitlines(keepends=True), name)
    return compile(block, name, "exec")


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture
def one_thread():
    """Run the examples on one CPU thread: their tensors are small, and on a busy machine
    intra-op threads cost more than they give."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_docs_pages_exist():
    names = {p.name for p in DOCS.glob("*.md")}
    assert {"index.md", "getting-started.md", "concepts.md", "tutorial.md"} <= names


@pytest.mark.timeout(120)
@pytest.mark.parametrize("page", PAGES, ids=page_id)
@pytest.mark.usefixtures("one_thread")
def test_python_blocks_of_page_run_in_order(page, tmp_path, monkeypatch):
    blocks = [b for b in code_blocks(page, "python") if not b.startswith(SKIP)]
    if not blocks:
        pytest.skip(f"{page_id(page)} has no runnable python blocks")
    shutil.copytree(ROOT / "problems", tmp_path / "problems")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for number, block in enumerate(blocks, start=1):
        target = FILE.match(block)
        if target:
            destination = tmp_path / target["path"]
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(block, encoding="utf-8")
        exec(compile_block(block, f"{page_id(page)}[python block {number}]"), namespace)


def test_getting_started_quickstart_is_the_two_commands():
    bash = code_blocks(DOCS / "getting-started.md", "bash")
    assert bash, "docs/getting-started.md has no bash block"
    lines = [line.strip() for line in bash[0].splitlines() if line.strip()]
    assert lines == QUICKSTART


def test_skipped_blocks_are_rare_in_docs():
    blocks = [b for page in sorted(DOCS.glob("*.md")) for b in code_blocks(page, "python")]
    skipped = [b for b in blocks if b.startswith(SKIP)]
    assert len(skipped) <= max(1, len(blocks) // 10)


@pytest.mark.timeout(120)
@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed")
def test_mkdocs_build_is_strict_clean(tmp_path):
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "index.html").is_file()
