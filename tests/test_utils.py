"""Unit tests for utils.py: the data cache, the mirror, failures and the command line.

Each test builds its own small fixtures (see conftest.py), so these run offline
in a few seconds. The last section checks the real cache that `make` fills.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import files_under, make_zip, spam_archive, spam_csv, wordnet_archive

import utils

SPAM_URL, LEGACY_URL = utils.SPAM_ARCHIVE.urls
CSV_NAMES = sorted(utils.SPAM_FILES)


def cached_csvs(cache):
    return sorted(p.name for p in (cache / "youtube_spam").glob("*.csv"))


# --------------------------------------------------------------------------
# Downloading and the cache
# --------------------------------------------------------------------------


def test_first_load_downloads_validates_and_splits(cache, internet):
    internet.pages[SPAM_URL] = spam_archive()
    train, dev, valid, test = utils.load_spam_dataset(split_dev_valid=True)

    assert internet.requested == [SPAM_URL]
    assert cached_csvs(cache) == CSV_NAMES
    assert (cache / utils.SPAM_ARCHIVE.filename).is_file()
    assert [len(train), len(dev), len(valid), len(test)] == [1586, 100, 120, 250]
    assert list(train.columns) == ["author", "date", "text", "label", "video"]
    assert set(train["label"]) == {-1}
    assert set(dev["label"]) == {0, 1}
    assert (test["label"] == 1).sum() == 118
    assert set(train["video"]) == {1, 2, 3, 4} and set(test["video"]) == {5}
    assert "\n" in train["text"].str.cat()  # multi-line quoted comments survive


def test_valid_cache_never_touches_the_network(cache, internet):
    internet.pages[SPAM_URL] = spam_archive()
    utils.fetch_spam_dataset()
    internet.pages.clear()
    internet.requested.clear()

    train, test = utils.load_spam_dataset(load_train_labels=True)
    assert internet.requested == []
    assert (train["label"] == 1).sum() == 175 + 175 + 236 + 245


def test_legacy_url_is_the_fallback(cache, internet):
    internet.pages[LEGACY_URL] = spam_archive()
    utils.fetch_spam_dataset()
    assert internet.requested == [SPAM_URL, LEGACY_URL]
    assert "from " + LEGACY_URL in (cache / "youtube_spam" / "SOURCE.txt").read_text()


def test_members_are_found_in_subfolders_and_macosx_copies_skipped(cache, internet):
    members = {f"YouTube-Spam-Collection-v1/{name}": spam_csv(name) for name in CSV_NAMES}
    members.update({f"__MACOSX/YouTube-Spam-Collection-v1/._{name}": b"\x00\x05\x16\x07" for name in CSV_NAMES})
    members.update({f"__MACOSX/{name}": b"not a csv" for name in CSV_NAMES})
    internet.pages[SPAM_URL] = make_zip(members)

    utils.fetch_spam_dataset()
    assert cached_csvs(cache) == CSV_NAMES
    assert len(utils.load_spam_dataset()[0]) == 1586


def test_archive_nested_inside_the_download_is_searched(cache, internet):
    internet.pages[SPAM_URL] = make_zip({"YouTube-Spam-Collection-v1.zip": spam_archive()})
    utils.fetch_spam_dataset()
    assert cached_csvs(cache) == CSV_NAMES


def test_paths_from_the_archive_are_never_used(cache, internet, tmp_path):
    members = {f"../../escaped/{name}": spam_csv(name) for name in CSV_NAMES}
    members["../../escaped/evil.sh"] = b"rm -rf /"
    members["/abs/evil.txt"] = b"x"
    internet.pages[SPAM_URL] = make_zip(members)

    utils.fetch_spam_dataset()
    assert cached_csvs(cache) == CSV_NAMES
    assert not (tmp_path.parent / "escaped").exists() and not (tmp_path / "escaped").exists()
    assert not any("evil" in f for f in files_under(tmp_path))


# --------------------------------------------------------------------------
# Failures: one clear message, nothing half-written
# --------------------------------------------------------------------------


def test_no_network_and_no_mirror(cache, internet):
    with pytest.raises(utils.DataError) as error:
        utils.load_spam_dataset()
    message = str(error.value)
    assert "YouTube-Spam-Collection-v1.zip" in message
    assert SPAM_URL in message and LEGACY_URL in message
    assert "internet connection" in message and utils.MIRROR_ENV in message
    assert files_under(cache) == []


def test_mirror_lacking_the_file(cache, mirror, internet):
    with pytest.raises(utils.DataError) as error:
        utils.fetch_spam_dataset()
    message = str(error.value)
    assert f"Put a copy of YouTube-Spam-Collection-v1.zip in the mirror folder {mirror}" in message
    assert "python utils.py mirror DIR" in message
    assert internet.requested == []  # with a mirror set, the network is never used
    assert files_under(cache) == []


def test_mirror_is_read_through_the_same_validation(cache, mirror, internet):
    (mirror / "YouTube-Spam-Collection-v1.zip").write_bytes(spam_archive())
    utils.fetch_spam_dataset()
    assert cached_csvs(cache) == CSV_NAMES
    assert internet.requested == []
    assert (mirror / "YouTube-Spam-Collection-v1.zip").as_uri() in (cache / "youtube_spam" / "SOURCE.txt").read_text()


@pytest.mark.parametrize(
    "payload, what",
    [
        (spam_archive()[:-300], "truncated"),
        (b"<html><body>503 Service Unavailable</body></html>", "an error page"),
        (b"", "empty"),
    ],
)
def test_truncated_or_non_zip_download(cache, internet, payload, what):
    internet.pages[SPAM_URL] = payload
    with pytest.raises(utils.DataError) as error:
        utils.fetch_spam_dataset()
    message = str(error.value)
    assert f"YouTube-Spam-Collection-v1.zip from {SPAM_URL} is not a valid zip archive" in message, what
    assert "Nothing was saved" in message
    assert files_under(cache) == []


def test_corrupted_member_is_caught_by_its_checksum(cache, mirror):
    raw = bytearray(make_zip({name: spam_csv(name) for name in CSV_NAMES}))
    # Flip a byte inside the first member's compressed data.
    raw[200] ^= 0xFF
    (mirror / "YouTube-Spam-Collection-v1.zip").write_bytes(bytes(raw))
    with pytest.raises(utils.DataError, match="(corrupted|not a valid zip)"):
        utils.fetch_spam_dataset()
    assert files_under(cache) == []


def test_csv_missing_a_column(cache, mirror):
    broken = spam_csv("Youtube03-LMFAO.csv", drop_column="CLASS")
    (mirror / "YouTube-Spam-Collection-v1.zip").write_bytes(spam_archive(Youtube03_LMFAO=broken))
    with pytest.raises(utils.DataError) as error:
        utils.fetch_spam_dataset()
    message = str(error.value)
    assert "Youtube03-LMFAO.csv lacks the column(s) CLASS" in message
    assert "not the expected dataset" in message and "Nothing was saved" in message
    assert files_under(cache) == []


def test_csv_with_the_wrong_row_count(cache, mirror):
    broken = spam_csv("Youtube05-Shakira.csv", extra_rows=3)
    (mirror / "YouTube-Spam-Collection-v1.zip").write_bytes(spam_archive(Youtube05_Shakira=broken))
    with pytest.raises(utils.DataError, match=r"Youtube05-Shakira.csv has 373 rows .* expected 370 rows"):
        utils.fetch_spam_dataset()
    assert files_under(cache) == []


def test_archive_without_the_expected_files(cache, mirror):
    (mirror / "YouTube-Spam-Collection-v1.zip").write_bytes(make_zip({"readme.txt": b"hello"}))
    with pytest.raises(utils.DataError, match="does not contain Youtube01-Psy.csv, Youtube02-KatyPerry.csv"):
        utils.fetch_spam_dataset()
    assert files_under(cache) == []


def test_damaged_cache_says_how_to_repair_it(cache, mirror):
    (mirror / "YouTube-Spam-Collection-v1.zip").write_bytes(spam_archive())
    utils.fetch_spam_dataset()
    psy = cache / "youtube_spam" / "Youtube01-Psy.csv"
    psy.write_bytes(psy.read_bytes()[:1000])
    with pytest.raises(utils.DataError) as error:
        utils.load_spam_dataset()
    message = str(error.value)
    assert "cached dataset is damaged" in message and str(psy) in message
    assert f"Delete the folder {cache / 'youtube_spam'}" in message


def test_interrupted_download_leaves_nothing(cache, internet, monkeypatch):
    internet.pages[SPAM_URL] = spam_archive()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(utils.shutil, "copyfileobj", interrupted)
    with pytest.raises(KeyboardInterrupt):
        utils.fetch_spam_dataset()
    assert files_under(cache) == []


# --------------------------------------------------------------------------
# NLP resources
# --------------------------------------------------------------------------


def test_wordnet_from_the_mirror(cache, mirror, internet):
    (mirror / "wordnet.zip").write_bytes(wordnet_archive())
    path = utils.fetch_wordnet()
    assert path == cache / "nltk_data" / "corpora" / "wordnet.zip"
    assert zipfile.ZipFile(path).read("wordnet/data.noun") == b"fake wordnet file\n"
    assert internet.requested == []


def test_wordnet_missing_from_the_mirror(cache, mirror):
    with pytest.raises(utils.DataError, match="Put a copy of wordnet.zip in the mirror folder"):
        utils.load_wordnet()
    assert files_under(cache) == []


def test_wordnet_download_without_network(cache, internet):
    with pytest.raises(utils.DataError, match="Could not get NLTK's WordNet 3.0 package .wordnet.zip."):
        utils.fetch_wordnet()
    assert internet.requested == list(utils.WORDNET_ARCHIVE.urls)
    assert files_under(cache) == []


def test_wordnet_archive_of_the_wrong_package(cache, mirror):
    (mirror / "wordnet.zip").write_bytes(wordnet_archive(skip="wordnet/data.verb"))
    with pytest.raises(utils.DataError, match="is not NLTK's WordNet package .it lacks wordnet/data.verb."):
        utils.fetch_wordnet()
    assert files_under(cache) == []


def test_unreadable_wordnet_cache(cache, mirror):
    (mirror / "wordnet.zip").write_bytes(wordnet_archive())  # files NLTK cannot parse
    with pytest.raises(utils.DataError, match="NLTK could not read WordNet from .*Delete that file"):
        utils.load_wordnet()


def test_missing_spacy_model(monkeypatch):
    import importlib

    import spacy  # noqa: F401  (imported before import_module is patched)

    real_import = importlib.import_module

    def no_model(name, package=None):
        if name.startswith("en_core_web_sm"):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_model)
    with pytest.raises(utils.DataError, match=r"en_core_web_sm is not installed.*pip install -r requirements.txt"):
        utils.load_spacy_model.__wrapped__()


# --------------------------------------------------------------------------
# Command line and notebook helpers
# --------------------------------------------------------------------------


def test_mirror_command_writes_a_folder_that_serves_a_new_cache(cache, mirror, tmp_path, monkeypatch, capsys):
    (mirror / "YouTube-Spam-Collection-v1.zip").write_bytes(spam_archive())
    (mirror / "wordnet.zip").write_bytes(wordnet_archive())
    classroom = tmp_path / "classroom"
    assert utils.main(["mirror", str(classroom)]) == 0
    assert files_under(classroom) == ["YouTube-Spam-Collection-v1.zip", "wordnet.zip"]
    assert f"export {utils.MIRROR_ENV}=" in capsys.readouterr().out

    monkeypatch.setenv(utils.DATA_ENV, str(tmp_path / "other-cache"))
    monkeypatch.setenv(utils.MIRROR_ENV, str(classroom))
    assert len(utils.load_spam_dataset()[1]) == 250


def test_cli_reports_data_errors_in_one_line(cache, mirror, capsys):
    assert utils.main(["fetch"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Could not get the YouTube Spam Collection")
    assert "Traceback" not in err


def test_check_command_flags_missing_data(cache, capsys):
    assert utils.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "dataset CSVs   MISSING (run: python utils.py fetch)" in out
    assert "snorkel" in out and "pinned 0.10.0" in out


def test_check_environment_names_what_is_wrong(tmp_path, monkeypatch):
    (tmp_path / "requirements.txt").write_text("snorkel==0.0.1\nno-such-package-xyz==1.0\n")
    monkeypatch.setattr(utils, "ROOT", tmp_path)
    monkeypatch.setattr(utils, "in_course_venv", lambda: True)
    with pytest.raises(RuntimeError) as error:
        utils.check_environment()
    message = str(error.value)
    assert "the labs were tested with 0.0.1" in message
    assert "no-such-package-xyz is not installed" in message
    assert "Python 3 (Spam Labs)" in message


def test_check_environment_is_strict_only_in_the_course_venv(tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    venv.mkdir()
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path / "python"))
    assert not utils.in_course_venv()
    (venv / ".installed").touch()  # the stamp `make` leaves in the venv it built
    assert utils.in_course_venv()
    monkeypatch.setattr(sys, "prefix", str(utils.ROOT / ".venv"))  # the Windows steps of README.md
    assert utils.in_course_venv()
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)  # no venv at all: Colab, Binder
    assert not utils.in_course_venv()


def test_check_environment_elsewhere_notes_differing_versions_once(tmp_path, monkeypatch, capsys):
    (tmp_path / "requirements.txt").write_text("numpy==0.0.1\npandas==" + pd.__version__ + "\npytest==0.0.1\n")
    monkeypatch.setattr(utils, "ROOT", tmp_path)
    monkeypatch.setattr(utils, "in_course_venv", lambda: False)
    monkeypatch.setattr(utils, "_noted_versions", [])
    utils.check_environment()
    note = " ".join(capsys.readouterr().out.split())
    assert note.startswith("Note: this is not the course's own environment")
    assert f"numpy {np.__version__} (tested: 0.0.1)" in note
    assert "pandas" not in note and "pytest" not in note  # same version; a tool no lab imports
    assert "figure may differ a little" in note
    utils.check_environment()
    assert capsys.readouterr().out == ""


def test_check_environment_elsewhere_needs_every_package_the_labs_import(tmp_path, monkeypatch):
    (tmp_path / "requirements.txt").write_text("no-such-package-xyz==1.0\nno-such-tool-xyz==1.0\n")
    monkeypatch.setattr(utils, "ROOT", tmp_path)
    monkeypatch.setattr(utils, "in_course_venv", lambda: False)
    monkeypatch.setattr(utils, "TOOL_PINS", frozenset({"no-such-tool-xyz"}))
    with pytest.raises(utils.EnvironmentProblem) as error:
        utils.check_environment()
    message = "\n".join(error.value._render_traceback_())
    assert "no-such-package-xyz is not installed" in message and "no-such-tool-xyz" not in message
    assert "On Google Colab, run the first code cell again" in message


def test_check_environment_elsewhere_takes_an_alternative_distribution(tmp_path, monkeypatch, capsys):
    (tmp_path / "requirements.txt").write_text(f"no-such-numpy-build=={np.__version__}\n")
    monkeypatch.setattr(utils, "ROOT", tmp_path)
    monkeypatch.setattr(utils, "in_course_venv", lambda: False)
    monkeypatch.setattr(utils, "ALTERNATIVES", {"no-such-numpy-build": ("numpy",)})  # as Colab's tensorflow
    utils.check_environment()
    assert capsys.readouterr().out.startswith("Environment OK: Python 3.11 or newer, and every package the labs import")


def test_install_missing_packages_changes_nothing_installed(tmp_path, monkeypatch):
    (tmp_path / "requirements.txt").write_text("numpy==0.0.1\nno-such-package-xyz==1.0\ndistributed==9.9\n")
    monkeypatch.setattr(utils, "ROOT", tmp_path)
    real = utils._installed
    monkeypatch.setattr(
        utils,
        "_installed",
        lambda *names: (
            ("dask", "2026.7.1") if names == ("dask",) else (None if names[0] == "distributed" else real(*names))
        ),
    )
    calls = []

    def pip(command, **kwargs):
        constraints = Path(command[command.index("-c") + 1]).read_text().splitlines()
        calls.append((command, constraints))
        return subprocess.CompletedProcess(command, 1 if len(calls) > 1 else 0, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(utils.subprocess, "run", pip)
    assert utils.install_missing_packages() == ["no-such-package-xyz==1.0", "distributed==2026.7.1"]
    ((command, constraints),) = calls
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert f"numpy=={np.__version__}" in constraints  # installed: held at its version, whatever the pin says
    assert "pytest==" + pytest.__version__ in constraints
    with pytest.raises(utils.EnvironmentProblem, match="(?s)without changing the packages.*No matching distribution"):
        utils.install_missing_packages()


def test_record_results_is_machine_readable(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda data, raw: shown.append(data))
    utils.record_results(1, {"accuracy": 0.912345, "lfs": ["lf_a"], "coverage": {"lf_a": 0.5}})
    (data,) = shown
    assert data[utils.RESULTS_MIME] == {
        "lab": 1,
        "figures": {"accuracy": 0.9123, "lfs": ["lf_a"], "coverage": {"lf_a": 0.5}},
    }
    assert "0.9123" in data["text/plain"]


# --------------------------------------------------------------------------
# The real data, as `make` fetched it (from the mirror or the internet)
# --------------------------------------------------------------------------


def test_real_dataset_has_the_canonical_split(monkeypatch):
    monkeypatch.delenv(utils.DATA_ENV, raising=False)
    train, dev, valid, test = utils.load_spam_dataset(split_dev_valid=True)
    sizes = [(len(df), int((df["label"] == 1).sum())) for df in (train, dev, valid, test)]
    assert sizes == [(1586, 0), (100, 54), (120, 56), (250, 118)]
    labelled, _ = utils.load_spam_dataset(load_train_labels=True)
    assert int((labelled["label"] == 1).sum()) == 831
    assert isinstance(train, pd.DataFrame) and train.index.is_unique


def test_real_wordnet_and_spacy_model(monkeypatch):
    monkeypatch.delenv(utils.DATA_ENV, raising=False)
    wordnet = utils.load_wordnet()
    assert wordnet.synsets("dog")[0].name() == "dog.n.01"
    assert wordnet.get_version() == "3.0"
    nlp = utils.load_spacy_model()
    assert nlp.meta["lang"] == "en" and nlp.meta["version"] == "3.8.0" and "ner" in nlp.pipe_names
    assert utils.load_spacy_model() is nlp  # loaded once per process


def test_compare_paired_counts_only_the_comments_that_tell_the_two_apart():
    truth = np.array([1, 0] * 50)
    a, b = truth.copy(), truth.copy()
    a[:5] = 1 - a[:5]  # A wrong on 5 comments, B on 20 others (and on those 5 too)
    b[:25] = 1 - b[:25]
    row = utils.compare_paired(truth, a, b, names=("A", "B"))
    assert (row["A right, B wrong"], row["B right, A wrong"]) == (20, 0)
    assert row["McNemar p"] == 0.0  # 20 to 0: two-sided exact p = 2 * 0.5**20
    assert row["verdict"] == "A is better"
    assert row["accuracy A"] == "95.0%" and row["accuracy B"] == "75.0%"
    assert row["A - B"] == "+20.0%" and row["A's share (exact 95% CI)"].startswith("100% (8")

    b = truth.copy()
    b[10:16] = 1 - b[10:16]  # 5 against 6: no evidence either way
    row = utils.compare_paired(truth, a, b, names=("A", "B"))
    assert (row["A right, B wrong"], row["B right, A wrong"], row["McNemar p"]) == (6, 5, 1.0)
    assert row["verdict"] == "no detectable difference on 100 comments"

    same = utils.compare_paired(truth, a, a)
    assert (same["McNemar p"], same["A - B"], same["A's share (exact 95% CI)"]) == (
        1.0,
        "+0.0%",
        "no comment tells them apart",
    )


def _interval(row) -> tuple[float, float]:
    low, high = row["A's share (exact 95% CI)"].split("(")[1].rstrip(")").split(" to ")
    return float(low.rstrip("%")), float(high.rstrip("%"))


def test_compare_paired_interval_and_verdict_never_disagree():
    """Every split of up to 30 discordant comments among 250: the interval holds 50% exactly when p >= 0.05."""
    truth = np.zeros(250, dtype=int)
    for discordant in range(31):
        for only_a in range(discordant + 1):
            a, b = truth.copy(), truth.copy()
            b[:only_a] = 1  # A right, B wrong
            a[only_a:discordant] = 1  # B right, A wrong
            row = utils.compare_paired(truth, a, b)
            detectable = row["verdict"] != "no detectable difference on 250 comments"
            if discordant:
                low, high = _interval(row)
                assert (low > 50 or high < 50) == detectable, (only_a, discordant - only_a, row.to_dict())
    # The lab 2 case that a bootstrap got wrong: 0 comments for A, 1 for B. The share's interval reaches past 50%.
    a, b = truth.copy(), truth.copy()
    a[0] = 1
    assert _interval(utils.compare_paired(truth, a, b)) == (0.0, 98.0)  # 0% to 97.5%


def test_unseen_text_ignores_case_spacing_and_the_byte_order_mark():
    seen = pd.DataFrame({"text": ["Check my channel\ufeff", "great  song"]})
    df = pd.DataFrame({"text": ["check MY channel", "Great song\ufeff", "a new comment", None]})
    assert utils.unseen_text(df, seen).tolist() == [False, False, True, True]
    assert utils.unseen_text(df).tolist() == [True] * 4


def test_results_table_shows_percentages_with_one_decimal_and_dicts_as_text():
    assert utils._shown(93.0667, percent=True) == "93.1%"
    assert utils._shown({"baseline": 94.4, "no heads": 92.973}, percent=True) == "baseline: 94.4%, no heads: 93.0%"
    assert utils._shown({"keyword_views_pct": 6.31, "n": 3}, percent=False) == "keyword_views_pct: 6.3%, n: 3"
    assert utils._shown(["keyword_views", "social_links"], percent=False) == "keyword_views, social_links"
    assert utils._shown(0.8953, percent=False) == "0.8953" and utils._shown(14, percent=False) == "14"


def test_readable_comments_shows_youtube_html_as_a_reader_saw_it_and_leaves_the_data_alone():
    raw = [
        "Party Rock<br />\ufeff",
        'best part <a href="http://www.youtube.com/watch?v=KQ6&amp;t=2m19s">2:19</a> it&#39;s &lt;3',
        'go <a href="http://adf.ly">http://adf.ly</a> <b>now</b>',
        None,
    ]
    frame = pd.DataFrame({"text": raw, "label": [0, 0, 1, 0]})
    shown = utils.readable_comments(frame)
    assert shown.text.tolist()[:3] == [
        "Party Rock ⏎",
        "best part 2:19 [http://www.youtube.com/watch?v=KQ6&t=2m19s] it's <3",
        "go http://adf.ly now",
    ]
    assert shown.text.isna().tolist() == [False, False, False, True] and shown.label.tolist() == [0, 0, 1, 0]
    assert frame.text.tolist()[:3] == raw[:3] and frame.text.isna()[3]  # the data is unchanged
    assert utils.readable_comments(frame.text).tolist()[0] == "Party Rock ⏎"
