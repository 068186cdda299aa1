# Everything a fresh Debian machine needs, then the two jobs the README names:
#   make predict   read the example images with the bundled model
#   make test      run the test suite
# Set-up runs once (stamps in .ci/stamps/); apt needs root (or SUDO=sudo).

PYTHON ?= python3
SUDO ?=
STAMPS := .ci/stamps
TEX_PACKAGES := texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended \
	texlive-science preview-latex-style dvipng lmodern ghostscript
BROWSER_PACKAGES := chromium chromium-driver  # for the browser test of the app

.PHONY: install predict test lint benchmark app

install: $(STAMPS)/apt $(STAMPS)/pip

$(STAMPS)/apt:
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(TEX_PACKAGES)
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $(BROWSER_PACKAGES)
	mkdir -p $(STAMPS) && touch $@

$(STAMPS)/pip: setup.py requirements.txt
	$(PYTHON) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PYTHON) -m pip install -e '.[dev]'
	mkdir -p $(STAMPS) && touch $@

predict: install
	im2latex predict --with-names --verify examples/*.png

test: install
	$(PYTHON) -m pytest -q

lint: install
	ruff check . && ruff format --check .

benchmark: install
	$(PYTHON) scripts/benchmark.py

app: install
	$(PYTHON) app.py
