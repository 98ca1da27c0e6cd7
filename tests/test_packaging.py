"""The built wheel and sdist carry what a user of the package page needs."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from it, as ``python -m build`` makes them."""
    out = tmp_path_factory.mktemp("dist")
    # No isolation: the test extra installs the build backend, so no download.
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = list(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_wheel_carries_the_license(dist: Path) -> None:
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        names = wheel.namelist()
        licenses = [n for n in names if ".dist-info/" in n and n.endswith("/LICENSE")]
        assert len(licenses) == 1, names
        assert wheel.read(licenses[0]).decode() == (ROOT / "LICENSE").read_text()
        metadata = email.message_from_bytes(
            wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        )
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]


def test_sdist_carries_the_license_and_the_docs(dist: Path) -> None:
    with tarfile.open(_one(dist, "*.tar.gz")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert "LICENSE" in names
    docs = {path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").rglob("*.md")}
    assert "docs/redis.md" in docs
    assert docs <= names, docs - names


def test_long_description_has_no_link_that_breaks_on_the_package_page(dist: Path) -> None:
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        metadata = email.message_from_bytes(
            wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")))
        )
    description = metadata.get_payload()
    assert isinstance(description, str)
    assert "pytest-conncache" in description
    # A relative link (docs/redis.md) or an anchor resolves against the package
    # index page, where neither the file nor the heading id exists.
    targets = re.findall(r"\]\(([^)\s]+)\)", description)
    assert [t for t in targets if not t.startswith(("https://", "http://"))] == []
