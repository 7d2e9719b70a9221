# chaosrunner - every target installs what it needs, idempotently.
# `make demo` on a fresh machine: installs what is missing, starts the sandbox
# and plays a whole gameday with a scripted team, then prints the debrief.
# `make test`: installs packages, starts the real services (dockerd,
# PostgreSQL, Prometheus, Alertmanager, Pushgateway, pgbouncer), checks style,
# types and architecture, then runs every test tier.

PYTHON ?= python3
PYTEST_ARGS ?=
STAMP := .make

.PHONY: install services browser services-stop cluster lint demo demo-down test test-unit test-integration test-e2e soak bench clean

# compat mode: a plain path entry instead of an import-hook finder, which cost
# ~25 ms on every start-up (bench/startup.py).
$(STAMP)/installed: pyproject.toml
	@mkdir -p $(STAMP)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]' --config-settings editable_mode=compat
	@touch $@

install: $(STAMP)/installed

services:
	scripts/services.sh start

# The report's browser test opens the HTML in headless Chromium.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null)

services-stop:
	scripts/services.sh stop

# The Kubernetes test cluster: built once from Debian's source package (about
# 12 minutes on 2 cores, cached outside the repository), started in seconds.
cluster: services
	scripts/kube-cluster.sh build
	scripts/kube-cluster.sh start

demo: install
	scripts/services.sh start postgres prometheus alertmanager pushgateway
	chaosrunner demo

demo-down:
	chaosrunner demo --down

lint: install
	ruff check chaosrunner tests bench
	ruff format --check chaosrunner tests bench
	mypy
	lint-imports
	chaosrunner validate scenarios abort_conditions schedules

test-unit: install
	$(PYTHON) -m pytest -m unit $(PYTEST_ARGS)

test-integration: install services
	$(PYTHON) -m pytest -m integration $(PYTEST_ARGS)

test-e2e: install services cluster browser
	$(PYTHON) -m pytest -m e2e $(PYTEST_ARGS)

test: install services cluster browser lint
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# The integration tier SOAK_RUNS times while two CPU burners run; a table of
# passes and failures per test at the end, exit 1 if anything failed once.
SOAK_RUNS ?= 10
SOAK_ARGS ?= -m integration
soak: install services
	SOAK_RUNS='$(SOAK_RUNS)' SOAK_ARGS='$(SOAK_ARGS)' $(PYTHON) scripts/soak.py

bench: install services
	$(PYTHON) bench/startup.py
	$(PYTHON) bench/report_speed.py
	$(PYTHON) bench/unit_timings.py
	cd bench && $(PYTHON) abort_reaction.py
	cd bench && $(PYTHON) fail_closed.py
	cd bench && $(PYTHON) kill9_recover.py
	cd bench && $(PYTHON) measurement_error.py
	$(MAKE) browser && cd bench && $(PYTHON) console_load.py
	$(MAKE) cluster
	eval "$$(scripts/kube-cluster.sh env)" && $(PYTHON) bench/k8s_pod_kill.py
	@# A missed scale target prints its figure and exits 1; the other benches still count.
	-eval "$$(scripts/kube-cluster.sh env)" && $(PYTHON) bench/k8s_scale.py

clean:
	rm -rf $(STAMP) .pytest_cache .mypy_cache .ruff_cache .hypothesis
