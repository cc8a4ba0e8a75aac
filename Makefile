# Entry points: `make demo` (train + evaluate on the bundled census data), `make test` and `make docs`.
# Each creates the virtual environment on first use, with versions pinned by constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MTLREC := $(VENV)/bin/mtlrec
RUNS ?= runs/census
MODELS ?= single_task shared_bottom mmoe
# the documentation site (mkdocs.yml) into site/; --strict: any warning fails (the banners are not warnings)
MKDOCS_BUILD := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict --site-dir site

.PHONY: venv docs-venv demo test docs lint clean cascade-data

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,serve,report,tune]"
	touch $@

# the docs extra on top (mkdocs, Material, mkdocstrings, gen-files)
docs-venv: $(VENV)/.docs-installed

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,serve,report,tune,docs]"
	touch $@

demo: venv
	@for model in $(MODELS); do \
		$(MTLREC) train configs/census/$$model.yaml --output $(RUNS)/$$model --overwrite || exit 1; \
	done
	$(MTLREC) summarize $(addprefix $(RUNS)/,$(MODELS)) --split test --metric auc --output $(RUNS)/summary

# the synthetic funnel used by configs/cascade/*.yaml (deterministic)
cascade-data: venv
	$(MTLREC) data synth-cascade --rows 500000 --seed 7 --stages click,conversion,purchase \
		--rates 0.1,0.2,0.3 --output data/synth-cascade/cascade.parquet

# the tests, then the docs build (strict: a docstring griffe cannot parse or a broken link fails CI)
test: venv docs-venv
	$(PY) -m pytest -q
	$(MKDOCS_BUILD) --quiet

docs: docs-venv
	$(MKDOCS_BUILD)

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs site
