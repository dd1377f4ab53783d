# Two commands matter (see README):  make book   and   make test
# Both create/refresh the virtual environment first: the active one if $VIRTUAL_ENV is set,
# else ./.venv. torch is installed from its pin *first*, so pip never pulls an unpinned build.
SHELL := /bin/bash
PY_SYS ?= python3
VENV ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cvlib-installed
TORCH_PIN := $(shell grep -E '^torch==' constraints.txt)
export PYTHONHASHSEED := 0

.PHONY: venv book test lint check-pairs unit nbval nb notebooks bench clean browser fastdev

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -c constraints.txt -e ".[book,test]"
	@touch $(STAMP)

# Build the book from the committed, executed notebooks (no execution here), warnings are errors.
book: venv
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --quiet

lint: venv
	$(VENV)/bin/ruff check cvlib tests tools benchmarks
	$(VENV)/bin/ruff format --check cvlib tests tools benchmarks

check-pairs: venv
	$(PY) tools/nb.py check notebooks

# Headless Chromium for the rendered-book test (Debian package; skipped where apt is unavailable).
browser:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the rendered-book test will skip"; }

# The whole suite: lint, notebook pairs, book build (-W), unit tests + nbval over every notebook
# (small size) + the fast dev run of every chapter's full configuration (tests/fastdev,
# CVLIB_FASTDEV=1) + the rendered-book test, in one pytest run.
# One thread per xdist worker: two workers on two cores, no oversubscription; --dist loadfile keeps
# each file (and notebook) in one worker, and each fast dev chapter is its own unit (conftest.py).
test: venv browser lint check-pairs book
	CVLIB_SIZE=small CVLIB_FASTDEV=1 OMP_NUM_THREADS=1 $(PY) -m pytest -p no:cacheprovider -n 2 \
	  --dist loadfile --nbval-lax --nbval-sanitize-with tools/nbval_sanitize.cfg tests notebooks

# Regenerate one notebook's executed .ipynb from its .md: make nb NB=notebooks/ch01_knn.md
# Small-size outputs are computed single-threaded, as CI computes them, so seeded numbers agree
# (full size keeps the default thread count).
NB_ENV = CVLIB_SIZE=$${CVLIB_SIZE:-small} \
  OMP_NUM_THREADS=$${OMP_NUM_THREADS:-$$([ "$${CVLIB_SIZE:-small}" = small ] && echo 1 || nproc)}
nb: venv
	$(NB_ENV) $(PY) tools/nb.py build $(NB)

notebooks: venv
	$(NB_ENV) $(PY) tools/nb.py build notebooks/ch*.md

bench: venv
	$(PY) benchmarks/bench_train.py

# Fast-dev-run of every chapter's full configuration (CVLIB_SIZE=full, loops capped to one step, fixture
# data in the real formats, random ImageNet weights in torchvision's layout, offline): tests/fastdev.
# Part of make test; this runs it alone, serially (about 4 minutes).
fastdev: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -p no:cacheprovider -q -m fastdev tests/fastdev

clean:
	rm -rf _build .pytest_cache
