# inferops: `make run` opens the console on the embedded default, `make test`
# runs every test. Both work on a fresh machine with Go installed.
SHELL := /bin/bash
GO ?= go
BIN := bin/inferops
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
# Packages whose tests run with the race detector (everything with goroutines).
RACE_PKGS ?= ./...

.PHONY: all build run test test-deps bench lint fmt vet clean fuzz chaos soak

all: lint build test

build: ## static binary, version stamped
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/inferops

run: build ## the console on the embedded default (broker + model server in-process)
	./$(BIN)

# Interop tests use real third-party clients from Debian (kcat = librdkafka).
# Installed here when missing and we are root (CI); otherwise they are named.
test-deps:
	@missing=""; command -v kcat >/dev/null || missing="$$missing kcat"; \
	command -v rpm >/dev/null || missing="$$missing rpm"; \
	/usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null || missing="$$missing python3-confluent-kafka"; \
	/usr/bin/python3 -c 'import requests' 2>/dev/null || missing="$$missing python3-requests"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing from Debian"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; \
	  else echo "note: missing$$missing (apt-get install$$missing); the interop tests that need them are skipped"; fi; \
	fi

test: test-deps ## every test; -race on the concurrent packages
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

# Native Go fuzzing: every Fuzz* target in the module, one after the other
# (go test allows one -fuzz target per run), FUZZTIME each. The seed corpora
# under testdata/fuzz/ already run in `make test`; a crash the fuzzer finds
# lands in testdata/fuzz/<Target>/ and becomes a regression test there.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$target ($$pkg, $(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -parallel $${FUZZPARALLEL:-2} $$pkg; \
	  done; \
	done

# The long fault scenarios of test/chaos on the built binary (more records
# and crashes, a 60 s model server outage); prints the reliability table.
chaos:
	$(GO) test -count=1 -timeout 60m -v -run . ./test/chaos -args -long | grep -v '^=== RUN'

# serve + a long-lived worker under demo traffic, with churn workers (1-4
# members, other model versions, SIGTERM/SIGKILL) and perf runs in a loop;
# prints RSS, threads, fds, goroutines and GC pause p99 at start, middle and
# end, and fails when they grow past test/chaos/soak_test.go's bounds.
DURATION ?= 30m
soak:
	$(GO) test -count=1 -timeout 0 -v -run '^TestSoak$$' ./test/chaos -args -soak $(DURATION) | grep -v '^=== RUN'

bench: ## prints the benchmark figures
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m ./...

lint: fmt vet
fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
vet:
	$(GO) vet ./...

clean:
	rm -rf bin dist

# --- proto (infer/tfpb): regenerate the TF Serving subset with pinned generators.
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
PROTO_DIR := infer/tfpb/proto
PROTO_FILES = $(shell cd $(PROTO_DIR) && find . -name '*.proto' | sed 's|^\./||' | sort)
PROTO_GOBIN := $(CURDIR)/bin/protogen
.PHONY: proto
proto: ## regenerate infer/tfpb from infer/tfpb/proto (needs protoc)
	GOBIN=$(PROTO_GOBIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(PROTO_GOBIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	rm -f infer/tfpb/*.pb.go
	# module= drops the import-path prefix, so every file lands flat in
	# infer/tfpb (one Go package for both proto packages).
	cd $(PROTO_DIR) && PATH=$(PROTO_GOBIN):$$PATH protoc -I . \
	  --go_out=$(CURDIR) --go_opt=module=github.com/inferops/inferops \
	  --go-grpc_out=$(CURDIR) --go-grpc_opt=module=github.com/inferops/inferops \
	  $(foreach f,$(PROTO_FILES),--go_opt=M$(f)=github.com/inferops/inferops/infer/tfpb --go-grpc_opt=M$(f)=github.com/inferops/inferops/infer/tfpb) \
	  $(PROTO_FILES)

.PHONY: screenshots
screenshots: build ## README screenshots from the real console (tmux capture-pane + freeze)
	./screenshots/capture.sh ./$(BIN)

# Packaging (issue 7): `make dist` (tarball), `make rpm` (nfpm via the Go
# module proxy, no install needed), `make install-check` (the README's RHEL 8
# install steps in a scratch root). Everything lands in dist/.
PKG_VERSION ?= $(or $(shell git describe --tags --abbrev=0 2>/dev/null | sed 's/^v//'),0.1.0)
PKG_RELEASE ?= 1
PKG_ARCH ?= amd64
PKG_BIN := dist/build/inferops
NFPM ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
RPM_ARCH := $(if $(filter amd64,$(PKG_ARCH)),x86_64,$(if $(filter arm64,$(PKG_ARCH)),aarch64,$(PKG_ARCH)))
RPM_FILE := dist/inferops-$(PKG_VERSION)-$(PKG_RELEASE).$(RPM_ARCH).rpm

.PHONY: pkg-bin dist rpm install-check
pkg-bin:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(PKG_ARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(PKG_BIN) ./cmd/inferops

dist: pkg-bin ## release tarball: static binary, README, default config, unit
	packaging/dist.sh $(PKG_BIN) $(PKG_VERSION) $(PKG_ARCH) dist

rpm: pkg-bin ## RPM for RHEL 8: /usr/bin/inferops, inferops-worker@.service, /etc/inferops/inferops.yaml, the inferops user
	PKG_VERSION=$(PKG_VERSION) PKG_RELEASE=$(PKG_RELEASE) PKG_ARCH=$(PKG_ARCH) \
	  $(NFPM) pkg --packager rpm --config packaging/nfpm.yaml --target $(RPM_FILE)
	@echo $(RPM_FILE)

install-check: rpm ## follow the README's install section in a scratch root
	packaging/install-check.sh $(RPM_FILE)
