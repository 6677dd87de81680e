# The two commands of the README: `make demo` and `make test`. Both work on a fresh Debian machine
# with no network but the package registries.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=
# The suite runs on every core (pytest-xdist; each test has its own home and PostgreSQL database).
# `make test PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= auto
# The versions this tree was tested with (see docs/operators.md, "Dependency audit"); `make constraints`
# refreshes it from a working virtualenv.
CONSTRAINTS ?= constraints.txt

.PHONY: demo test lint typecheck bench clean install install-dev chromium screenshots constraints bytecode

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel

# The native scanner (pipelines/detection/_native) is compiled by the install: a change to it reinstalls.
NATIVE := setup.py $(wildcard pipelines/detection/_native/*) $(wildcard core/search/_native/*)

$(VENV)/.installed: $(VENV)/bin/activate pyproject.toml $(CONSTRAINTS) $(NATIVE)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/bin/activate pyproject.toml $(CONSTRAINTS) $(NATIVE)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed bytecode
install-dev: $(VENV)/.installed-dev bytecode

# The project's own modules compiled to bytecode: the editable install leaves them to the first import,
# which cannot keep them where PYTHONDONTWRITEBYTECODE is set (as on this project's machines); then every
# command (and every process the tests start) compiled ~80 modules again, ~0.2 CPU-s each time.
bytecode:
	$(PY) -m compileall -q -j 0 core pipelines alerting crawlers leaksentinel

demo: install
	$(VENV)/bin/leaksentinel demo

# Debian's Chromium drives the browser tests and --render crawls (Playwright cannot download one here).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "note: chromium missing and not root; browser tests will be skipped"; fi; \
	fi

test: install-dev chromium
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Refresh the console screenshots in docs/ (the browser tests take them).
screenshots: install-dev chromium
	LEAKSENTINEL_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(VENV)/bin/pytest tests/leaksentinel/test_console_browser.py tests/leaksentinel/test_console_browser_charts.py

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-dev
	$(VENV)/bin/mypy core pipelines alerting crawlers leaksentinel

bench: install-dev
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Pin what the working virtualenv resolved (run after changing dependencies in pyproject.toml).
constraints:
	@{ echo "# Resolved versions used by 'make install' (pip install -c constraints.txt)."; \
	   echo "# Regenerate: make constraints. Audit: pip-audit -r constraints.txt (see docs/operators.md)."; \
	   $(PIP) freeze --exclude-editable | grep -v '^leaksentinel'; } > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The native extensions (scanner, fingerprints, search selectors and tokens) built with AddressSanitizer + UndefinedBehaviorSanitizer into a copy of the tree (the
# installed extension, which other processes may have loaded, is left alone), then the differential
# C-vs-Python tests run against it: any out-of-bounds access, use after free or undefined behaviour aborts.
SANITIZE_DIR ?= build/sanitize
SANITIZE_TESTS ?= tests/pipelines/test_pipelines_fastscan.py tests/pipelines/test_pipelines_fastscan_hygiene.py \
	tests/pipelines/test_pipelines_extract_variants.py tests/pipelines/test_pipelines_fastscan_stats.py \
	tests/pipelines/test_pipelines_fingerprint_native.py tests/pipelines/test_pipelines_fastscan_scripts.py \
	tests/pipelines/test_pipelines_lookalikes_native.py tests/pipelines/test_pipelines_normalize_native.py \
	tests/pipelines/test_pipelines_shared_fold.py tests/pipelines/test_pipelines_fastscan_speed.py \
	tests/core/test_core_search_native_selectors.py tests/core/test_core_search_native_tokens.py \
	tests/core/test_core_search_selector_index.py tests/pipelines/test_pipelines_candidate_segments.py \
	tests/core/test_core_search_rare_tokens.py tests/pipelines/test_pipelines_fastscan_types.py \
	tests/pipelines/test_pipelines_lower_native.py tests/pipelines/test_pipelines_speed_domain_lines.py \
	tests/pipelines/test_pipelines_speed_fold.py tests/pipelines/test_pipelines_scan_newlines.py \
	tests/pipelines/test_pipelines_find_native.py tests/pipelines/test_pipelines_utf8_size.py \
	tests/pipelines/test_pipelines_nfc_stable.py tests/pipelines/test_pipelines_phone_exact.py \
	tests/pipelines/test_pipelines_speed_documents.py
#: The C sources: each builds the module `_<name>` in the directory above its `_native/` (setup.py's NATIVE).
SANITIZE_NATIVE := pipelines/detection/_native/scanner.c pipelines/detection/_native/fingerprint.c \
	core/search/_native/selectors.c core/search/_native/tokens.c
.PHONY: sanitize
sanitize: install-dev
	rm -rf $(SANITIZE_DIR) && mkdir -p $(SANITIZE_DIR)
	cp -r core pipelines alerting crawlers leaksentinel tests bench pyproject.toml scrapy.cfg setup.py $(SANITIZE_DIR)/
	inc="$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"; \
	suffix="$$($(PY) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"; \
	for source in $(SANITIZE_NATIVE); do \
	  $(CC) -std=gnu11 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	    -Wall -Wextra -Werror -shared -fPIC -I"$$inc" "$$source" \
	    -o "$(SANITIZE_DIR)/$$(dirname "$$(dirname "$$source")")/_$$(basename "$$source" .c)$$suffix" || exit 1; \
	done
	cd $(SANITIZE_DIR) && LEAKSENTINEL_SANITIZE=1 LD_PRELOAD="$$($(CC) -print-file-name=libasan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 PYTHONPATH=. \
	  $(CURDIR)/$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) $(SANITIZE_TESTS)
