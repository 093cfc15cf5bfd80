"""Fixtures for the unit tests of utils.py: a private cache, a mirror, fake servers and archives."""

from __future__ import annotations

import importlib.util
import io
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

# PyPI's Linux torch (the CUDA build, which Python 3.12 and 3.13 get where PyTorch's CPU index is out of reach)
# brings Triton, and the process crashes if Triton is loaded after TensorFlow, which the lab 3 check tests pull
# in through snorkel.slicing -> TensorBoard. Loading torch's compiler stack first avoids it; the +cpu build
# has no Triton and skips this.
if importlib.util.find_spec("triton") is not None:
    import torch._dynamo  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import utils  # noqa: E402

# `make test` spreads the test files over the cores with pytest-xdist (--dist loadfile: the tests of a file, and
# the cells of a notebook, stay together in one process). xdist hands out files in collection order, two to each
# worker at first, then one more whenever one is done, so the longest go first. The quick third file becomes the
# second of the worker that runs the nbgrader round trip, so nothing long waits behind that. Seconds of one run
# (CI, busy 2-core machine): test_nbgrader 164, lab 2 ~50, test_instructor 47, lab 1 ~20, lab 3 ~15, the rest < 10.
RUN_FIRST = (
    "tests/test_nbgrader.py",
    "02_spam_data_augmentation_tutorial.ipynb",
    "tests/test_prose.py",
    "01_spam_tutorial.ipynb",
    "tests/test_instructor.py",
    "tests/test_grade_attacks.py",
    "03_spam_data_slicing_tutorial.ipynb",
)


def pytest_collection_modifyitems(config, items):
    """Longest files first (see RUN_FIRST); the order within a file, and of all other files, is kept."""
    rank = {path: i for i, path in enumerate(RUN_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(RUN_FIRST)))


def spam_csv(name: str, drop_column: str | None = None, extra_rows: int = 0) -> bytes:
    """A synthetic CSV with exactly the rows and labels the real file has."""
    rows, spam = utils.SPAM_FILES[name]
    lines = [",".join(c for c in utils.SPAM_COLUMNS if c != drop_column)]
    for i in range(rows + extra_rows):
        label = 1 if i < spam else 0
        text = f"check out my channel {i}" if label else f'"great song, {i}\nreally"'
        values = {
            "COMMENT_ID": f"id{i}",
            "AUTHOR": f"author {i}",
            "DATE": "2014-11-05T22:21:36",
            "CONTENT": text,
            "CLASS": str(label),
        }
        lines.append(",".join(v for k, v in values.items() if k != drop_column))
    return ("\n".join(lines) + "\n").encode("utf-8")


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return buffer.getvalue()


def spam_archive(prefix: str = "", **changes: bytes) -> bytes:
    """A valid dataset archive; ``changes`` replaces members (key: file stem, e.g. Youtube01_Psy)."""
    members = {}
    for name in utils.SPAM_FILES:
        key = name.removesuffix(".csv").replace("-", "_")
        members[prefix + name] = changes.get(key, spam_csv(name))
    return make_zip(members)


def wordnet_archive(skip: str | None = None) -> bytes:
    names = [f"wordnet/{part}.{pos}" for part in ("data", "index") for pos in ("noun", "verb", "adj", "adv")]
    return make_zip({n: b"fake wordnet file\n" for n in names + ["wordnet/LICENSE"] if n != skip})


class FakeInternet:
    """Stands in for urllib's network: serves registered https:// URLs, refuses the rest.

    ``file://`` URLs (the mirror) go to the real urlopen, so mirror tests run the real code.
    """

    def __init__(self, real_urlopen):
        self.real_urlopen = real_urlopen
        self.pages: dict[str, bytes] = {}
        self.requested: list[str] = []

    def __call__(self, url, timeout=None):
        if url.startswith("file:"):
            return self.real_urlopen(url, timeout=timeout)
        self.requested.append(url)
        if url in self.pages:
            return io.BytesIO(self.pages[url])
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private, empty cache folder; no mirror; the internet replaced by a FakeInternet."""
    folder = tmp_path / "data"
    monkeypatch.setenv(utils.DATA_ENV, str(folder))
    monkeypatch.delenv(utils.MIRROR_ENV, raising=False)
    return folder


@pytest.fixture
def internet(monkeypatch) -> FakeInternet:
    fake = FakeInternet(urllib.request.urlopen)
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return fake


@pytest.fixture(autouse=True)
def _no_real_network(internet):
    """No unit test reaches the real internet."""


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """An empty mirror folder, named by SPAM_LABS_MIRROR."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    monkeypatch.setenv(utils.MIRROR_ENV, str(folder))
    return folder


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
