# cowmap: `make verify` is the main job, `make test` the test suite.
# Both install what they need first.

SHELL := /bin/bash
TEST_FILES = $(shell find model impl harness bin bench traces -name '*.test.ts' | sort)
STAMP := node_modules/.installed
# Three test files at a time: most of them wait on child processes (adapters, the CLI, NBD servers).
NODE_TEST := node --import tsx --test --test-concurrency=3 --test-reporter=spec
# The node tests with a long budget read COWMAP_TEST_LEVEL (harness/testLevel.ts, the one
# place): make test runs them at the quick level, make verify again at the full one.
FULL_LEVEL_TEST_FILES = $(shell grep -l "testLevel.ts'" $(TEST_FILES))
# Code coverage of the model and the reference implementation, with the thresholds
# that `make test` (and so CI) and `make coverage` enforce.
C8 := npx c8 --include 'model/**' --include 'impl/**' --exclude '**/*.test.ts' \
	--check-coverage --lines 95 --branches 90 --report-dir coverage

.PHONY: all install lint format typecheck test test-node verify mutants coverage bench clean $(SMOKE)

all: test

# npm ci only when the lock file is newer than what is installed.
$(STAMP): package-lock.json
	npm ci --no-audit --no-fund
	touch $(STAMP)

install: $(STAMP)

typecheck: $(STAMP)
	npx tsc --noEmit

# Biome (biome.jsonc): the formatter and the linter. `make test` checks; `make format` fixes.
# The formatter wraps code at 120 columns but not strings and comments: no source line
# may pass 160 (wrap it by hand).
SOURCE_DIRS := model impl harness bin bench examples traces
lint: $(STAMP)
	npx biome check .
	@if grep -rnE '^.{161,}' --include='*.ts' --include='*.js' --include='*.py' $(SOURCE_DIRS); then \
		echo 'lint: the lines above pass 160 characters'; exit 1; fi

format: $(STAMP)
	npx biome check --write .

# Every test under coverage and, beside it (the output of each kept whole), a small
# budget of the conformance suite against the skeleton adapter (rules and crash).
# The main job's own run (`cowmap verify`, whose stages the node tests run one by
# one) and the mutation self-check's crash exploration net (a minute and a half of
# CPU: each mutant explored until caught) are make verify's, which runs both at
# full budget; the full table is `make mutants`. In make test the mutants' own node
# tests (harness/mutants/, harness/exploration/mutantsCaught.test.ts) run. The reference adapter's own conformance, and
# conform failing mutants, are node tests (harness/conformance/conformance.test.ts);
# the Python example's adapter is driven by node tests too, and its own conform run
# (every level it offers) is make verify's (make test's 5 minutes).
SMOKE := smoke-conform-skeleton

# The tests' temporary files go to a RAM file system when one has room (2 GiB):
# what they check of durability the crash layer simulates, and a disk's fsyncs
# only cost time (about a tenth of make test's). Elsewhere they stay in TMPDIR.
RAM_TMPDIR := $(shell df --output=avail -k /dev/shm 2>/dev/null | awk 'NR == 2 && $$1 > 2097152 { print "/dev/shm" }')

# Three jobs at a time: the node tests spend much of their time waiting on children.
# The lint and the type check run beside the tests: each keeps one core busy for a few
# seconds that the tests would otherwise wait for.
test: $(STAMP)
	$(if $(RAM_TMPDIR),TMPDIR=$(RAM_TMPDIR)) $(MAKE) --no-print-directory -j3 --output-sync=target lint typecheck test-node $(SMOKE)

test-node: $(STAMP)
	$(C8) --reporter text-summary $(NODE_TEST) $(TEST_FILES)

smoke-verify: $(STAMP)
	node bin/cowmap.js verify --quick --time-budget 5 --seed 1 --reports coverage/transitions
smoke-mutants: $(STAMP)
	node bin/cowmap.js mutants --quick --time-budget 3 --stages crashes
smoke-conform-python: $(STAMP)
	node bin/cowmap.js conform --quick --time-budget 4 --seed 1 --out-dir coverage/failures -- python3 examples/python-adapter/adapter.py
smoke-conform-skeleton: $(STAMP)
	node bin/cowmap.js conform --quick --up-to crash --time-budget 4 --seed 1 --out-dir coverage/failures -- python3 examples/skeleton-adapter/adapter.py

# The main job: every stage at full budget, the mutation self-check, the exhaustive
# explorer (three regions with every crash outcome inside every operation followed,
# 457,040 states; four regions without crashes, 1,192,482: four with crash outcomes
# is tens of millions of states; two regions with three values, crashes and the far side's
# consistent image D, 81,711), then the node tests that have a long budget at their full
# level (COWMAP_TEST_LEVEL=full; make test runs them quick).
verify: $(STAMP) lint typecheck
	node bin/cowmap.js verify --time-budget 60
	node bin/cowmap.js explore --regions 3 --values 2 --crash
	node bin/cowmap.js explore --regions 4 --values 2
	node bin/cowmap.js explore --regions 2 --values 3 --crash --consistent
	node bin/cowmap.js crashes
	node bin/cowmap.js mutants --quick --time-budget 3 --stages fuzz,crashes
	python3 -m unittest discover -s examples/python-adapter
	$(MAKE) --no-print-directory smoke-conform-python
	COWMAP_TEST_LEVEL=full $(NODE_TEST) $(FULL_LEVEL_TEST_FILES)

mutants: $(STAMP)
	node bin/cowmap.js mutants --quick --time-budget 30

coverage: $(STAMP)
	$(C8) --reporter text --reporter html --reporter json-summary $(NODE_TEST) $(TEST_FILES)

# Benchmarks as ratios against baselines measured in the same run (bench/run.ts);
# writes bench/results.json and bench/RESULTS.md. Fails only on a wrong result.
bench: $(STAMP)
	node --import tsx bench/run.ts

clean:
	rm -rf coverage reports .tmp traces/failures
