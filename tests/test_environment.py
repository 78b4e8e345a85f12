"""The pins hold together, the environment matches them, the data folder is honoured."""

import importlib.metadata
import itertools
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)$")


@dataclass(frozen=True)
class Stack:
    """One supported stack: its pins, conda file, Python and the versions README states."""

    folder: Path  # its lock.txt and base.txt
    files: tuple[str, ...]  # requirement files, relative to requirements/
    environment: str
    python: tuple[int, int]
    checked: dict = field(hash=False)  # package -> version, as README's table shows them
    modules: tuple[str, ...]  # imported together, in this order, by the import test


STACKS = {
    "pinned": Stack(
        REQ,
        ("base.txt", "torch.txt", "tensorflow.txt", "mxnet.txt", "dev.txt", "reference.txt"),
        "environment.yml",
        (3, 11),
        {
            "numpy": "1.23.5",
            "torch": "2.13.0",
            "tensorflow-cpu": "2.15.1",
            "keras": "2.15.0",
            "mxnet": "1.9.1",
            "matplotlib": "3.7.2",
            "contourpy": "1.2.1",
        },
        ("numpy", "torch", "tensorflow", "mxnet"),
    ),
    "current": Stack(
        REQ / "current",
        ("current/base.txt", "current/torch.txt", "current/tensorflow.txt", "current/dev.txt"),
        "environment-current.yml",
        (3, 12),
        {
            "numpy": "2.5.5",
            "torch": "2.15.0",
            "tensorflow": "2.21.0",
            "keras": "3.15.1",
            "matplotlib": "3.11.2",
        },
        ("numpy", "torch", "tensorflow"),  # torch first: see tests/conftest.py
    ),
}
RUNNING = next((n for n, s in STACKS.items() if s.python == sys.version_info[:2]), None)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lines(lines, base: Path) -> tuple[dict[str, str], list[str]]:
    """Pins (name -> version) and problems of requirement lines, following -r includes."""
    pins, problems = {}, []
    for raw in lines:
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#") or line.startswith("-c "):
            continue
        if line.startswith("-r "):
            sub, sub_problems = parse_file(base / line[3:].strip())
            pins.update(sub)
            problems += sub_problems
            continue
        match = PIN.match(line)
        if not match:
            problems.append(f"not an exact pin: {line!r}")
            continue
        pins[canonical(match[1])] = match[2]
    return pins, problems


def parse_file(path: Path) -> tuple[dict[str, str], list[str]]:
    return parse_lines(path.read_text().splitlines(), path.parent)


def lock(stack: str) -> dict[str, str]:
    pins, problems = parse_file(STACKS[stack].folder / "lock.txt")
    assert not problems, problems
    return pins


def running_stack() -> str:
    if RUNNING is None:
        pytest.fail(f"Python {sys.version.split()[0]} belongs to no stack: {STACKS}")
    return RUNNING


@pytest.mark.parametrize(("stack", "name"), [(s, f) for s in STACKS for f in STACKS[s].files])
def test_every_requirement_is_an_exact_pin_agreeing_with_the_lock(stack, name):
    pins, problems = parse_file(REQ / name)
    assert not problems, problems
    assert pins, f"{name} pins nothing"
    if name == "reference.txt":  # both stacks install it with --no-deps, outside the locks
        return
    locked = lock(stack)
    for package, version in pins.items():
        assert locked.get(package) == version, f"{stack} {name}: {package}=={version} vs lock"


@pytest.mark.parametrize("stack", STACKS)
def test_requirement_files_constrain_with_their_stack_s_lock(stack):
    folder = STACKS[stack].folder
    assert "-c lock.txt" in (folder / "base.txt").read_text().splitlines()
    for name in STACKS[stack].files:
        if Path(name).name not in ("base.txt", "reference.txt"):
            lines = (REQ / name).read_text().splitlines()
            assert any(line in ("-r base.txt", "-r torch.txt") for line in lines), name


@pytest.mark.parametrize("stack", STACKS)
def test_the_checked_versions_are_pinned(stack):
    locked = lock(stack)
    expected = STACKS[stack].checked
    assert {k: locked.get(k) for k in expected} == expected


def test_the_current_stack_has_no_mxnet_and_no_python_311_only_pin():
    locked = lock("current")
    assert "mxnet" not in locked
    assert int(locked["numpy"].split(".")[0]) >= 2
    assert int(locked["keras"].split(".")[0]) >= 3


@pytest.mark.parametrize("stack", STACKS)
def test_environment_yml_pins_the_stack_s_python_and_the_same_packages_as_pip(stack):
    s = STACKS[stack]
    env = yaml.safe_load((ROOT / s.environment).read_text())
    deps = env["dependencies"]
    assert f"python={s.python[0]}.{s.python[1]}" in deps
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1
    conda_pins, problems = parse_lines(pip_sections[0], ROOT)
    assert not problems, problems
    assert f"-c {s.folder.relative_to(ROOT).as_posix()}/lock.txt" in pip_sections[0]
    dev_pins, _ = parse_file(s.folder / "dev.txt")
    assert conda_pins == dev_pins


def test_the_two_environment_files_name_two_environments():
    names = {yaml.safe_load((ROOT / s.environment).read_text())["name"] for s in STACKS.values()}
    assert len(names) == 2


def test_pyproject_states_the_tested_pythons_and_floors_only():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    spec = SpecifierSet(meta["requires-python"])
    assert {f"{s.python[0]}.{s.python[1]}.0" in spec for s in STACKS.values()} == {True}
    assert "3.10.0" not in spec and "3.13.0" not in spec
    for extra, reqs in [("", meta["dependencies"]), *meta["optional-dependencies"].items()]:
        for text in reqs:
            req = Requirement(text)
            for stack in STACKS:
                if req.marker is None or req.marker.evaluate(
                    {"python_version": ".".join(map(str, STACKS[stack].python))}
                ):
                    locked = lock(stack)
                    name = canonical(req.name)  # the pinned stack has TensorFlow's CPU build
                    version = locked.get(name, locked.get(f"{name}-cpu"))
                    assert version is not None, f"{extra or 'dependencies'}: {text} ({stack})"
                    assert version in req.specifier, f"{text}: {stack} locks {version}"


def test_installed_versions_match_the_lock():
    locked = lock(running_stack())
    wrong = {}
    for package, version in locked.items():
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            wrong[package] = (version, None)
            continue
        if installed.split("+")[0] != version:
            wrong[package] = (version, installed)
    assert not wrong, f"{RUNNING} stack, (pinned, installed): {wrong}"


def test_the_frameworks_import_together_at_the_pinned_versions():
    s = STACKS[running_stack()]
    code = (
        f"import {', '.join(s.modules)}\n"
        f"print(*(m.__version__.split('+')[0] for m in ({', '.join(s.modules)})))\n"
    )
    env = {**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    locked = lock(running_stack())
    wheel = {"tensorflow": "tensorflow-cpu" if "tensorflow-cpu" in locked else "tensorflow"}
    assert out.stdout.split() == [locked[wheel.get(m, m)] for m in s.modules]


def test_python_belongs_to_a_stack():
    assert running_stack() in STACKS


def test_data_dir_variable_is_honoured(tmp_path, monkeypatch):
    from d2l_shim._common import TIME_MACHINE, fetch

    source = Path(__import__("os").environ["D2L_DATA_DIR"]) / TIME_MACHINE.name
    (tmp_path / TIME_MACHINE.name).write_bytes(source.read_bytes())
    monkeypatch.setenv("D2L_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("D2L_CACHE_DIR", str(tmp_path / "cache"))
    assert fetch(TIME_MACHINE) == tmp_path / TIME_MACHINE.name
    assert not (tmp_path / "cache").exists()


def test_the_data_text_is_not_in_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "timemachine" not in tracked.lower()


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.parametrize("stack", STACKS)
def test_makefile_rejects_a_wrong_python_in_one_line(stack, tmp_path):
    fake = tmp_path / "python3"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo Python 3.9.1; exit 0; fi\nexit 1\n'
    )
    fake.chmod(0o755)
    out = make("venv", f"STACK={stack}", f"PYTHON={fake}", f"VENV={tmp_path / 'venv'}")
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    wanted = ".".join(map(str, STACKS[stack].python))
    assert len(errors) == 1 and wanted in errors[0] and "3.9.1" in errors[0], out.stderr
    assert not (tmp_path / "venv").exists()


def fake_python(path: Path, version: str, works: bool = True) -> None:
    """A script answering --version and printing its own path for sys.executable; a failing
    one stands for a pyenv shim of a version that is not selected."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (
        f'case "$*" in *--version*) echo Python {version};; *sys.executable*) echo "$0";;'
        " *version_info*) exit 0;;"
        " *) exit 1;; esac"
        if works
        else "echo 'pyenv: python3.12: command not found' >&2; exit 127"
    )
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def which_python(tmp_path: Path, versions: list[str]) -> subprocess.CompletedProcess:
    """`make which-python STACK=current` with only tmp_path/bin and the system on PATH, and a
    fake pyenv that has ``versions`` under tmp_path/versions."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    fake_pyenv = tmp_path / "bin" / "pyenv"
    fake_pyenv.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = versions ]; then printf "%s\\n" system {" ".join(versions)}; exit 0; fi\n'
        f'if [ "$1" = prefix ]; then echo {tmp_path}/versions/$2; exit 0; fi\nexit 1\n'
    )
    fake_pyenv.chmod(0o755)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PYENV")}
    env["PATH"] = f"{tmp_path / 'bin'}:/usr/bin:/bin"
    return make("which-python", "STACK=current", env=env)


def test_makefile_finds_python_312_on_path_first(tmp_path):
    fake_python(tmp_path / "bin" / "python3.12", "3.12.4")
    fake_python(tmp_path / "versions" / "3.12.9" / "bin" / "python3.12", "3.12.9")
    out = which_python(tmp_path, ["3.11.7", "3.12.9"])
    assert out.stdout.strip() == str(tmp_path / "bin" / "python3.12"), out.stderr


def test_makefile_finds_the_newest_pyenv_python_312_behind_a_shim_that_fails(tmp_path):
    fake_python(tmp_path / "bin" / "python3.12", "3.12.4", works=False)
    for version in ("3.12.1", "3.12.10", "3.12.9"):
        fake_python(tmp_path / "versions" / version / "bin" / "python3.12", version)
    out = which_python(tmp_path, ["3.11.7", "3.12.1", "3.12.10", "3.12.9", "3.13.0"])
    expected = tmp_path / "versions" / "3.12.10" / "bin" / "python3.12"
    assert out.stdout.strip() == str(expected), out.stderr


def test_makefile_says_in_one_line_when_python_312_is_missing(tmp_path):
    out = which_python(tmp_path, ["3.11.7"])
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "3.12" in errors[0] and "found: none" in errors[0], out.stderr


def unit_runs(stack: str) -> list[str]:
    """The -m selections of `make test-unit STACK=stack`, one per pytest process."""
    out = make(f"STACK={stack}", "--eval", "show-runs: ; @printf '%s\\n' $(UNIT_RUNS)", "show-runs")
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.mark.parametrize("stack", STACKS)
def test_each_test_runs_in_exactly_one_process_of_its_stack(stack):
    """Every combination of framework markers is selected by one run when the stack has those
    frameworks, by none otherwise; `registry` tests are left to `make test-platforms`."""
    from _pytest.mark.expression import Expression

    runs = [Expression.compile(selection) for selection in unit_runs(stack)]
    has = {"torch", "tensorflow", *(["mxnet"] if "mxnet" in STACKS[stack].modules else [])}
    assert len(runs) == 1 + len(has)
    names = ["torch", "tensorflow", "mxnet", "registry"]
    for size in range(len(names) + 1):
        for markers in itertools.combinations(names, size):
            hits = sum(run.evaluate(lambda m, ms=markers: m in ms) for run in runs)
            if "registry" in markers and len(markers) > 1:
                continue  # registry tests need no framework
            expected = int(set(markers) <= has) if "registry" not in markers else 0
            assert hits == expected, (stack, markers, hits)


def test_a_pytest_run_that_collects_nothing_fails_make(tmp_path):
    """pytest exits 5 when nothing is collected: make must fail, not carry on."""
    venv = Path(sys.prefix)
    out = make(
        "test-unit",
        f"STACK={running_stack()}",
        f"VENV={venv}",
        f"-o{venv}/.installed",  # never (re)install the running venv from a test
        "UNIT_TESTS=tests/test_environment.py",
        "PYTEST_ARGS=-k no_test_has_this_name",
    )
    assert out.returncode != 0
    assert "deselected" in out.stdout and "exit status 5" not in out.stdout, out.stdout[-2000:]
    assert "Error 5" in out.stderr, out.stderr[-2000:]
