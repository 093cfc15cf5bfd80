"""The course a grading run trusts: its reference notebooks and the lab's modules, read and hashed once.

Everything ``grade`` takes from the course folder is read at the start, before
any submission runs: the references it grades against are parsed from those
bytes, and the kernels of ``--execute`` import copies of those modules. After
the run the files are hashed again, so a submission that changed the course
(possible only without the sandbox) is reported, not silently believed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from instructor_tools.notebooks import LAB_NOTEBOOKS, NotANotebook, Reference, notebook_from_bytes, reference_cells

#: What a lab notebook needs beside it: the students' module, the checks, and the pins
#: ``utils.check_environment`` compares the installed packages with.
LAB_FILES = ("utils.py", "exercise_checks.py", "requirements.txt")


@dataclass
class Course:
    """The course folder as read at the start of a run: each file's bytes and hash, and the parsed references."""

    folder: Path
    files: dict[str, bytes] = field(repr=False)  # name -> bytes, for the files that exist
    digests: dict[str, str | None]  # name -> SHA-256, None for a missing file
    references: dict[int, Reference | str]  # lab -> its reference, or why there is none (a status)

    @classmethod
    def read(cls, folder: Path) -> Course:
        folder = Path(folder).resolve()
        files = {}
        for name in [*LAB_NOTEBOOKS.values(), *LAB_FILES]:
            try:
                files[name] = (folder / name).read_bytes()
            except OSError:
                pass
        references = {}
        for lab, name in LAB_NOTEBOOKS.items():
            if name not in files:
                references[lab] = f"no reference notebook {name} in {folder}"
                continue
            try:
                references[lab] = reference_cells(notebook_from_bytes(files[name]), lab)
            except NotANotebook as exc:
                references[lab] = f"reference notebook {folder / name} unreadable ({exc})"
        digests = {name: _digest(files.get(name)) for name in [*LAB_NOTEBOOKS.values(), *LAB_FILES]}
        return cls(folder, files, digests, references)

    def changed(self, copy: Path | None = None) -> list[str]:
        """The course files whose content differs now from what was read at the start (or that appeared or went).

        With ``copy``, the lab's modules in that folder (written by ``write_lab_files``) are compared instead.
        """
        folder = self.folder if copy is None else copy
        names = self.digests if copy is None else [name for name in LAB_FILES if name in self.files]
        changed = []
        for name in names:
            try:
                now = _digest((folder / name).read_bytes())
            except OSError:
                now = None
            if now != self.digests[name]:
                changed.append(name)
        return changed

    def write_lab_files(self, folder: Path) -> Path:
        """Write the lab's modules, as read at the start, into ``folder``: what the kernels import."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in LAB_FILES:
            if name in self.files:
                (folder / name).write_bytes(self.files[name])
        return folder


def _digest(raw: bytes | None) -> str | None:
    return None if raw is None else hashlib.sha256(raw).hexdigest()


def as_course(course: Course | Path) -> Course:
    """``course`` itself, or the course folder ``course`` read now."""
    return course if isinstance(course, Course) else Course.read(course)
