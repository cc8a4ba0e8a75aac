# Two entry points: `make demo` (train + evaluate on the bundled census data) and `make test`.
# Each creates the virtual environment on first use, with versions pinned by constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MTLREC := $(VENV)/bin/mtlrec
RUNS ?= runs/census
MODELS ?= single_task shared_bottom mmoe

.PHONY: venv demo test lint clean cascade-data

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,serve,report]"
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

test: venv
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs
