"""The pins hold together, the environment matches them, the data folder is honoured."""

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)$")


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


def lock() -> dict[str, str]:
    pins, problems = parse_file(REQ / "lock.txt")
    assert not problems, problems
    return pins


@pytest.mark.parametrize(
    "name", ["base.txt", "torch.txt", "tensorflow.txt", "mxnet.txt", "dev.txt", "reference.txt"]
)
def test_every_requirement_is_an_exact_pin_agreeing_with_the_lock(name):
    pins, problems = parse_file(REQ / name)
    assert not problems, problems
    assert pins, f"{name} pins nothing"
    locked = lock()
    for package, version in pins.items():
        if name == "reference.txt":  # installed with --no-deps, outside the lock
            continue
        assert locked.get(package) == version, f"{name}: {package}=={version} vs lock"


def test_framework_files_constrain_with_the_lock():
    for name in ["base.txt"]:
        assert "-c lock.txt" in (REQ / name).read_text().splitlines()


def test_the_checked_versions_are_pinned():
    locked = lock()
    expected = {
        "numpy": "1.23.5",
        "torch": "2.13.0",
        "tensorflow-cpu": "2.15.1",
        "mxnet": "1.9.1",
        "matplotlib": "3.7.2",
        "contourpy": "1.2.1",
    }
    assert {k: locked.get(k) for k in expected} == expected


def test_environment_yml_pins_python_311_and_the_same_packages_as_pip():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1
    conda_pins, problems = parse_lines(pip_sections[0], ROOT)
    assert not problems, problems
    assert "-c requirements/lock.txt" in pip_sections[0]
    dev_pins, _ = parse_file(REQ / "dev.txt")
    assert conda_pins == dev_pins


def test_installed_versions_match_the_lock():
    locked = lock()
    wrong = {}
    for package, version in locked.items():
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            wrong[package] = (version, None)
            continue
        if installed.split("+")[0] != version:
            wrong[package] = (version, installed)
    assert not wrong, f"(pinned, installed): {wrong}"


def test_the_three_frameworks_import_at_the_pinned_versions():
    code = (
        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n"
        "import numpy, torch, tensorflow, mxnet\n"
        "print(numpy.__version__, torch.__version__.split('+')[0], tensorflow.__version__,"
        " mxnet.__version__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1.23.5", "2.13.0", "2.15.1", "1.9.1"]


def test_python_is_311():
    assert sys.version_info[:2] == (3, 11)


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


def test_makefile_rejects_a_wrong_python_in_one_line(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo Python 3.9.1; exit 0; fi\nexit 1\n'
    )
    fake.chmod(0o755)
    out = subprocess.run(
        ["make", "-s", "venv", f"PYTHON={fake}", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "3.11" in errors[0] and "3.9.1" in errors[0]
    assert not (tmp_path / "venv").exists()
