"""The current stack's framework files install on Linux x86_64, macOS arm64 and Windows.

Checked from this Linux machine with pip's ``--only-binary=:all: --platform ... --python-version
3.12 --implementation cp`` (needs the package registry: marked ``registry``, run by ``make
test-platforms`` and CI). Not with ``pip install --dry-run`` on the whole file: pip evaluates
environment markers against the machine it runs on, not the ``--platform`` given, so resolving
``torch`` "for macOS" asks for its Linux-only CUDA wheels; and the registry serves no separate
metadata files, so every dry run downloads every wheel again. Instead each dependency level is
fetched with ``pip download --no-deps`` into a lasting wheel folder (``D2L_WHEELS``, as the
Makefile's installs), the next level read from the wheels' metadata with markers evaluated for
the target platform here. Versions follow the stack's lock file (``-c``), as an install does.
"""

import contextlib
import email.parser
import fcntl
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CURRENT = ROOT / "requirements" / "current"
# The oldest systems we claim: glibc 2.28 (torch's manylinux tag), macOS 14 (torch's arm64
# wheels), 64-bit Windows. pip widens a macOS tag to older releases, not a manylinux one.
LINUX_TAGS = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)] + [
    "manylinux2014_x86_64"
]
PLATFORMS = {
    "linux-x86_64": (LINUX_TAGS, {"sys_platform": "linux", "platform_system": "Linux",
                                  "platform_machine": "x86_64", "os_name": "posix"}),
    "macos-arm64": (["macosx_14_0_arm64"], {"sys_platform": "darwin", "platform_system": "Darwin",
                                           "platform_machine": "arm64", "os_name": "posix"}),
    "windows-amd64": (["win_amd64"], {"sys_platform": "win32", "platform_system": "Windows",
                                      "platform_machine": "AMD64", "os_name": "nt"}),
}  # fmt: skip
PYTHON = "3.12"
FRAMEWORK_FILES = {"torch.txt": "torch", "tensorflow.txt": "tensorflow"}
MAX_LEVELS = 20


def marker_env(platform: str) -> dict[str, str]:
    """Values of the environment markers on ``platform`` with CPython ``PYTHON``."""
    return {
        **PLATFORMS[platform][1],
        "python_version": PYTHON,
        "python_full_version": f"{PYTHON}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def dependencies(requires: list[str], extras: set[str], env: dict[str, str]) -> list:
    """The requirements among ``requires`` (a wheel's Requires-Dist) that apply on ``env`` when
    the package is installed with ``extras``."""
    from packaging.requirements import Requirement

    applying = []
    for text in requires:
        req = Requirement(text)
        if req.marker is None or any(
            req.marker.evaluate({**env, "extra": extra}) for extra in extras | {""}
        ):
            applying.append(req)
    return applying


def wheel_folder(platform: str) -> Path:
    """Where the wheels for ``platform`` are kept: the Makefile's wheel folder for Linux (the
    current stack's install fills it), a folder of their own for the others."""
    root = Path(os.environ.get("D2L_WHEELS", Path.home() / ".cache" / "d2l-deep-rnn" / "wheels"))
    return root if platform == "linux-x86_64" else root / "platforms" / platform


def fetch(requirements: list[str], platform: str, tmp: Path) -> dict[str, dict]:
    """Fetch the wheels of ``requirements`` (not their dependencies) for ``platform``:
    canonical name -> {"version", "requires"}. Fails the test with pip's error when one has no
    wheel there."""
    tags = [arg for tag in PLATFORMS[platform][0] for arg in ("--platform", tag)]
    listed = tmp / "requirements.txt"
    listed.write_text("\n".join(requirements) + "\n")
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off",
        "--only-binary=:all:", *tags, "--python-version", PYTHON, "--implementation", "cp",
        "-d", str(wheel_folder(platform)), "-c", str(CURRENT / "lock.txt"), "-r", str(listed),
    ]  # fmt: skip
    # The machine's pip constraints (a torch cap, README) do not apply to the current stack.
    env = {**os.environ, "PIP_CONSTRAINT": "/dev/null"}
    with folder_lock(wheel_folder(platform)):  # one pip at a time writes a platform's folder
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        assert done.returncode == 0, f"{platform}: {' / '.join(errors) or done.stderr[-2000:]}"
        saved = re.findall(
            r"^\s*(?:Saved|File was already downloaded) (\S+\.whl)$", done.stdout, re.M
        )
        return dict(wheel_metadata(Path(path)) for path in saved)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (a lock file in it) while pip writes it.

    The tests of one platform share its wheel folder, and xdist runs them side by side: two
    pips downloading the same wheel into it made one of them find the wheel gone (pip deletes
    a file whose hash does not match, a file the other pip was still writing).
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".d2l-download.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def wheel_metadata(wheel: Path) -> tuple[str, dict]:
    """(canonical name, {"version", "requires"}) from a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.BytesHeaderParser().parsebytes(archive.read(name))
    return canonical(meta["Name"]), {
        "version": meta["Version"],
        "requires": meta.get_all("Requires-Dist") or [],
    }


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve(file: Path, platform: str, tmp: Path) -> dict[str, str]:
    """Every package installing ``file`` brings on ``platform``: name -> version (wheels only),
    resolved level by level (see the module's docstring)."""
    env = marker_env(platform)
    lines = [line.split("#")[0].strip() for line in file.read_text().splitlines()]
    pending = [line for line in lines if line and not line.startswith("-")]
    for line in lines:
        if line.startswith("-r "):  # one level of inclusion is all the framework files use
            pending += [
                entry.split("#")[0].strip()
                for entry in (file.parent / line[3:].strip()).read_text().splitlines()
                if entry.strip() and not entry.startswith(("#", "-"))
            ]
    found: dict[str, dict] = {}
    extras_of: dict[str, set[str]] = {}
    for _ in range(MAX_LEVELS):
        if not pending:
            return {name: item["version"] for name, item in found.items()}
        found.update(fetch(pending, platform, tmp))
        pending = []
        for name, item in found.items():
            for req in dependencies(item["requires"],
                                    extras_of.get(name, set()), env):  # fmt: skip
                dep = canonical(req.name)
                new_extras = set(req.extras) - extras_of.get(dep, set())
                if dep not in found or new_extras:
                    extras_of.setdefault(dep, set()).update(req.extras)
                    pending.append(str(req).split(";")[0])
        pending = sorted(set(pending))
        for req in pending:  # re-resolved with their extras (dependencies of an extra)
            found.pop(canonical(re.split(r"[\[<>=!~ ]", req)[0]), None)
    pytest.fail(f"{file.name} on {platform}: dependencies still pending after {MAX_LEVELS} levels")


@pytest.mark.registry
@pytest.mark.parametrize(
    ("name", "platform"),
    [(name, platform) for platform in PLATFORMS for name in FRAMEWORK_FILES],
)
def test_framework_file_installs_from_wheels_on_every_platform(name, platform, tmp_path):
    resolved = resolve(CURRENT / name, platform, tmp_path)
    locked = dict(
        line.split("==")
        for line in (CURRENT / "lock.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    framework = FRAMEWORK_FILES[name]
    assert resolved.get(framework) == locked[framework], resolved
    assert resolved.get("numpy") == locked["numpy"], resolved
    # markers evaluated for the target: PyTorch's CUDA wheels on Linux only
    cuda = {"triton", "nvidia-nccl-cu13"} & resolved.keys()
    assert bool(cuda) == (platform == "linux-x86_64" and framework == "torch"), cuda
