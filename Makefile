# The two commands the README documents: `make demo` and `make test`. Everything runs from the .venv in this folder.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test tmp-start venv sync-check clean-check readme-check cells-check prose-check nbdev-test pytest bench docs-html docs-check

$(STAMP): setup.py settings.ini
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/xmodal-lab demo

# 1. export changes nothing  2. notebooks are clean  3. README is current  4. no cell that the docs build would run
# out of context  4b. no measured number typed into prose  5. notebooks run  6. pytest  7. the docs pages render in a browser (when Chromium is present; in CI always)
# 8. the package's imports run down the chapters  9. nothing is left in the temporary directory: the whole run has its
# own (TMPDIR), which must be empty again at the end
TEST_TMP := $(CURDIR)/.tmp-test
test: export TMPDIR := $(TEST_TMP)
test: export TORCHINDUCTOR_CACHE_DIR := $(CURDIR)/.cache/torchinductor   # `import open_clip` makes torch's compile cache folder in the temp dir
test: $(STAMP) tmp-start sync-check clean-check readme-check cells-check prose-check nbdev-test pytest docs-check
	$(BIN)/python tools/tmp_check.py check $(TEST_TMP)

tmp-start: $(STAMP)
	$(BIN)/python tools/tmp_check.py start $(TEST_TMP)

sync-check: $(STAMP)
	$(BIN)/nbdev_export
	@git diff --exit-code --stat -- xmodal_lab || { echo "xmodal_lab/ is out of sync with nbs/: run nbdev_export and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- xmodal_lab)" || { git status --porcelain -- xmodal_lab; echo "nbdev_export created untracked modules: commit them"; exit 1; }

clean-check: $(STAMP)
	$(BIN)/nbdev_clean
	@git diff --exit-code --stat -- nbs || { echo "notebooks are not clean: run nbdev_clean and commit"; exit 1; }

readme-check: $(STAMP)
	$(BIN)/python tools/readme.py --check

cells-check: $(STAMP)
	$(BIN)/python tools/check_cells.py nbs

prose-check: $(STAMP)
	$(BIN)/python tools/prose_numbers.py

# Two workers, one thread each: two notebooks (or test files) at a time with torch's default two threads each
# oversubscribe the two cores, and measured 2.6 times slower on four heavy notebooks (240 s against 91 s)
nbdev-test: export OMP_NUM_THREADS := 1
nbdev-test: $(STAMP)
	$(BIN)/nbdev_test --n_workers 2 --timing

pytest: export OMP_NUM_THREADS := 1
pytest: $(STAMP)
	$(BIN)/python -m pytest -q -ra -n 2 --dist loadfile --basetemp=$(CURDIR)/.pytest-tmp tests

bench: $(STAMP)
	for f in bench/[!_]*.py; do $(BIN)/python $$f || exit 1; done

docs-html: $(STAMP)
	$(BIN)/python tools/docs_html.py

docs-check: $(STAMP)
	@if command -v chromium >/dev/null || test -x /usr/bin/chromium; then $(BIN)/python tools/docs_html.py --check; \
	else echo "docs check skipped: no Chromium here (Debian: apt-get install chromium)"; test -z "$$CI" || { echo "CI must run the docs check"; exit 1; }; fi
