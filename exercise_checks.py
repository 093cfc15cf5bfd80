"""The exercise checks of the three labs: one function per exercise, called by its lab's check cell.

Each check judges a student's answer on dev or valid data (never on test), prints what it found,
and ends with one verdict line. ``CHECK PASSED: ...`` means the answer is sound. ``CHECK FAILED: ...``
names the mistake and how to fix it, and is followed by an ``AssertionError`` carrying the same
message, so that autograders which score a test cell by whether it raises (nbgrader) agree with
the line that ``python instructor.py grade`` reads.
"""

from __future__ import annotations

#: How a check's verdict line starts. ``instructor.py grade`` reads these in the check cell's output.
CHECK_PASSED, CHECK_FAILED = "CHECK PASSED:", "CHECK FAILED:"


class CheckFailed(AssertionError):
    """A student's answer is wrong; the message says what to change."""


def passed(message: str) -> None:
    print(f"{CHECK_PASSED} {message}")


def failed(message: str) -> None:
    """Print the failure line, then raise it, so that both people and autograders see it."""
    print(f"{CHECK_FAILED} {message}")
    raise CheckFailed(message)


# --------------------------------------------------------------------------
# Lab 1: labeling functions
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Lab 2: transformation functions
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Lab 3: slicing functions
# --------------------------------------------------------------------------
