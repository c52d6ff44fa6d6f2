# NeRF Atlas: `make demo` trains and renders the demo scene; `make test` runs the suite.
# Both create .venv and install everything first (torch 2.13.0 CPU wheel before the rest).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
PUBLISHED := $(filter-out plugins/_template/,$(PLUGINS))
STAMP := $(VENV)/.installed

.PHONY: install demo test test-cluster test-browser lint dist clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,viewer,sfm]" $(foreach p,$(PLUGINS),-e ./$(p))
	$(BIN)/pip install --quiet -e ".[postgres]" || echo "psycopg unavailable: PostgreSQL sweep test will skip"
	@echo "building the C++ CPU kernels (about 2 min once; without a compiler PyTorch code runs)"
	$(BIN)/python -c "from atlas_core.nerf import native; native.grid_ops()"
	$(BIN)/python -c "from atlas_plugin_ngp import fused; fused.extension()"
	$(BIN)/python -c "from atlas_plugin_dnerf import plane_product; plane_product.extension()"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	rm -rf outputs/demo outputs/demo-scene
	$(BIN)/atlas data synth outputs/demo-scene --size 64
	$(BIN)/atlas run --config configs/demo.toml --data outputs/demo-scene --out outputs/demo
	@echo "demo: outputs/demo/metrics.json, outputs/demo/video.mp4"

test: $(STAMP)
	WANDB_MODE=disabled OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q -m "not cluster"

# Several sweep processes on one PostgreSQL study, and hosts in network namespaces
# (root only; skipped with a message elsewhere): a few minutes, so apart from `test`.
test-cluster: $(STAMP)
	WANDB_MODE=disabled OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q -m cluster -rs

# The viewer page and the reports in headless Chromium (Debian's package, installed here
# when missing; `make test` skips these tests without it). ATLAS_SCREENSHOTS=DIR keeps the PNGs.
test-browser: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	WANDB_MODE=disabled OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q -m browser -rs

# Wheels of the core and every plugin (not the template) into dist/, for
# `pip install --find-links dist atlas-plugin-NAME` or a release.
dist: $(STAMP)
	rm -rf dist build $(addsuffix build,$(PUBLISHED))
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist . $(PUBLISHED)
	@ls dist

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) outputs dist
