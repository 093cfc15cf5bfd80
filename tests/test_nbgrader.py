"""The three labs in real nbgrader courses: generate_assignment, then autograde.

A temporary course is built for each lab (``source/labN/`` with utils.py,
exercise_checks.py and requirements.txt beside the notebook, as an instructor
would set it up). ``nbgrader generate_assignment`` must release no solution,
and release exactly what ``python instructor.py release`` releases.
``nbgrader autograde`` then re-runs two submissions of each lab, offline, in a
kernel of this Python: the reference notebook (full marks) and the untouched
released copy (less). The six runs are the labs themselves: the three
courses autograde at the same time (each has its own gradebook database).

nbgrader comes from requirements-instructor.txt, which ``make test`` installs.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_grade_attacks import SOLVED, attacks
from test_instructor import lab_source, make_course, require_sandbox

import instructor_tools.release as releasing
import utils
from instructor_tools import grading, notebooks

COURSE = notebooks.COURSE
NBGRADER = Path(sys.executable).with_name("nbgrader")
ASSIGNMENTS = {lab: f"lab{lab}" for lab in notebooks.LAB_NOTEBOOKS}
#: The files each lab needs beside it, copied into every assignment (nbgrader copies them on).
SUPPORT_FILES = ("utils.py", "exercise_checks.py", "requirements.txt")
STUDENTS = ("reference", "untouched")
#: A fourth course, of the small fixture lab: a solved copy and the two forged verdicts nbgrader must also give 0.
ATTACKS = "attacks"
_FORGED = attacks(Path("course"), Path("class"), Path("gradebook.csv"))
ATTACK_SUBMISSIONS = {
    "honest": SOLVED,
    "clears_output": _FORGED["clears_output.ipynb"],
    "dies_after_print": _FORGED["dies_after_print.ipynb"],
}


def nbgrader(root: Path, env: dict, *args: str) -> subprocess.Popen:
    """Start an nbgrader command in the course ``root`` (its log goes to a file there)."""
    log = open(root / f"nbgrader-{args[0]}.log", "w")  # closed by finish()
    process = subprocess.Popen([str(NBGRADER), *args], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log = log
    return process


def finish(process: subprocess.Popen, timeout: float = 1800, failing: tuple[str, ...] = ()) -> None:
    """Wait for an nbgrader command; fail the test with the end of its log if it failed.

    ``failing`` are students whose notebook nbgrader is expected not to grade (it scores them 0): it then exits 1.
    """
    try:
        process.wait(timeout)
    finally:
        process.kill()
        process.log.close()
    log = Path(process.log.name).read_text()
    failed = sorted(set(re.findall(r"There was an error processing assignment '[^']*' for student '([^']*)'", log)))
    expected = (0 if not failing else 1, sorted(failing))
    assert (process.returncode, failed) == expected, (
        f"{' '.join(process.args[1:])} failed (exit {process.returncode}, students {failed}):\n{log[-5000:]}"
    )


def assignment_of(lab: int | str) -> str:
    return ASSIGNMENTS.get(lab, ATTACKS)


def hand_in_attacks(root: Path) -> None:
    """The released fixture lab handed in three times: solved, and with each forged verdict of issue 18."""
    released = nbformat.read(root / "release" / ATTACKS / notebooks.LAB_NOTEBOOKS[1], as_version=4)
    for student, exercise in ATTACK_SUBMISSIONS.items():
        submission = copy.deepcopy(released)
        submission.cells[4].source = exercise
        folder = root / "submitted" / student / ATTACKS
        folder.mkdir(parents=True)
        nbformat.write(submission, folder / notebooks.LAB_NOTEBOOKS[1])


def new_course(root: Path, lab: int | str, env: dict) -> Path:
    """An nbgrader course holding one lab, as an instructor would set it up: ``source/labN/`` and a config."""
    root.mkdir()
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        "c.CourseDirectory.course_id = 'spam-labs'\n"
        # The same placeholder as instructor.py's, so that both releases can be compared line for line.
        f"c.ClearSolutions.code_stub = {{'python': {chr(10).join(releasing.PLACEHOLDER)!r}}}\n"
        "c.Execute.timeout = 600\n"
    )
    source = root / "source" / assignment_of(lab)
    source.mkdir(parents=True)
    if lab == ATTACKS:  # the small lab of tests/test_instructor.py: its check calls the real exercise_checks.py
        nbformat.write(lab_source(1), source / notebooks.LAB_NOTEBOOKS[1])
    else:
        shutil.copy(COURSE / notebooks.LAB_NOTEBOOKS[lab], source)
    for name in SUPPORT_FILES:
        shutil.copy(COURSE / name, source)
    return root


@pytest.fixture(scope="module")
def courses(tmp_path_factory) -> dict[int, Path]:
    """Lab -> an nbgrader course that has released the lab and autograded both students.

    One course per lab, so that the three autogrades (each re-runs the lab twice)
    can run at the same time without sharing a gradebook database; a fourth
    (key ATTACKS) holds the small fixture lab, solved and with two forged verdicts.
    """
    if not NBGRADER.exists():
        pytest.fail(
            f"nbgrader is not installed in {sys.prefix}: run `make test`, which installs "
            "requirements-instructor.txt, or `pip install -r requirements-instructor.txt`."
        )
    for lab, name in notebooks.LAB_NOTEBOOKS.items():
        ids = [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in nbformat.read(COURSE / name, 4).cells]
        wanted = [f"lab{lab}-{role}" for role in ("exercise", "check", "results")]
        assert [i for i in ids if i] == wanted, f"{name}: nbgrader cells {[i for i in ids if i]}, want {wanted}"
    top = tmp_path_factory.mktemp("nbgrader")
    jupyter = top / "jupyter"
    # The notebooks name the kernel "spam-labs": a private one, started with this Python, so that the
    # kernel registered for the user (which may point at another checkout) plays no part.
    kernel = jupyter / "data" / "kernels" / "spam-labs"
    kernel.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Python 3 (Spam Labs)", "language": "python"}
    (kernel / "kernel.json").write_text(json.dumps(spec))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(jupyter / "config"),  # no user configuration
        "JUPYTER_DATA_DIR": str(jupyter / "data"),
        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
        utils.DATA_ENV: str(utils.data_dir()),  # the course's cache; SPAM_LABS_MIRROR passes on as it is
        # nbgrader runs the `alembic` command of its environment, which is not on PATH unless the venv is active.
        "PATH": os.pathsep.join([str(NBGRADER.parent), os.environ.get("PATH", "")]),
    }
    env.pop("PYTHONPATH", None)  # the notebooks import the copies beside them, as students' would
    courses = {lab: new_course(top / assignment, lab, env) for lab, assignment in ASSIGNMENTS.items()}
    courses[ATTACKS] = new_course(top / ATTACKS, ATTACKS, env)
    for step in ("generate_assignment", "autograde"):
        running = {lab: nbgrader(root, env, step, assignment_of(lab)) for lab, root in courses.items()}
        for lab, process in running.items():
            # nbgrader does not grade a notebook whose kernel died (it scores it 0), and says so with exit status 1.
            finish(process, failing=("dies_after_print",) if (lab, step) == (ATTACKS, "autograde") else ())
        if step == "generate_assignment":
            for lab in ASSIGNMENTS:  # hand in the reference notebook and the untouched released copy
                for student, folder in zip(STUDENTS, ("source", "release"), strict=True):
                    root = courses[lab]
                    shutil.copytree(root / folder / ASSIGNMENTS[lab], root / "submitted" / student / ASSIGNMENTS[lab])
            hand_in_attacks(courses[ATTACKS])
    for root in courses.values():
        finish(nbgrader(root, env, "export", "--to", str(root / "grades.csv")))
    return courses


def notebook(course: Path, step: str, lab: int, student: str | None = None) -> nbformat.NotebookNode:
    """A notebook of ``lab`` in one of the course's folders (source, release, submitted, autograded)."""
    folder = course / step / student / ASSIGNMENTS[lab] if student else course / step / ASSIGNMENTS[lab]
    return nbformat.read(folder / notebooks.LAB_NOTEBOOKS[lab], as_version=4)


def grades(courses: dict[int, Path]) -> dict[tuple[str, str], tuple[float, float]]:
    """(assignment, student) -> (score, max score), as nbgrader exports them."""
    scores = {}
    for course in courses.values():
        with open(course / "grades.csv", newline="") as f:
            for row in csv.DictReader(f):
                scores[row["assignment"], row["student_id"]] = (float(row["score"]), float(row["max_score"]))
    return scores


def solution_lines(cell) -> list[str]:
    """The lines between the markers of a cell (what must not be released)."""
    inside, found = False, []
    for line in cell.source.split("\n"):
        if "BEGIN SOLUTION" in line:
            inside = True
        elif "END SOLUTION" in line:
            inside = False
        elif inside and line.strip():
            found.append(line)
    return found


@pytest.mark.parametrize("lab", ASSIGNMENTS)
def test_released_notebooks_hold_no_solution(courses, lab):
    course = courses[lab]
    source, released = notebook(course, "source", lab), notebook(course, "release", lab)
    assert "SOLUTION" not in json.dumps(released)
    exercises = [number for number, cell in enumerate(source.cells) if solution_lines(cell)]
    assert len(exercises) == 1, "a lab has exactly one exercise cell"
    for number in exercises:
        kept = set(released.cells[number].source.split("\n"))
        outside = set(releasing.source_without_solutions(source.cells[number].source)[0].split("\n"))
        assert not [line for line in solution_lines(source.cells[number]) if line in kept - outside]
    for cell in released.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("lab", ASSIGNMENTS)
def test_our_release_agrees_with_nbgrader(courses, lab, tmp_path):
    """`instructor.py release` removes what nbgrader removes, cell for cell, and locks what it locks."""
    course = courses[lab]
    releasing.release(COURSE, tmp_path)
    ours = nbformat.read(tmp_path / notebooks.LAB_NOTEBOOKS[lab], as_version=4)
    theirs = notebook(course, "release", lab)
    assert [cell.source for cell in ours.cells] == [cell.source for cell in theirs.cells]
    for mine, its in zip(ours.cells, theirs.cells, strict=True):
        assert mine.metadata.get("editable", True) == its.metadata.get("editable", True)
        assert mine.metadata.get("deletable", True) == its.metadata.get("deletable", True)


def test_reference_notebooks_get_full_marks(courses):
    scores = grades(courses)
    for assignment in ASSIGNMENTS.values():
        score, best = scores[(assignment, "reference")]
        assert best == 1 and score == best, f"{assignment}: the reference scored {score} of {best}"


def test_untouched_released_copies_get_less(courses):
    scores = grades(courses)
    for assignment in ASSIGNMENTS.values():
        score, best = scores[(assignment, "untouched")]
        assert score < best, f"{assignment}: an unsolved copy scored {score} of {best}"


@pytest.mark.parametrize("lab", ASSIGNMENTS)
def test_nbgrader_and_grade_read_the_same_verdict(courses, lab):
    """The autograded notebooks, read by `instructor.py grade`: the check passes exactly where nbgrader says so."""
    course = courses[lab]
    rows = grading.grade(
        [
            (student, course / "autograded" / student / ASSIGNMENTS[lab] / notebooks.LAB_NOTEBOOKS[lab])
            for student in STUDENTS
        ],
        COURSE,
    )
    passed = {row["student"]: (row["checks_passed"], row["checks_total"]) for row in rows}
    assert passed == {"reference": (1, 1), "untouched": (0, 1)}
    untouched = notebook(course, "autograded", lab, "untouched")
    check = next(cell for cell in untouched.cells if cell.metadata.get("nbgrader", {}).get("grade"))
    # nbgrader's verdict: the check cell raised (CHECK FAILED, or no answer to check at all).
    assert not any("CHECK PASSED:" in output.get("text", "") for output in check.outputs)
    assert any(output.output_type == "error" for output in check.outputs)
    # The results cell ran in the unsolved copy too: it still records the lab's figures.
    assert rows[1]["figures"] and all(value is not None for value in rows[1]["figures"].values())


def test_nbgrader_agrees_that_a_forged_verdict_scores_nothing(courses, tmp_path):
    """Issue 18: a pass printed after the check raised, or just before the kernel dies, is worth 0 in both graders.

    nbgrader 0.9.6 scores the check cell from the kernel's reply; `grade --execute` (in the sandbox) too.
    """
    scores = grades(courses)
    theirs = {student: scores[(ATTACKS, student)][0] for student in ATTACK_SUBMISSIONS}
    assert theirs == {"honest": 1.0, "clears_output": 0.0, "dies_after_print": 0.0}
    require_sandbox()
    root = courses[ATTACKS]
    files = [
        (student, root / "submitted" / student / ATTACKS / notebooks.LAB_NOTEBOOKS[1]) for student in ATTACK_SUBMISSIONS
    ]
    rows = grading.grade(files, make_course(tmp_path / "course"), execute=True, jobs=2)
    ours = {row["student"]: row["checks_passed"] for row in rows}
    assert ours == {"honest": 1, "clears_output": 0, "dies_after_print": 0}, [row["status"] for row in rows]
    # nbgrader keeps the forged line, and adds the error from the kernel's reply, which the forger had cleared.
    forged = nbformat.read(root / "autograded" / "clears_output" / ATTACKS / notebooks.LAB_NOTEBOOKS[1], 4)
    check = forged.cells[5]
    assert any("CHECK PASSED: forged" in output.get("text", "") for output in check.outputs)
    assert [output.ename for output in check.outputs if output.output_type == "error"] == ["CheckFailed"]
