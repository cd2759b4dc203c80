"""The README's examples run as written (issue 31): every shell block of README.md, in order.

The rule (README.md, "Contributing"):

* a block is a fenced block whose language is ``sh``, ``bash``, ``shell`` or ``console``;
* its commands are its lines (a line ending in ``\\`` continues on the next; blank lines and
  comment lines are not commands; in a ``console`` block only ``$ `` lines are commands);
* every block runs, top to bottom, in one fresh temporary directory that holds a copy of
  ``examples/`` and ``.venv`` (a link to the environment running the tests), with
  ``.venv/bin`` first on ``PATH``; each command runs alone with ``bash -c``;
* a command must exit 0, or the code its trailing comment names (``# VIOLATION, exit 1``);
* a block right after ``<!-- readme-test: skip: REASON -->`` is not run (at most
  :data:`MAX_SKIPPED`, each with its reason); a block right after
  ``<!-- readme-test: same as PATH -->`` must hold exactly the text of the file PATH.

Run it alone with ``.venv/bin/python -m pytest tests/test_readme.py``, or as a script,
``.venv/bin/python tests/test_readme.py``, which prints each block's wall and CPU time.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"
SHELL = ("sh", "bash", "shell", "console")
MAX_SKIPPED = 3
#: the largest example file (bytes): examples are small, a few KB
MAX_EXAMPLE_BYTES = 8 * 1024
COMMAND_TIMEOUT_S = 300
MARKER = re.compile(r"^<!--\s*readme-test:\s*(skip|same as)\s*:?\s*(.*?)\s*-->\s*$")
EXPECTED_EXIT = re.compile(r"\s#\s[^'\"]*\bexit (\d+)\b[^'\"]*$")


@dataclass
class Block:
    """One fenced block of the README: where it starts, its section, language and text, and
    the marker on the line before it (``skip`` with its reason, or ``same as`` with a path)."""

    line: int
    section: str
    lang: str
    text: str
    marker: str = ""
    argument: str = ""

    @property
    def name(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")[:40]
        return f"L{self.line}-{slug}"


@dataclass
class Command:
    text: str
    expected: int = 0


@dataclass
class Outcome:
    block: Block
    wall_s: float = 0.0
    cpu_s: float = 0.0
    commands: list[str] = field(default_factory=list)


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README, with its section and marker."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks, section, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        heading = re.match(r"^#+\s+(.*)$", line)
        if heading:
            section = heading.group(1).strip()
        fence = re.match(r"^```(\S*)", line)
        if fence:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            j = start - 2
            while j >= 0 and not lines[j].strip():
                j -= 1
            mark = MARKER.match(lines[j]) if j >= 0 else None
            blocks.append(Block(start, section, fence.group(1), "\n".join(body) + "\n",
                                mark.group(1) if mark else "", mark.group(2) if mark else ""))
        i += 1
    return blocks


def shell_blocks(text: str | None = None) -> list[Block]:
    return [b for b in readme_blocks(text) if b.lang in SHELL]


def block_commands(block: Block) -> list[Command]:
    """The commands of a shell block (see the module docstring), each with its expected exit code."""
    raw = block.text.splitlines()
    if block.lang == "console":
        raw = [line[2:] for line in raw if line.startswith("$ ")]
    out: list[Command] = []
    pending = ""
    for line in raw:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = pending + line
        pending = ""
        expected = EXPECTED_EXIT.search(text)
        out.append(Command(text.strip(), int(expected.group(1)) if expected else 0))
    assert not pending, f"README line {block.line}: a block ends inside a continued command"
    return out


def make_workdir(path: Path) -> dict[str, str]:
    """Fill ``path`` as a fresh clone's working directory would be for the examples: a copy of
    ``examples/`` and ``.venv`` linked to the running environment. Returns the commands' env."""
    shutil.copytree(EXAMPLES, path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    venv = Path(sys.prefix)  # the environment running the tests (make test: .venv)
    if not (venv / "bin" / "packrat").exists():
        exe = shutil.which("packrat")
        assert exe, "packrat is not installed here (make test sets up .venv)"
        venv = Path(exe).resolve().parent.parent
    (path / ".venv").symlink_to(venv, target_is_directory=True)
    env = dict(os.environ)
    env["PATH"] = f"{path / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    for name in ("PACKRAT_MAX_MEMORY_MB", "PACKRAT_OMP_POLICY"):
        env.pop(name, None)  # the examples set their own
    return env


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_block(block: Block, workdir: Path, env: dict[str, str]) -> Outcome:
    """Run every command of ``block`` in ``workdir``; AssertionError naming the first command
    whose exit code is not the expected one (with its output)."""
    outcome = Outcome(block)
    t0, c0 = time.monotonic(), _children_cpu_s()
    for cmd in block_commands(block):
        proc = subprocess.run(["bash", "-c", cmd.text], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        outcome.commands.append(cmd.text)
        assert proc.returncode == cmd.expected, (
            f"README line {block.line} ({block.section}): `{cmd.text}` exited {proc.returncode}, "
            f"expected {cmd.expected}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    outcome.wall_s, outcome.cpu_s = time.monotonic() - t0, _children_cpu_s() - c0
    return outcome


def timing_table(outcomes: list[Outcome]) -> str:
    rows = ["| README line | section | commands | wall s | CPU s |", "|---:|---|---:|---:|---:|"]
    rows += [f"| {o.block.line} | {o.block.section} | {len(o.commands)} | {o.wall_s:.1f} | {o.cpu_s:.1f} |"
             for o in outcomes]
    rows.append(f"| | total | {sum(len(o.commands) for o in outcomes)} | {sum(o.wall_s for o in outcomes):.1f} "
                f"| {sum(o.cpu_s for o in outcomes):.1f} |")
    return "\n".join(rows)


# ------------------------------------------------------------------------------ pytest

try:
    import pytest
except ImportError:  # pragma: no cover - the script mode needs no pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    RUN = [b for b in shell_blocks() if b.marker != "skip"]
    needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                                        reason="the README's real-model examples need 2 CPUs")
    OUTCOMES: list[Outcome] = []

    @pytest.fixture(scope="module")
    def workdir():
        with tempfile.TemporaryDirectory(prefix="packrat-readme-") as tmp:
            path = Path(tmp)
            env = make_workdir(path)
            yield path, env
        if OUTCOMES:
            print("\nREADME examples (tests/test_readme.py):\n" + timing_table(OUTCOMES))

    @needs_two_cpus
    @pytest.mark.parametrize("block", RUN, ids=[b.name for b in RUN])
    def test_every_shell_block_of_the_readme_runs_as_written(block, workdir):
        path, env = workdir
        OUTCOMES.append(run_block(block, path, env))

    def test_the_blocks_that_are_not_run_are_few_and_say_why():
        skipped = [b for b in shell_blocks() if b.marker == "skip"]
        assert len(skipped) <= MAX_SKIPPED, [b.name for b in skipped]
        assert all(len(b.argument) > 10 for b in skipped), [b.name for b in skipped if len(b.argument) <= 10]
        assert len(RUN) >= 10

    def test_a_block_marked_same_as_a_file_holds_exactly_that_file():
        marked = [b for b in readme_blocks() if b.marker == "same as"]
        assert marked
        for b in marked:
            assert b.text == (ROOT / b.argument).read_text(encoding="utf-8"), f"README line {b.line} != {b.argument}"

    def test_every_example_file_the_readme_names_exists_and_every_example_is_used():
        text = README.read_text(encoding="utf-8")
        named = set(re.findall(r"examples/[\w./*-]*[\w*]", text))
        for name in named:
            assert any(ROOT.glob(name)) or (ROOT / name).exists(), f"README names {name}, which is not there"
        commands = " ".join(c.text for b in RUN for c in block_commands(b))
        for f in EXAMPLES.rglob("*"):
            if f.is_file() and f.name not in ("README.md", "make_examples.py"):
                rel = f.relative_to(ROOT).as_posix()
                assert rel in commands or f"{f.parent.relative_to(ROOT).as_posix()}/" in commands, (
                    f"{rel} is used by no README example")

    def test_example_files_are_small():
        big = [(f.name, f.stat().st_size) for f in EXAMPLES.rglob("*") if f.is_file()
               and f.stat().st_size > MAX_EXAMPLE_BYTES]
        assert big == []

    @pytest.mark.parametrize("text, commands", [
        ("```sh\na --x 1   # note\n\n# a comment\nb \\\n  c   # VIOLATION, exit 1\n```\n",
         [("a --x 1   # note", 0), ("b    c   # VIOLATION, exit 1", 1)]),
        ("```console\n$ packrat plan --json\n{\"batch\": 1}\n$ packrat check h  # exit 3\n```\n",
         [("packrat plan --json", 0), ("packrat check h  # exit 3", 3)]),
        ("```sh\nX=1 packrat 'a # exit 2'\n```\n", [("X=1 packrat 'a # exit 2'", 0)]),
    ])
    def test_the_rule_reads_commands_continuations_and_expected_exit_codes(text, commands):
        (block,) = shell_blocks(text)
        assert [(c.text, c.expected) for c in block_commands(block)] == commands

    def test_a_marker_applies_to_the_block_right_after_it():
        text = ("## S\n<!-- readme-test: skip: needs a Ray cluster -->\n```sh\nray\n```\n\n```bash\nok\n```\n"
                "<!-- readme-test: same as examples/grid.toml -->\n```toml\nx = 1\n```\n")
        blocks = readme_blocks(text)
        assert [(b.lang, b.marker, b.argument, b.section) for b in blocks] == [
            ("sh", "skip", "needs a Ray cluster", "S"), ("bash", "", "", "S"),
            ("toml", "same as", "examples/grid.toml", "S")]


def main() -> int:
    """Script mode: run every block (the same rule) and print the timing table."""
    outcomes, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="packrat-readme-") as tmp:
        env = make_workdir(Path(tmp))
        for block in shell_blocks():
            if block.marker == "skip":
                print(f"skip  README line {block.line} ({block.section}): {block.argument}", file=sys.stderr)
                continue
            try:
                outcomes.append(run_block(block, Path(tmp), env))
                print(f"ok    README line {block.line} ({block.section}): {outcomes[-1].wall_s:.1f} s", file=sys.stderr)
            except AssertionError as exc:
                failed += 1
                print(f"FAIL  {exc}", file=sys.stderr)
    print(timing_table(outcomes))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
