"""Executing a submission again from scratch in a fresh kernel, for ``grade --execute``."""

from __future__ import annotations

import copy
import os
import subprocess
import tempfile
import time
from pathlib import Path

from instructor_tools.notebooks import COURSE, Reference, as_text, code_cells, restore_locked_cells

#: Seconds one notebook may run under ``grade --execute``, all cells together.
GRADE_TIMEOUT = 600


def this_python_kernel():
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
            return self.kernel_spec_class(
                resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
            )

    class ThisPythonKernel(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return ThisPythonSpecs(data_dir=self.data_dir)

    return ThisPythonKernel


def executed_copy(
    notebook: dict,
    course: Path = COURSE,
    timeout: float = GRADE_TIMEOUT,
    kernel: str | None = None,
    reference: Reference | None = None,
) -> tuple[dict, list[str]]:
    """``notebook`` run again from scratch in a new kernel, and what went wrong on the way (empty if nothing).

    The run starts from a copy with every output cleared, and the student's
    file is never written. With a ``reference``, every check cell, the results
    cell and any other locked cell first get the reference's code back. The
    kernel works in its own empty temporary folder with the course folder on
    PYTHONPATH, so ``import utils`` works and the notebook cannot change files
    there. A cell's error does not stop the run (as in nbgrader), so one broken
    cell does not hide the rest. ``timeout`` bounds the whole notebook: each
    cell may use what the cells before it left.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    run = nbformat.from_dict(copy.deepcopy(notebook))  # the caller's dict is left as it was
    problems = restore_locked_cells(run, reference) if reference else []
    for _, cell in code_cells(run):
        cell["source"], cell["outputs"], cell["execution_count"] = as_text(cell.get("source")), [], None
    deadline = time.monotonic() + timeout
    kernel_options = {"kernel_name": kernel} if kernel else {"kernel_manager_class": this_python_kernel()}
    python_path = os.pathsep.join(filter(None, [str(course), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="spam-labs-grade-") as workdir:
        client = NotebookClient(
            run,
            allow_errors=True,
            resources={"metadata": {"path": workdir}},
            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
            **kernel_options,
        )
        try:
            client.execute(env={**os.environ, "PYTHONPATH": python_path}, stderr=subprocess.DEVNULL)
        except CellTimeoutError:
            started = [number for number, cell in code_cells(run) if cell.get("execution_count") is not None]
            problems.append(f"timed out after {timeout:g} s" + (f" in cell {started[-1]}" if started else ""))
        except DeadKernelError:
            problems.append("kernel died")
        except Exception as exc:  # no such kernel, kernel failed to start, ...
            problems.append(f"could not run ({type(exc).__name__}: {exc})")
    return run, problems
