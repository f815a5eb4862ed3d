# The two commands of README.md. Both work as root on a fresh Debian machine:
# they install what is missing, then build.
SWIFT ?= swift
APT_PACKAGES := libreadline-dev gcc make bpftrace linux-perf strace python3 bpftool libc6-dbg prometheus prometheus-pushgateway
BUILD_FLAGS := -c release --static-swift-stdlib
SCRY := .build/release/scry

.PHONY: run test deps build bench lint clean

run: deps build
	$(SCRY) examples/hello.trace

test: deps
	$(SWIFT) build --build-tests
	SCRY_BIN=$(CURDIR)/.build/debug/scry $(SWIFT) test --skip-build

build:
	$(SWIFT) build $(BUILD_FLAGS) --product scry

# Installs Debian packages only when one is missing, so a prepared machine starts at once.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

bench: deps build
	scripts/bench.sh

clean:
	rm -rf .build
