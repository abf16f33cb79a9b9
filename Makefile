# drsearch: `make demo` (build + search + serve on the embedded default) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= $(or $(DRSEARCH_DATA),$(abspath ../shared/data))
CORPUS ?= $(DATA)/scifact
INDEX ?= indexes/demo
PORT ?= 8000
# Re-install only when the dependency pins change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | sha1sum | cut -c1-10)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DRSEARCH_DATA := $(DATA)

.PHONY: install browser demo test bench serve clean lucene-helper

install: $(STAMP)

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# CPU torch first: anything asking for plain `torch` before it pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	@# The JVM's class-data-sharing archive (backends/lucene/class_archive.py): each JVM then starts ~0.3 s sooner.
	-$(BIN)/python -m backends.lucene.class_archive
	@rm -f $(VENV)/.installed-* && touch $@

# Debian's chromium for the search page tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else echo "chromium is missing: the search page tests are skipped (as root, make browser installs it)"; fi; }

demo: install
	@if $(BIN)/drsearch index info $(INDEX) >/dev/null 2>&1; then \
	  echo "index $(INDEX) exists (rebuild: rm -r $(INDEX))"; \
	else \
	  $(BIN)/drsearch index build --corpus $(CORPUS) --out $(INDEX); \
	fi
	$(BIN)/drsearch search "coronary heart disease risk from smoking" --index $(INDEX) -k 3
	$(BIN)/drsearch search "vitamin D deficiency and bone fractures" --index $(INDEX) -k 3 --mode bm25
	$(BIN)/drsearch search "gene expression in cancer cells" --index $(INDEX) -k 3 --mode dense
	@echo
	@echo "Starting the search API on http://127.0.0.1:$(PORT) (Ctrl-C stops it); the search page is http://127.0.0.1:$(PORT)/ . Try:"
	@echo "  curl -s -X POST http://127.0.0.1:$(PORT)/v1/search -H 'content-type: application/json' -d '{\"queries\": [\"smoking and heart disease\"], \"k\": 3}'"
	$(BIN)/drsearch serve --index $(INDEX) --host 127.0.0.1 --port $(PORT)

test: install browser
	$(BIN)/python -m pytest -q --durations=15

bench: install
	$(BIN)/python bench/run_all.py

# The Lucene helper jar is committed (users need no JDK); rebuild it after editing its source (needs javac).
LUCENE_HELPER := backends/lucene/drsearch-lucene.jar
lucene-helper: install
	rm -rf build/lucene-helper && mkdir -p build/lucene-helper
	javac --release 11 -Xlint:all -cp "$$($(BIN)/python -c 'from backends.lucene.jvm import anserini_jar; print(anserini_jar())')" \
	  -d build/lucene-helper backends/lucene/java/drsearch/*.java
	cd build/lucene-helper && $(abspath $(BIN))/python -m zipfile -c $(abspath $(LUCENE_HELPER)) drsearch

clean:
	rm -rf $(VENV) indexes .pytest_cache
