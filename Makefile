# Shortcuts for the scripts the README names.
.PHONY: run test bench deps
deps:
	bash scripts/deps.sh
run:
	bash scripts/run.sh
test:
	bash scripts/test.sh
bench:
	bash scripts/bench.sh
