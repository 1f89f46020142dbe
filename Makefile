# algate: the two entry points of the README, and a few more.
SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: demo test fuzz build release bench bench-engine bench-transfer bench-sip bench-lab bench-pinholes deps clean

## demo: install what is missing, build, run algate on Config/algate.toml in front of a local FTP server and
## transfer a file through it in passive and active mode, printing the rewritten lines and the pinholes.
demo: deps build
	Scripts/demo

## test: install what is missing, build, run the whole test suite (unit, handler, integration with real peers).
## Serially: the integration suites start real servers, phones and registrars, and on a 2-core machine running
## them side by side only makes readiness a matter of luck.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

## fuzz: build the libFuzzer harnesses of Fuzz/ (ASan) and run each for FUZZ_SECONDS on seeds from Fixtures/ and
## ../shared/corpus; one line per harness, `NAME: N execs, K crashes`; fails on any finding (Fuzz/README.md).
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) Scripts/fuzz

deps:
	Scripts/install-deps

build:
	$(SWIFT) build --product algate

release:
	$(SWIFT) build -c release --product algate

bench: bench-engine bench-transfer bench-sip bench-lab bench-pinholes

bench-engine: deps
	Scripts/bench-engine

bench-transfer: deps
	Scripts/bench-transfer

bench-sip: deps
	Scripts/bench-sip

## bench-lab: a 1 GiB FTP download across the NAT lab (needs root): routed, kernel helper, algate userspace, nftables.
bench-lab: deps
	Scripts/bench-lab

## bench-pinholes: pinhole set-up latency and 10,000 open pinholes, both backends, in a namespace (needs root).
bench-pinholes: deps
	Scripts/bench-pinholes

clean:
	rm -rf .build Benchmarks/.build Fuzz/.build .build-fuzz
