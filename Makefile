# Spam Labs: `make lab` to work, `make test` to check everything.
# Windows has no make: README.md lists the same steps as plain commands.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
KERNEL := spam-labs
# Where the kernel spec goes: --user (any JupyterLab of this user sees it) or --sys-prefix (only
# this venv's JupyterLab does; CI and throw-away clones use it so they leave the user's kernel alone).
KERNEL_SCOPE ?= --user
# The index requirements.txt names for PyTorch's CPU builds; probed before installing (see below).
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

.PHONY: lab test unit test-colab lint check-pins check-pins-refresh setup clean

# JupyterLab refuses to start as root (as in many containers) unless told --allow-root.
lab: setup
	@if [ "$$(id -u)" = 0 ]; then \
		echo "WARNING: you are root, so JupyterLab starts with --allow-root: code in the notebooks runs with root's rights on this machine. Use a normal user where you can."; \
		$(BIN)/jupyter lab --allow-root; \
	else \
		$(BIN)/jupyter lab; \
	fi

# Everything: the unit tests and every notebook re-run by nbval and compared with its committed outputs,
# the files spread over TEST_WORKERS processes (pytest-xdist; a notebook's cells stay in one), then the
# tests marked `alone`, which time parallel work and so need the cores to themselves. Both parts run even
# if the first fails; pytest's exit 5 (no test selected) is no failure in the second. `pytest` by itself
# runs the same tests, one file after another.
TEST_WORKERS ?= auto
test: setup $(VENV)/.installed-instructor
	status=0; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not alone" || status=$$?; \
	$(BIN)/python -m pytest -m alone || [ $$? = 5 ] || status=1; \
	exit $$status

# The fast unit tests (pytest tests), without re-running the notebooks, the nbgrader round trip or the `alone` timings.
unit: setup $(VENV)/.installed-instructor
	$(BIN)/python -m pytest -n $(TEST_WORKERS) tests --ignore=tests/test_nbgrader.py -m "not alone"

# Google Colab's versions (tests/test_colab.py): each lab alone in an empty folder, in a Colab-like Python 3.13
# environment built from ../shared/colab/pip-freeze.txt. That environment is built once (7.5 GB) and cached
# outside the clone, in ~/.cache/spam-labs (SPAM_LABS_CACHE moves it).
test-colab: $(VENV)/.installed
	SPAM_LABS_TEST_COLAB=1 $(BIN)/python -m pytest tests/test_colab.py -rP

# Style: ruff's linter and formatter (configured in pyproject.toml), as CI runs them.
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Needs PyPI: resolve requirements.txt for every supported platform and Python (CI runs this),
# unless tools/pins-resolved.json records that this very requirements.txt already resolved.
check-pins: $(VENV)/.installed
	$(BIN)/python tools/check_pins.py --if-changed

# Resolve again whatever the record says, and rewrite it (commit tools/pins-resolved.json).
check-pins-refresh: $(VENV)/.installed
	$(BIN)/python tools/check_pins.py

# Everything a lab needs: the venv, the pinned packages, the Jupyter kernel, the data.
setup: $(VENV)/.installed
	$(BIN)/python utils.py fetch

# pip tries every index for every package, and an index it cannot reach costs about 8 s of
# retries per package (25 minutes in all, measured). So the PyTorch CPU index is probed once, and left out
# of the install when it cannot be reached: torch then comes from a local wheel folder that pip
# is configured with (find-links), or else from PyPI.
$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Spam Labs needs Python 3.11 or newer; run: make PYTHON=python3.11 ... (README: Quick start)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if $(BIN)/python -c 'import urllib.request; urllib.request.urlopen("$(TORCH_CPU_INDEX)/torch/", timeout=10)' 2>/dev/null; then \
		cp requirements.txt $(VENV)/requirements-install.txt; \
	else \
		echo "PyTorch's CPU index ($(TORCH_CPU_INDEX)) cannot be reached: installing without it. torch comes from"; \
		echo "a wheel folder pip is configured with, if it has one, else from PyPI: on Linux, the CUDA build (7.2 GB .venv)."; \
		grep -v '^--extra-index-url $(TORCH_CPU_INDEX)' requirements.txt > $(VENV)/requirements-install.txt; \
	fi
	@echo "Installing requirements.txt into $(VENV): about 190 packages, 790 MB to download, 3.5 GB on disk with"
	@echo "PyTorch's CPU build. Measured: about 4 minutes on a 2-core machine with a fast connection; the download"
	@echo "alone takes about 11 minutes at 10 Mbit/s. pip lists each package as it goes."
	$(BIN)/python -m pip install --progress-bar on -r $(VENV)/requirements-install.txt
	@$(BIN)/python -c 'from importlib.metadata import version; v = version("torch"); print("Installed torch " + v + (" (CPU build)" if "+cpu" in v else ""))'
	$(BIN)/python -m ipykernel install $(KERNEL_SCOPE) --name=$(KERNEL) --display-name="Python 3 (Spam Labs)"
	touch $@

# Instructor tools (nbgrader), installed into the same venv once, for the tests that use them.
# requirements.txt's pins constrain it, so it cannot move a package the labs were tested with.
$(VENV)/.installed-instructor: requirements-instructor.txt $(VENV)/.installed
	$(BIN)/python -m pip install -c $(VENV)/requirements-install.txt -r requirements-instructor.txt
	touch $@

clean:
	rm -rf $(VENV)
