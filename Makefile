# Spam Labs: `make lab` to work, `make test` to check everything.
# Windows has no make: README.md lists the same steps as plain commands.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
KERNEL := spam-labs

.PHONY: lab test setup clean

lab: setup
	$(BIN)/jupyter lab

test: setup
	$(BIN)/python -m pytest

# Everything a lab needs: the venv, the pinned packages, the Jupyter kernel, the data.
setup: $(VENV)/.installed
	$(BIN)/python utils.py fetch

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Spam Labs needs Python 3.11 or newer; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m ipykernel install --user --name=$(KERNEL) --display-name="Python 3 (Spam Labs)"
	touch $@

clean:
	rm -rf $(VENV)
