# sluice: `make demo` runs the pipeline locally, `make test` checks everything.
# Both install what they need into the project (.venv) and start local services themselves.

SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed
PYTHON ?= python3
CARGO ?= cargo

.PHONY: all test demo venv fmt lint unit clean build infra-venv infra-lint infra-test

all: test

$(STAMP): requirements-dev.txt
	@echo "installing the local stack's Python tools (moto, DuckDB, pyarrow) into $(VENV): about a minute, once"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## venv: the project's Python environment (moto server for the local AWS API)
venv: $(STAMP)

## test: formatting, lints and every test (unit, adapter, integration against local services)
test: venv
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked
	$(MAKE) --no-print-directory infra-test

## unit: formatting, lints, unit tests and the house rules; needs no venv and starts no service
unit:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked --lib --bins --exclude sluice-tests
	$(CARGO) test --locked -p sluice-tests --test tidy

## demo: the pipeline end to end on the local stack (N=20000 events by default)
demo: venv
	@echo "building the demo and the sluice CLI: the first build compiles the AWS SDK and takes 5-10 minutes on 2 cores; later runs start in seconds"
	$(CARGO) build --locked -p sluice-local -p sluice-cli --bins
	$(CARGO) run --quiet --locked -p sluice-local --bin sluice-demo

## fmt: format the code
fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV) infra/.venv infra/cdk/node_modules

# ---------------------------------------------------------------------------------------------
# Infrastructure: release Lambda zips, the SAM template and the CDK app (infra/README.md).
# The tools live in infra/.venv (cargo-lambda + zig, aws-sam-cli, cfn-lint: requirements-infra.txt)
# and infra/cdk/node_modules (package-lock.json), apart from .venv because aws-sam-cli pins
# boto3/botocore/click/pydantic versions other than moto's.

INFRA_VENV := infra/.venv
INFRA_STAMP := $(INFRA_VENV)/.installed
CDK_DIR := infra/cdk
CDK_STAMP := $(CDK_DIR)/node_modules/.installed
LAMBDA_FUNCTIONS := kinesis-ingest s3-transform glue-catalog failure-notifier http-collector
LAMBDA_TARGET := aarch64-unknown-linux-gnu
# cargo-lambda finds zig only when its venv's bin/ comes first on PATH.
INFRA_ENV := PATH="$(CURDIR)/$(INFRA_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 CDK_DISABLE_VERSION_CHECK=1

$(INFRA_STAMP): requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $(INFRA_STAMP)

## infra-venv: cargo-lambda, aws-sam-cli and cfn-lint, pinned, in infra/.venv
infra-venv: $(INFRA_STAMP)

$(CDK_STAMP): $(CDK_DIR)/package.json $(CDK_DIR)/package-lock.json
	cd $(CDK_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(CDK_STAMP)

## build: release arm64 zips of the five functions in target/lambda/<fn>/bootstrap.zip.
## Each function is built from its own crate directory with `--bin <fn>`, exactly as `sam build`
## (BuildMethod: rust-cargolambda) does, so cargo resolves the same features and `sam build`
## afterwards reuses these artifacts instead of compiling again.
build: $(INFRA_STAMP)
	@rustup target list --installed | grep -qx $(LAMBDA_TARGET) || rustup target add $(LAMBDA_TARGET)
	@start=$$SECONDS; for fn in $(LAMBDA_FUNCTIONS); do \
	  echo "==> cargo lambda build --release --arm64 --output-format zip --bin $$fn (functions/$$fn)"; \
	  ( cd functions/$$fn && $(INFRA_ENV) cargo lambda build --release --arm64 --output-format zip --bin $$fn --locked ) || exit 1; \
	done; \
	echo "build: $$((SECONDS - start)) s"; \
	for fn in $(LAMBDA_FUNCTIONS); do \
	  zip=target/lambda/$$fn/bootstrap.zip; \
	  test -f $$zip || { echo "missing $$zip"; exit 1; }; \
	  printf '%-18s %8.2f MiB  %s\n' $$fn $$(awk "BEGIN{print $$(stat -c %s $$zip)/1048576}") $$zip; \
	done

## infra-lint: template checks that need no Rust build: cfn-lint + `sam validate --lint` on the
## SAM template, the CDK assertion + cdk-nag tests, cfn-lint on the CDK synth output (with
## placeholder code), and the SAM <-> CDK comparison
infra-lint: $(INFRA_STAMP) $(CDK_STAMP)
	$(INFRA_ENV) $(INFRA_VENV)/bin/cfn-lint infra/sam/template.yaml
	cd infra/sam && $(INFRA_ENV) sam validate --lint --template-file template.yaml
	cd $(CDK_DIR) && npm test
	@assets=$$(mktemp -d) && for fn in $(LAMBDA_FUNCTIONS); do mkdir -p $$assets/$$fn && echo placeholder > $$assets/$$fn/bootstrap.zip; done && \
	  echo "cdk synth (placeholder code in $$assets)" && \
	  ( cd $(CDK_DIR) && $(INFRA_ENV) npx cdk synth --quiet -o cdk.out.lint -c sluice:assetDir=$$assets ) && rm -rf $$assets
	@# W3005: CDK adds DependsOn on a role it also GetAtts (redundant, harmless).
	$(INFRA_ENV) $(INFRA_VENV)/bin/cfn-lint --ignore-checks W3005 -- $(CDK_DIR)/cdk.out.lint/Sluice.template.json
	$(INFRA_VENV)/bin/python scripts/compare_stacks.py infra/sam/template.yaml $(CDK_DIR)/cdk.out.lint/Sluice.template.json

## infra-test: infra-lint, then `make build`, `sam build` (reusing that build) and `cdk synth`
## on the real zips
infra-test: infra-lint build
	@start=$$SECONDS; cd infra/sam && $(INFRA_ENV) sam build --template-file template.yaml --build-dir .aws-sam/build && \
	  echo "sam build: $$((SECONDS - start)) s (reusing the release build in target/)" && \
	  for fn in KinesisIngestFunction S3TransformFunction GlueCatalogFunction FailureNotifierFunction HttpCollectorFunction; do \
	    test -x .aws-sam/build/$$fn/bootstrap || { echo "sam build left no $$fn/bootstrap"; exit 1; }; done
	cd $(CDK_DIR) && $(INFRA_ENV) npx cdk synth --quiet
	@echo "infra-test: ok"

## bench: release build, then every benchmark figure measured in one run: prints the table and
## writes BENCHMARKS.md (bench/run.sh; criterion micro-benchmarks: cargo bench -p sluice-bench)
.PHONY: bench
bench: venv
	BENCH_COMMAND="make bench" CARGO="$(CARGO)" bash bench/run.sh

## soak: the fault-injection soak test at full size (tests/soak.rs): SLUICE_SOAK_RECORDS records
## (default 1 000 000; `make test` runs 20 000) through kinesis-ingest and s3-transform with the
## fault proxy in front of S3 and PostgreSQL, then a record-by-record reconciliation
.PHONY: soak
soak: venv
	SLUICE_SOAK_RECORDS=$${SLUICE_SOAK_RECORDS:-1000000} $(CARGO) test --locked -p sluice-tests --test soak -- --nocapture

## fuzz: cargo-fuzz on the record decoder (KPL), the object readers, S3 key decoding, config and filter
## parsing, FUZZ_SECONDS (default 300) per target; installs cargo-fuzz if missing. Targets and
## notes: fuzz/README.md. Stable toolchain: RUSTC_BOOTSTRAP=1 enables the nightly flags it needs.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS := record read_object keys config filter collector
.PHONY: fuzz
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@cd fuzz && mkdir -p target && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t && cp -n seeds/$$t/* corpus/$$t/ 2>/dev/null; \
	  echo "==> cargo fuzz run $$t ($(FUZZ_SECONDS) s)"; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s none $$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 2>&1 | \
	    tee target/fuzz-$$t.log | grep -E 'Done|stat::number_of_executed_units|ERROR|panicked' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

## invoke: one function through `cargo lambda watch` + `cargo lambda invoke` against the seeded
## local stack, e.g. `make invoke FN=s3-transform EVENT=events/s3-put-csv.json`
.PHONY: invoke
invoke: venv $(INFRA_STAMP)
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=events/<file>"; exit 2; }
	$(INFRA_ENV) scripts/invoke.sh "$(FN)" "$(EVENT)"
