"""The attacks of issue 18, replayed against ``grade --execute`` in the real bubblewrap sandbox, with real kernels.

Each submission is a small lab notebook of the fixture course (tests/test_instructor.py: an exercise,
its check cell calling the real exercise_checks.py, a results cell) whose exercise cell an adversarial
student rewrote. Every attack is given the paths it would need (the course, the other submissions, the
gradebook), as if the student knew them: the sandbox must make that knowledge useless. The whole class
is graded once (``--jobs 2``), and each test reads its row. Without the sandbox (``--no-sandbox``) the
course is writable, and that must be reported.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell
from test_instructor import executed, lab_source, make_course, require_sandbox, save

import instructor
import instructor_tools.release as releasing
import utils
from instructor_tools import execute, notebooks
from instructor_tools.course import Course

SOLVED = "def looks_like_spam(text):\n    return 'subscribe' in text.lower().split()"
WRONG = "def looks_like_spam(text):\n    return True"
#: Sets ``in_sandbox``: whether pid 1 is bubblewrap. The attacks that would harm the machine if they ever ran
#: unconfined (killing every process, filling other programs' folders) only strike when it is True.
SANDBOXED_ONLY = """
with open("/proc/1/cmdline", "rb") as f:
    in_sandbox = b"bwrap" in f.read().split(b"\\0")[0]
"""
#: In the command line of the process the detached-process attack leaves behind, to look for it afterwards.
MARKER = "spam-labs-attack-marker-7f3a"


def released(course: Path, tmp: Path):
    """The lab 1 notebook a student gets (solution replaced), released from ``course``."""
    releasing.release(course, tmp / "student")
    import nbformat

    return nbformat.read(tmp / "student" / notebooks.LAB_NOTEBOOKS[1], as_version=4)


def with_exercise(notebook, source: str):
    """``notebook`` with the exercise cell (cell 5) holding ``source``."""
    notebook = copy.deepcopy(notebook)
    notebook.cells[4].source = source
    return notebook


#: Sets ``private``, the one folder on the grader's disk a kernel can write (its sockets), and ``connection``.
PRIVATE = """
import os, ipykernel.connect
connection = ipykernel.connect.get_connection_file()
private = os.path.dirname(connection)
"""
REFERENCE_EXERCISE = (
    "def looks_like_spam(text):\n    ### BEGIN SOLUTION\n    words = text.lower().split()\n"
    "    return 'subscribe' in words\n    ### END SOLUTION"
)


def attacks(course: Path, folder: Path, gradebook: Path, canary: Path = Path("/nonexistent")) -> dict[str, str]:
    """Student name -> the exercise cell of that submission; every one but honest and floods_output is wrong."""
    reference = course / notebooks.LAB_NOTEBOOKS[1]
    victim = folder / "honest.ipynb"
    return {
        "honest.ipynb": SOLVED,
        # Appends a passing check to the course's exercise_checks.py and rewrites the reference's check cell.
        "a_course_writer.ipynb": WRONG
        + textwrap.dedent(f"""
            import exercise_checks, pathlib
            checks = pathlib.Path({str(course)!r}) / "exercise_checks.py"
            for target in [pathlib.Path(exercise_checks.__file__), checks]:
                try:
                    with open(target, "a") as f:
                        f.write("\\ndef failed(message):\\n    print('CHECK PASSED: patched')\\n")
                except OSError as exc:
                    print(target, exc.strerror)
            try:
                text = pathlib.Path({str(reference)!r}).read_text()
                pathlib.Path({str(reference)!r}).write_text(text.replace("exercise_checks.failed", "print"))
            except OSError as exc:
                print("reference", exc.strerror)
            """),
        "z_wrong_after_the_writer.ipynb": WRONG,
        # Reads the solution from the reference notebook (beside utils.py, or where the grader keeps it).
        "reads_solution.ipynb": WRONG
        + textwrap.dedent(f"""
            import json, pathlib, utils
            for place in [pathlib.Path(utils.__file__).parent / {reference.name!r}, pathlib.Path({str(reference)!r})]:
                try:
                    cell = json.loads(place.read_text())["cells"][4]
                    exec("".join(cell["source"]))
                except OSError as exc:
                    print(place, exc.strerror)
            """),
        # Clears the check cell's output after it ran (CheckFailed and all) and prints a pass instead.
        "clears_output.ipynb": WRONG
        + textwrap.dedent("""
            from IPython.display import clear_output
            def forge(result):
                if "exercise_checks" in result.info.raw_cell:
                    clear_output()
                    print("CHECK PASSED: forged after the check ran.")
            get_ipython().events.register("post_run_cell", forge)
            """),
        # The same, and the error taken out of the result, so that the kernel's reply says "ok".
        "clears_output_and_error.ipynb": WRONG
        + textwrap.dedent("""
            from IPython.display import clear_output
            def forge(result):
                if "exercise_checks" in result.info.raw_cell:
                    result.error_in_exec = None
                    clear_output()
                    print("CHECK PASSED: forged, and the reply says ok.")
            get_ipython().events.register("post_run_cell", forge)
            """),
        # Inside the check: print the pass line, then end the kernel before it can report the failure.
        "dies_after_print.ipynb": WRONG
        + textwrap.dedent("""
            import os, exercise_checks
            def failed(message):
                print("CHECK PASSED: and gone.", flush=True)
                os._exit(0)
            exercise_checks.failed = failed
            """),
        # A detached process that outlives the kernel and rewrites the gradebook after the grader is done.
        "detached_writer.ipynb": WRONG
        + textwrap.dedent(f"""
            import subprocess, sys
            code = "import time; time.sleep(3); open({str(gradebook)!r}, 'w').write('rewritten'); time.sleep(60)"
            subprocess.Popen([sys.executable, "-c", code, {MARKER!r}], start_new_session=True)
            """),
        # Stops and kills its parent (the grader, outside a sandbox), then every process it can see. Unconfined,
        # as root, that is every process of the machine: the attack only strikes where bubblewrap is pid 1.
        "signals_everyone.ipynb": WRONG
        + SANDBOXED_ONLY
        + textwrap.dedent("""
            import os, signal
            for pid in [os.getppid(), *(int(p) for p in os.listdir("/proc") if p.isdigit())] * in_sandbox:
                if pid != os.getpid():
                    for sig in (signal.SIGSTOP, signal.SIGKILL):
                        try:
                            os.kill(pid, sig)
                        except OSError:
                            pass
            """),
        # Fills the other kernels' temporary folders and empties another student's file before it is read.
        "spoils_the_others.ipynb": WRONG
        + SANDBOXED_ONLY
        + textwrap.dedent(f"""
            import glob, os, tempfile
            for folder in glob.glob(os.path.join(tempfile.gettempdir(), "spam-labs-grade-*", "*")) * in_sandbox:
                with open(os.path.join(folder, "filler"), "wb") as f:
                    f.write(b"x" * 10**6)
            try:
                open({str(victim)!r}, "w").close()
            except OSError as exc:
                print("victim", exc.strerror)
            """),
        # F1: leaves a folder tree 3,000 deep and an unreadable folder in its one folder the grader must remove.
        "deep_tree.ipynb": WRONG
        + PRIVATE
        + textwrap.dedent("""
            os.chdir(private)
            for _ in range(3000):
                os.mkdir("d")
                os.chdir("d")
            os.chdir(private)
            os.makedirs("locked/inner")
            open("locked/inner/file", "w").close()
            os.chmod("locked/inner", 0)
            os.chmod("locked", 0o500)
            os.chdir(os.path.expanduser("~"))
            """),
        # F5: an input transformer that turns the check's failure into a pass, as IPython runs the cell.
        "transforms_the_check.ipynb": WRONG
        + textwrap.dedent("""
            def rewrite(lines):
                return [line.replace("exercise_checks.failed", "exercise_checks.passed") for line in lines]
            get_ipython().input_transformers_post.append(rewrite)
            """),
        # F5: the check function replaced in the module the check cell imports.
        "patches_the_check.ipynb": WRONG + "\nimport exercise_checks\nexercise_checks.failed = exercise_checks.passed",
        # F5: takes the grader's reset module away, and forges the check with a transformer.
        "sabotages_the_reset.ipynb": WRONG
        + textwrap.dedent("""
            import sys
            sys.modules["_spam_labs_grader"] = None
            def rewrite(lines):
                return [line.replace("exercise_checks.failed", "exercise_checks.passed") for line in lines]
            get_ipython().input_transformers_post.append(rewrite)
            """),
        # F7: replaces its socket files by links to a socket of the grader's machine, then breaks the grader's
        # connections so that they reconnect, through the links; then ends (the grader must not hang on it).
        "relinks_sockets.ipynb": WRONG
        + PRIVATE
        + textwrap.dedent(f"""
            import json, socket, time
            info = json.load(open(connection))
            for port in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
                path = f"{{info['ip']}}-{{info[port]}}"
                os.unlink(path)
                os.symlink({str(canary)!r}, path)
            for fd in map(int, os.listdir("/proc/self/fd")):
                try:
                    s = socket.socket(fileno=fd)
                except OSError:
                    continue
                try:
                    if s.family == socket.AF_UNIX and not s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                        s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                finally:
                    s.detach()
            time.sleep(1.5)
            os._exit(0)
            """),
        # F9: the reference notebook's exercise cell, markers and solution, handed in as the answer.
        "copies_the_solution.ipynb": REFERENCE_EXERCISE,
        # Honest, but floods its own output: the output is capped, the check still counts.
        "floods_output.ipynb": SOLVED + "\nfor i in range(5000):\n    print(i)",
        "floods_bytes.ipynb": SOLVED + "\nprint('x' * 11_000_000)",
    }


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    """The attacks graded once, in the sandbox, two at a time: (exit status, rows, printed, course, gradebook)."""
    require_sandbox()
    tmp = tmp_path_factory.mktemp("attacks")
    course = make_course(tmp / "course")
    before = {p.name: p.read_bytes() for p in course.iterdir()}
    folder, gradebook = tmp / "class", tmp / "gradebook.csv"
    student_copy = released(course, tmp)
    canary, connections = listening_canary(tmp / "canary.sock")
    for name, source in attacks(course, folder, gradebook, canary).items():
        save(with_exercise(student_copy, source), folder / name)
    started = time.perf_counter()
    out, err = io.StringIO(), io.StringIO()  # a module-scoped fixture cannot use capsys
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = instructor.main(
            ["grade", str(folder), "--execute", "--jobs", "2", "--out", str(gradebook), "--course", str(course)]
        )
    seconds = time.perf_counter() - started
    time.sleep(0.5)  # a reconnection would have reached the canary by now
    print(f"grade --execute --jobs 2 of {len(list(folder.iterdir()))} attack notebooks: {seconds:.1f} s")
    written = gradebook.read_bytes()
    with open(gradebook, newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return {
        "status": status,
        "rows": rows,
        "printed": out.getvalue() + err.getvalue(),
        "course": course,
        "course_before": before,
        "gradebook": gradebook,
        "written": written,
        "canary connections": list(connections),
    }


def listening_canary(path: Path):
    """A Unix socket of the grader's machine, outside every sandbox, and the list of connections it accepts."""
    import socket
    import threading

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(64)
    connections = []

    def accept():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connections.append(time.monotonic())
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    return path, connections


def checks(run, student) -> tuple[str, str]:
    row = run["rows"][student]
    return row["checks_passed"], row["checks_total"]


def test_honest_submissions_get_their_marks_in_the_sandbox(class_run):
    assert class_run["status"] == 0, class_run["printed"][-3000:]
    honest = class_run["rows"]["honest.ipynb"]
    assert (honest["status"], honest["checks_passed"], honest["graded_from"]) == ("ok", "1", "re-run in the sandbox")
    assert honest["classifier_test_accuracy"] == "0.912"  # the results cell ran, and recorded
    assert "2 at a time" in class_run["printed"] and "each in its own sandbox" in class_run["printed"]


def test_the_course_cannot_be_changed_from_a_submission(class_run):
    course = class_run["course"]
    assert {p.name: p.read_bytes() for p in course.iterdir()} == class_run["course_before"]
    assert checks(class_run, "a_course_writer.ipynb") == ("0", "1")
    assert checks(class_run, "z_wrong_after_the_writer.ipynb") == ("0", "1")  # no passing check appended
    assert "THE COURSE CHANGED" not in class_run["printed"]


def test_solutions_cannot_be_read(class_run):
    assert checks(class_run, "reads_solution.ipynb") == ("0", "1")


def test_a_verdict_printed_after_the_check_does_not_count(class_run):
    """The kernel's reply to the check cell says error (nbgrader agrees: tests/test_nbgrader.py)."""
    for student in ("clears_output.ipynb", "clears_output_and_error.ipynb"):
        assert checks(class_run, student) == ("0", "1"), student
        row = class_run["rows"][student]
        assert row["status"] == "ok"
        assert "post_run_cell hooks" in row["needs_a_look"], row["needs_a_look"]  # the hook was found, and removed


def test_F1_an_undeletable_or_deep_folder_left_by_a_kernel_stops_nothing(class_run):
    """3,000 folders deep: shutil.rmtree (Python 3.11) raised RecursionError, and the run was lost."""
    row = class_run["rows"]["deep_tree.ipynb"]
    assert (row["status"], row["checks_passed"]) == ("ok", "0"), row
    assert class_run["status"] == 0
    left = [p for p in Path("/tmp").glob("spam-labs-grade-*/run-*") if (p / "locked").exists() or (p / "d").exists()]
    assert not left, left


def test_F5_transformers_hooks_and_patched_checks_are_reset_before_the_check(class_run):
    for student, found in [
        ("transforms_the_check.ipynb", "input_transformers_post"),
        ("patches_the_check.ipynb", "exercise_checks.failed replaced"),
    ]:
        row = class_run["rows"][student]
        assert (row["checks_passed"], row["status"]) == ("0", "ok"), (student, row)
        assert "before cell 6 the kernel had changed: " in row["needs_a_look"], (student, row)
        assert found in row["needs_a_look"], (student, row)
    assert class_run["rows"]["honest.ipynb"]["needs_a_look"] == ""


def test_F5_a_reset_that_does_not_answer_as_sent_voids_the_check(class_run):
    """What cannot be ruled out (a submission written against the reset itself) is flagged, and counts 0."""
    row = class_run["rows"]["sabotages_the_reset.ipynb"]
    assert row["checks_passed"] == "0", row
    assert "the grader's reset before cell 6 did not run as sent" in row["needs_a_look"], row


def test_F7_a_kernel_cannot_point_the_graders_sockets_elsewhere(class_run):
    assert class_run["canary connections"] == []
    row = class_run["rows"]["relinks_sockets.ipynb"]
    assert row["checks_passed"] == "0" and row["status"].startswith("kernel died in cell 5"), row


def test_F9_the_reference_solution_handed_in_is_flagged(class_run):
    row = class_run["rows"]["copies_the_solution.ipynb"]
    assert row["checks_passed"] == "1"  # it is right: a flag for a look, not a grade
    assert "nbgrader's solution markers in cell 5" in row["needs_a_look"], row
    assert "the reference solution, verbatim, in cell 5" in row["needs_a_look"], row


def test_a_kernel_that_dies_in_the_check_fails_it(class_run):
    row = class_run["rows"]["dies_after_print.ipynb"]
    # Its replaced exercise_checks.failed is put back before the check (F5): the check fails, the kernel lives.
    assert (row["checks_passed"], row["status"]) == ("0", "ok")
    assert "exercise_checks.failed replaced" in row["needs_a_look"], row


def test_nothing_outlives_the_sandbox_or_rewrites_the_gradebook(class_run):
    time.sleep(4)  # the detached process would have written by now
    assert class_run["gradebook"].read_bytes() == class_run["written"]
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if MARKER.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                alive.append(pid)
        except OSError:
            pass
    assert not alive, f"processes left by a submission: {alive}"
    assert checks(class_run, "detached_writer.ipynb") == ("0", "1")


def test_a_kernel_cannot_signal_the_grader_or_its_siblings(class_run):
    """The grader finished (it was neither stopped nor killed), and every other row is as it would be alone."""
    assert checks(class_run, "signals_everyone.ipynb") == ("0", "1")
    assert len(class_run["rows"]) == len(attacks(class_run["course"], Path("."), Path(".")))


def test_other_kernels_temporary_folders_and_files_cannot_be_touched(class_run):
    assert checks(class_run, "spoils_the_others.ipynb") == ("0", "1")
    assert class_run["rows"]["honest.ipynb"]["status"] == "ok"  # its file was read, and graded, whole
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("spam-labs-grade-*/run-*/filler"))


def test_output_is_capped_per_cell(class_run):
    row = class_run["rows"]["floods_output.ipynb"]
    assert row["status"] == "output cut in cell 5 (more than 1,000 lines kept)"
    assert row["checks_passed"] == "1"  # the check cell's own output is kept
    row = class_run["rows"]["floods_bytes.ipynb"]
    assert (row["status"], row["checks_passed"]) == ("output cut in cell 5 (more than 10,485,760 bytes kept)", "1")


def test_what_a_kernel_sees_in_the_sandbox(tmp_path, monkeypatch, capfd):
    """One kernel probes its sandbox: the lab's modules and data, no course folder, no network, no other process."""
    require_sandbox()
    course = make_course(tmp_path / "course")
    other = save(lab_source(1), tmp_path / "class" / "other.ipynb")
    monkeypatch.setenv("GRADER_SECRET", "not for students")
    if utils.data_dir().is_dir():
        monkeypatch.setenv(utils.DATA_ENV, str(utils.data_dir()))
    probe = textwrap.dedent(f"""
        import json, os, socket, sys, utils, exercise_checks
        def attempt(action):
            try:
                action()
                return "ok"
            except OSError as exc:
                return exc.strerror
        def write(path):
            with open(path, "w") as f:
                f.write("x")
        seen = {{
            "utils": utils.__file__, "exercise_checks": exercise_checks.__file__, "data": str(utils.data_dir()),
            "data cache": sorted(os.listdir(utils.data_dir())) != [],
            "read the reference": attempt(lambda: open({str(course / notebooks.LAB_NOTEBOOKS[1])!r}).read()),
            "read another submission": attempt(lambda: open({str(other)!r}).read()),
            "list the course": attempt(lambda: os.listdir({str(course)!r})),
            "write the checks": attempt(lambda: write(exercise_checks.__file__)),
            "write the data cache": attempt(lambda: write(os.path.join(utils.data_dir(), "x"))),
            "write the packages": attempt(lambda: write(os.path.join(os.path.dirname(os.__file__), "x.py"))),
            "write home": attempt(lambda: write("notes.txt")),
            "write /tmp": attempt(lambda: write("/tmp/notes.txt")),
            "network": attempt(lambda: socket.create_connection(("1.1.1.1", 80), timeout=3)),
            "signal the grader": attempt(lambda: os.kill({os.getpid()}, 0)),
            "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "uid": os.getuid(),
            "capabilities": [line.split()[1] for line in open("/proc/self/status") if line.startswith("CapEff")],
            "environment": sorted(os.environ),
            "cwd": os.getcwd(),
        }}
        # ipykernel forwards what is written to file descriptor 1 into the notebook; the descriptor it started
        # with is kept aside: that one is the kernel process's own stdout, the grader's terminal if inherited.
        os.write(getattr(sys.stdout, "_original_stdstream_copy", None) or 1, b"LEAKED TO THE GRADER\\n")
        print(json.dumps(seen))
        """)
    notebook = lab_source(1)
    notebook.cells.insert(1, new_code_cell(probe))
    with execute.grading_run(Course.read(course), timeout=120, private_to_grader=(other,)) as run:
        assert run.sandbox is not None
        done = execute.executed_copy(json.loads(json.dumps(notebook)), run)
    assert done.problems == [], done.problems
    text = "".join(output.get("text", "") for output in done.notebook["cells"][1]["outputs"])
    assert text.strip(), done.notebook["cells"][1]["outputs"]
    seen = json.loads(text.strip().splitlines()[-1])
    assert seen["utils"] == "/course/utils.py" and seen["exercise_checks"] == "/course/exercise_checks.py"
    assert seen["data"] == "/course/data" and seen["data cache"] == utils.data_dir().is_dir()
    for what in ("read the reference", "read another submission", "list the course"):
        assert seen[what] == "No such file or directory", (what, seen[what])
    for what in ("write the checks", "write the data cache", "write the packages"):
        assert seen[what] == "Read-only file system", (what, seen[what])
    assert seen["write home"] == seen["write /tmp"] == "ok"
    assert seen["network"] == "Network is unreachable"
    assert seen["signal the grader"] == "No such process"
    assert max(seen["processes"]) < 100 and len(seen["processes"]) <= 5, seen["processes"]
    assert seen["uid"] == 1000 and seen["capabilities"] == ["0000000000000000"]
    assert "GRADER_SECRET" not in seen["environment"] and seen["cwd"] == "/home/student"
    assert "LEAKED" not in "".join(capfd.readouterr())  # nothing a kernel writes reaches the grader's terminal


def test_without_the_sandbox_a_changed_course_is_reported(tmp_path, capsys):
    """--no-sandbox says what it gives up; a submission that writes to the course is caught by the hashes."""
    course = make_course(tmp_path / "course")
    folder, gradebook = tmp_path / "class", tmp_path / "gradebook.csv"
    student_copy = released(course, tmp_path)
    sources = attacks(course, folder, gradebook)
    save(with_exercise(student_copy, sources["a_course_writer.ipynb"]), folder / "a_course_writer.ipynb")
    args = ["grade", str(folder), "--execute", "--no-sandbox", "--out", str(gradebook), "--course", str(course)]
    status = instructor.main(args)
    printed = "".join(capsys.readouterr())
    assert "WARNING: --no-sandbox: each submission's code runs unconfined" in printed
    assert status == 1 and "WARNING: THE COURSE CHANGED WHILE GRADING: 01_spam_tutorial.ipynb" in printed
    with open(gradebook, newline="", encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    assert "THE COURSE CHANGED while this notebook ran (01_spam_tutorial.ipynb, exercise_checks.py" in row["status"]
    assert row["graded_from"] == "re-run WITHOUT the sandbox"


def test_without_bubblewrap_execute_stops_with_a_clear_message(tmp_path, capsys, monkeypatch):
    course = make_course(tmp_path / "course")
    save(lab_source(1), tmp_path / "class" / "a.ipynb")
    empty = tmp_path / "no-bwrap"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("bwrap") is None
    args = ["grade", str(tmp_path / "class"), "--execute", "--out", str(tmp_path / "g.csv"), "--course", str(course)]
    assert instructor.main(args) == 2
    err = capsys.readouterr().err
    assert "bubblewrap sandbox, and `bwrap` is not on PATH" in err and "--no-sandbox" in err
    assert not (tmp_path / "g.csv").exists()


def test_the_sandbox_dies_with_the_grader(tmp_path):
    """The grader killed outright (SIGKILL: no clean-up runs): its sandboxes, and all they started, go with it."""
    require_sandbox()
    course = make_course(tmp_path / "course")
    hang = lab_source(1)
    hang.cells.insert(1, new_code_cell("import time\ntime.sleep(600)"))
    save(hang, tmp_path / "class" / "hangs.ipynb")
    args = ["grade", str(tmp_path / "class"), "--execute", "--course", str(course), "--out", str(tmp_path / "g.csv")]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    grader = subprocess.Popen([sys.executable, "instructor.py", *args], cwd=instructor.COURSE, **quiet)
    try:
        deadline = time.monotonic() + 60
        while not kernels_below(grader.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        sandbox = descendants(grader.pid)
        assert kernels_below(grader.pid) and list(sandbox.values()).count("bwrap") == 2, sandbox  # bwrap, its pid 1
        command = min(sandbox, key=int)
        argv = Path(f"/proc/{command}/cmdline").read_bytes().split(b"\0")
        workspace = Path(os.fsdecode(argv[argv.index(b"--bind") + 1])).parent  # a killed grader cannot remove it
    finally:
        grader.kill()
        grader.wait()
    shutil.rmtree(workspace)
    deadline = time.monotonic() + 10
    while [pid for pid in sandbox if Path(f"/proc/{pid}").exists()] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in sandbox if Path(f"/proc/{pid}").exists()], "a sandbox outlived the grader"
    assert not (tmp_path / "g.csv").exists()


def kernels_below(parent: int) -> list[str]:
    """The kernels (``python -m ipykernel_launcher``) among the processes below ``parent``."""
    found = []
    for pid in descendants(parent):
        try:
            if b"ipykernel_launcher" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


def descendants(parent: int) -> dict[str, str]:
    """Process id -> program name, for every process below ``parent``."""
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        table[pid] = (rest.split()[1], name)
    found, frontier = {}, {str(parent)}
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier and pid not in found}
        found.update({pid: table[pid][1] for pid in frontier})
    return found


def small_lab(exercise: str):
    """The fixture lab 1, its exercise cell holding ``exercise`` (as JSON data, for executed_copy)."""
    notebook = lab_source(1)
    notebook.cells[4].source = exercise
    return json.loads(json.dumps(notebook))


def test_F2_display_updates_and_widget_messages_are_capped(tmp_path):
    """40 displays updated to 1 MB each and 40 widgets of 1 MB: before, all of it was kept (80 MB)."""
    require_sandbox()
    course = make_course(tmp_path / "course")
    flood = SOLVED + textwrap.dedent("""
        from IPython.display import display, update_display
        from comm import create_comm
        for i in range(40):
            display("small", display_id=f"d{i}")
        for i in range(40):
            update_display({"text/plain": "x" * 1_000_000}, raw=True, display_id=f"d{i}")
        for i in range(40):
            create_comm(target_name="jupyter.widget", data={"state": {"value": "y" * 1_000_000}, "buffer_paths": []})
        """)
    with execute.grading_run(Course.read(course), timeout=60) as run:
        done = execute.executed_copy(small_lab(flood), run, Course.read(course).references[1])
    size = len(json.dumps(done.notebook))
    assert size < execute.MAX_OUTPUT_BYTES + 2**20, f"{size:,} bytes kept"
    assert "output cut in cell 5 (more than 10,485,760 bytes of display updates kept)" in done.problems, done.problems
    assert done.check_ran_ok(6)


def bombs(folder: Path) -> dict[str, Path]:
    """Submitted files built to stall or crash a reader: huge, deep, many cells, enormous strings."""
    lab = json.loads(json.dumps(executed_notebook()))
    made = {}
    deep = copy.deepcopy(lab)
    nested: list = []
    deep["cells"][0]["metadata"]["x"] = nested
    for _ in range(900):  # under json's recursion limit; deep enough for any recursive walk after it
        nested.append([])
        nested = nested[0]
    many = copy.deepcopy(lab)
    many["cells"] += [{"cell_type": "markdown", "metadata": {}, "source": "x"} for _ in range(6_000)]
    long = copy.deepcopy(lab)
    long["cells"][4]["source"] = "#" + "x" * 1_500_000
    digits = copy.deepcopy(lab)
    digits["cells"][5]["metadata"]["nbgrader"]["grade_id"] = "lab" + "1" * 100_000 + "-check"
    for name, notebook in [("deep", deep), ("many_cells", many), ("long_string", long), ("digits", digits)]:
        made[name] = folder / f"{name}.ipynb"
        made[name].parent.mkdir(parents=True, exist_ok=True)
        made[name].write_text(json.dumps(notebook))
    made["too_deep"] = folder / "too_deep.ipynb"
    made["too_deep"].write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    made["huge"] = folder / "huge.ipynb"
    with open(made["huge"], "wb") as f:
        f.truncate(200 * 2**20)  # sparse: 200 MB on paper, nothing on disk
    return made


def executed_notebook():
    from test_instructor import executed

    return executed(lab_source(1))


BOMB_STATUS = {
    "deep": "too deeply nested (JSON deeper than 64 levels): not graded",
    "too_deep": "too deeply nested (JSON deeper than 64 levels): not graded",
    "many_cells": "too many cells (6,009; the limit is 5,000): not graded",
    "long_string": "cell 5 too long (1,500,001 characters; the limit is 1,000,000)",
    "huge": "too large (209,715,200 bytes; the limit is 50 MB)",
}


@pytest.mark.parametrize("mode", ["read", "execute"])
def test_F3_huge_files_and_json_bombs_get_a_clear_row_quickly(tmp_path, capsys, mode):
    """Each bomb gets its own clear status, in seconds, in both modes."""
    if mode == "execute":
        require_sandbox()
    course = make_course(tmp_path / "course")
    made = bombs(tmp_path / "class")
    args = ["grade", str(tmp_path / "class"), "--out", str(tmp_path / "g.csv"), "--course", str(course)]
    started = time.perf_counter()
    status = instructor.main(args + (["--execute", "--timeout", "30"] if mode == "execute" else []))
    seconds = time.perf_counter() - started
    capsys.readouterr()
    with open(tmp_path / "g.csv", newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert status == 0 and len(rows) == len(made)
    for name, expected in BOMB_STATUS.items():
        assert rows[f"{name}.ipynb"]["status"] == expected, (name, rows[f"{name}.ipynb"]["status"][:300])
    assert rows["digits.ipynb"]["status"] != "" and "could not be graded" not in rows["digits.ipynb"]["status"]
    assert seconds < (15 if mode == "execute" else 10), f"{seconds:.1f} s"


def test_F4_the_timeout_bounds_the_whole_notebook_clean_up_included(tmp_path):
    """A kernel that fills its folder until it is killed: removing the files came on top of --timeout. Now the kill
    and the clean-up fit in the timeout; what is left waits for the end of the run."""
    require_sandbox()
    course = make_course(tmp_path / "course")
    filler = (
        WRONG
        + PRIVATE
        + textwrap.dedent("""
        import time
        end = time.monotonic() + 30
        mine = os.path.join(private, str(os.fork()))  # two processes, as many files as they can make
        os.mkdir(mine)
        i = 0
        while time.monotonic() < end:
            open(os.path.join(mine, str(i)), "w").close()
            i += 1
        """)
    )
    timeout = 5
    with execute.grading_run(Course.read(course), timeout=timeout) as run:
        started = time.monotonic()
        done = execute.executed_copy(small_lab(filler), run, Course.read(course).references[1])
        seconds = time.monotonic() - started
        workspace = run.workspace
    assert done.problems[0] == f"timed out after {timeout} s in cell 5", done.problems
    assert seconds < timeout + 0.5, f"{seconds:.1f} s for a {timeout} s timeout"
    assert not workspace.exists()  # the end of the run removed what was left


def test_F6_no_formula_after_a_separator_and_every_field_quoted(tmp_path, capsys):
    """Before: ';=cmd' or a tab then '@SUM' were written bare: a spreadsheet splitting on ';' or tabs runs them."""
    course = make_course(tmp_path / "course")
    folder = tmp_path / "class"
    values = ["0.9;=HYPERLINK(1)", "a\t@SUM(A1)", "x, +1+1", "ok|-2+3", "a; =1", "0.5;-0.25"]
    for i, value in enumerate(values):
        notebook = executed_notebook()
        figures = notebook.cells[8].outputs[0]["data"][utils.RESULTS_MIME]["figures"]
        figures["classifier_test_accuracy"] = value
        save(notebook, folder / f"s{i}.ipynb")
    out = tmp_path / "g.csv"
    assert instructor.main(["grade", str(folder), "--out", str(out), "--course", str(course)]) == 0
    capsys.readouterr()
    raw = out.read_text(encoding="utf-8")
    for line in raw.splitlines():
        assert line.startswith('"') and line.endswith('"'), line  # every field quoted
    with open(out, newline="", encoding="utf-8") as f:
        shown = [row["classifier_test_accuracy"] for row in csv.DictReader(f)]
    assert shown == ["0.9;'=HYPERLINK(1)", "a\t'@SUM(A1)", "x, '+1+1", "ok|'-2+3", "a; '=1", "0.5;-0.25"]
    import re

    for value in shown:  # split as a spreadsheet might: no piece starts a formula
        for piece in re.split(r"[,;\t|\r\n]", value):
            body = piece.strip()
            assert body[:1] not in "=+-@" or not body or body == "-0.25", (value, piece)


def test_F8_lab_swaps_and_hidden_files_each_get_a_clear_row(tmp_path, capsys):
    """Before: .lab1.ipynb, checkpoints and .IPYNB files had no row at all; a lab 3 notebook named as lab 1 was
    graded as lab 3 without a word."""
    course = make_course(tmp_path / "course")
    folder = tmp_path / "class"
    lab3 = executed(lab_source(3))
    save(lab3, folder / "alice" / notebooks.LAB_NOTEBOOKS[1])  # lab 3 handed in under lab 1's name
    save(executed_notebook(), folder / "bob" / ".lab1.ipynb")
    save(executed_notebook(), folder / "bob" / ".ipynb_checkpoints" / "lab1-checkpoint.ipynb")
    save(executed_notebook(), folder / "carol" / "LAB1.IPYNB")
    save(executed_notebook(), folder / "dave" / "old" / "01_spam_tutorial.ipynb")
    out = tmp_path / "g.csv"
    assert instructor.main(["grade", str(folder), "--out", str(out), "--course", str(course)]) == 0
    capsys.readouterr()
    with open(out, newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == [
        "alice/01_spam_tutorial.ipynb",
        "bob/.ipynb_checkpoints/lab1-checkpoint.ipynb",
        "bob/.lab1.ipynb",
        "carol/LAB1.IPYNB",
        "dave/old/01_spam_tutorial.ipynb",
    ]
    alice = rows["alice/01_spam_tutorial.ipynb"]
    assert alice["lab"] == "3" and alice["status"].startswith("which lab is unclear ("), alice
    assert "file name 1" in alice["status"] and "graded as lab 3" in alice["status"]
    assert rows["bob/.lab1.ipynb"]["status"].startswith("hidden (.lab1.ipynb: ")
    assert rows["bob/.ipynb_checkpoints/lab1-checkpoint.ipynb"]["status"].startswith("hidden (.ipynb_checkpoints: ")
    assert rows["carol/LAB1.IPYNB"]["status"] == "ok" and rows["dave/old/01_spam_tutorial.ipynb"]["status"] == "ok"
