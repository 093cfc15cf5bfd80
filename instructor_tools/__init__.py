"""The instructor tools of Spam Labs, one module per job (as nbgrader keeps one preprocessor per file).

- ``notebooks``: reading a notebook file, and finding the reference's check and results cells in it;
- ``release``: student copies of the labs, solutions out and outputs cleared;
- ``execute``: re-running a submission from scratch in a fresh kernel;
- ``grading``: one gradebook row per submitted file;
- ``gradebook``: the CSV file and the tables on screen.

The command line is ``instructor.py`` beside this folder (``python instructor.py release|grade ...``);
INSTRUCTORS.md describes it.
"""
