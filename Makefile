# The two commands of README.md. Both work as root on a fresh Debian machine:
# they install what is missing, then build.
SWIFT ?= swift
APT_PACKAGES := libreadline-dev gcc make bpftrace linux-perf strace python3 bpftool libc6-dbg man-db systemtap-sdt-dev \
  linux-headers-amd64 prometheus prometheus-pushgateway
BUILD_FLAGS := -c release --static-swift-stdlib
SCRY := .build/release/scry

.PHONY: run test deps build bench lint clean install uninstall

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

# The binary, the man page made from its --help, and shell completions, under $(DESTDIR)$(PREFIX).
PREFIX ?= /usr/local
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
SHAREDIR = $(DESTDIR)$(PREFIX)/share

install: build
	install -d $(BINDIR) $(MANDIR) $(SHAREDIR)/bash-completion/completions $(SHAREDIR)/zsh/site-functions \
	  $(SHAREDIR)/fish/vendor_completions.d
	install -m 755 $(SCRY) $(BINDIR)/scry
	python3 scripts/manpage.py $(SCRY) > $(MANDIR)/scry.1
	$(SCRY) --generate-completion-script bash > $(SHAREDIR)/bash-completion/completions/scry
	$(SCRY) --generate-completion-script zsh > $(SHAREDIR)/zsh/site-functions/_scry
	$(SCRY) --generate-completion-script fish > $(SHAREDIR)/fish/vendor_completions.d/scry.fish

uninstall:
	rm -f $(BINDIR)/scry $(MANDIR)/scry.1 $(SHAREDIR)/bash-completion/completions/scry \
	  $(SHAREDIR)/zsh/site-functions/_scry $(SHAREDIR)/fish/vendor_completions.d/scry.fish

bench: deps build
	scripts/bench.sh

clean:
	rm -rf .build
