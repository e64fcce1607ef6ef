# cowmap: `make verify` is the main job, `make test` the test suite.
# Both install what they need first.

SHELL := /bin/bash
NODE_TEST := node --import tsx --test --test-reporter=spec
TEST_FILES = $(shell find model impl harness bin traces -name '*.test.ts' | sort)
STAMP := node_modules/.installed

.PHONY: all install typecheck test verify explore-smoke clean

all: test

# npm ci only when the lock file is newer than what is installed.
$(STAMP): package-lock.json
	npm ci --no-audit --no-fund
	touch $(STAMP)

install: $(STAMP)

typecheck: $(STAMP)
	npx tsc --noEmit

test: $(STAMP) typecheck
	$(NODE_TEST) $(TEST_FILES)
	python3 -m unittest discover -s examples/python-adapter

# The main job: every trace on the model and the exhaustive explorer with crashes.
verify: test
	node bin/cowmap.js replay --model-only traces/*.jsonl
	node bin/cowmap.js explore --regions 3 --values 2 --crash
	node bin/cowmap.js explore --regions 4 --values 2 --crash

clean:
	rm -rf coverage reports .tmp
