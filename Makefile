# ReviewSense: `make demo` (the main job on the local cloud) and `make test`, each from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= ../shared/data/womens_clothing_ecommerce_reviews.csv.gz

.PHONY: install demo test check lint typecheck unit functional localcloud training test-slow test-random \
        local-up local-down local-status bench-ingest bench-ingest-memory bench-put-latency bench-event-sources bench-feedback bench-serve featurize train-linear train-demo train-best \
        bench-train install-mpnet train-best-gpu train-teacher train-serving bench-model clean

$(STAMP): requirements.txt requirements-dev.txt requirements-training.txt training/requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.2.1  # chalice 1.34.0 requires pip<26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -r requirements-training.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip freeze --exclude-editable > $(VENV)/versions.txt
	touch $(STAMP)

install: $(STAMP)

## The main job: start the local cloud if needed, ingest the dataset, summarise the lake.
demo: install
	$(BIN)/reviewsense demo --data $(DATA) $(DEMO_ARGS)

## Everything CI runs: lint, types, the packaged template's checks, then the default test suite (slow tests excluded).
test: install check check-template
	$(BIN)/python -m pytest

check: lint typecheck

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit functional localcloud training: install
	$(BIN)/python -m pytest tests/$@

test-slow: install
	$(BIN)/python -m pytest -m slow

## The default suite in random order: modules shuffled, and the tests inside each (a module's local cloud
## starts once). pytest prints the seed in its header; `make test-random SEED=N` replays that order.
test-random: install
	$(BIN)/python -m pytest -p random_order --random-order-bucket=module $(if $(SEED),--random-order-seed=$(SEED))

local-up: install
	$(BIN)/reviewsense local up

local-down local-status: install
	$(BIN)/reviewsense local $(subst local-,,$@)

bench-ingest: install
	$(BIN)/python -m reviewsense.bench_ingest --data $(DATA)

## Peak memory of one ingest: the dataset, and a gzip bomb stopped at the size limit.
bench-ingest-memory: install
	$(BIN)/python -m reviewsense.bench_ingest_memory --data $(DATA)

## PutObject latency on the local cloud with and without the write-through S3 journal.
bench-put-latency: install
	$(BIN)/python -m reviewsense.bench_put_latency

## SendMessage -> on_sqs_message handler and signed POST -> IAM route latency on the local cloud.
bench-event-sources: install
	$(BIN)/python -m reviewsense.bench_event_sources --messages 200

## Feedback fan-in: message -> alert latency (200 messages) and 10,000 mixed-channel messages accounted for.
bench-feedback: install
	$(BIN)/python -m reviewsense.bench_feedback --latency-messages 200 --messages 10000

## One review through boto3 invoke_endpoint against `reviewsense serve` (MODEL=... for another artifact).
bench-serve: install
	$(BIN)/python -m reviewsense.bench_serve --data $(DATA) --requests 1000 $(if $(MODEL),--model $(MODEL)) $(BENCH_ARGS)

## Batch scoring of the full shared dataset: `reviewsense score --batch --model` in process, and the same rows as a
## transform job on an in-process local cloud (MODEL=... for another artifact; default the tiny linear model).
.PHONY: bench-batch
bench-batch: install
	$(BIN)/python -m reviewsense.bench_batch --data $(DATA) --local-cloud $(if $(MODEL),--model $(MODEL))

## The larger offline encoder of the best configuration (about 400 MB; not needed by tests or the demo).
install-mpnet: install
	$(BIN)/python -m pip install --quiet -r requirements-mpnet.txt

## Model work on the shared dataset, outside the pipeline (see docs/model.md for the numbers).
FEATURES := .artifacts/features
featurize: install
	$(BIN)/python -m training.featurize --input $(DATA) --output-dir $(FEATURES)

train-linear: featurize
	$(BIN)/python -m training.baselines --model-dir .artifacts/runs/linear/model --output-data-dir .artifacts/runs/linear/output

train-demo: featurize
	$(BIN)/python -m training.train --max-steps 250 --model-dir .artifacts/runs/demo/model --output-data-dir .artifacts/runs/demo/output

## The best CPU configuration (docs/model.md): MPNet-base (1 epoch) + MiniLM (2 epochs) + TF-IDF, mixed with
## weights tuned on validation. About 100 minutes on 2 cores; each step's model directory is kept under $(RUNS).
RUNS := .artifacts/runs
train-best: featurize install-mpnet
	$(BIN)/python -m training.train --model-name-or-path packaged:all-mpnet-base-v2 --epochs 1 --max-steps 0 \
	    --batch-size 16 --learning-rate 3e-5 --class-weighting none --seed 7 --eval-steps 510 \
	    --early-stopping-patience 0 --model-dir $(RUNS)/mpnet/model --output-data-dir $(RUNS)/mpnet/output
	$(BIN)/python -m training.train --epochs 2 --max-steps 0 --learning-rate 5e-5 --class-weighting none --seed 11 \
	    --model-dir $(RUNS)/minilm/model --output-data-dir $(RUNS)/minilm/output
	$(BIN)/python -m training.baselines --model-dir $(RUNS)/linear/model --output-data-dir $(RUNS)/linear/output
	$(BIN)/python -m training.ensemble --models $(RUNS)/mpnet/model,$(RUNS)/minilm/model,$(RUNS)/linear/model \
	    --score-cache .artifacts/scores --model-dir $(RUNS)/best/model --output-data-dir $(RUNS)/best/output

## The best configuration (docs/model.md): two MPNet-base recipes (3 epochs, 3 labels; 2 epochs, 5-star head)
## + the 1-epoch MPNet of train-best + TF-IDF. Minutes on a GPU (--device auto); about 5 hours on 2 CPU cores.
train-best-gpu: train-best
	$(BIN)/python -m training.train --model-name-or-path packaged:all-mpnet-base-v2 --epochs 3 --max-steps 0 \
	    --batch-size 16 --learning-rate 2e-5 --class-weighting none --seed 42 --eval-steps 340 \
	    --early-stopping-patience 0 --model-dir $(RUNS)/mpnet3/model --output-data-dir $(RUNS)/mpnet3/output
	$(BIN)/python -m training.train --model-name-or-path packaged:all-mpnet-base-v2 --epochs 2 --max-steps 0 \
	    --batch-size 32 --learning-rate 3e-5 --class-weighting none --seed 23 --eval-steps 170 --target rating \
	    --early-stopping-patience 0 --model-dir $(RUNS)/mpnet5star/model --output-data-dir $(RUNS)/mpnet5star/output
	$(BIN)/python -m training.ensemble \
	    --models $(RUNS)/mpnet3/model,$(RUNS)/mpnet5star/model,$(RUNS)/mpnet/model,$(RUNS)/linear/model \
	    --score-cache .artifacts/scores --model-dir $(RUNS)/best-gpu/model --output-data-dir $(RUNS)/best-gpu/output

## The teacher of the served model: MiniLM-L6 with a 5-star head, 2 epochs (+ the TF-IDF model mixed in), the
## best configuration 2 CPU cores rebuild in about 35 minutes; its probabilities on every split are written to
## training/teacher/ (committed: the student needs only that file). TEACHER_MODELS=dir1,dir2 for another ensemble.
TEACHER_MODELS ?= $(RUNS)/teacher/model
train-teacher: featurize
	$(if $(filter $(RUNS)/teacher/model,$(TEACHER_MODELS)),$(BIN)/python -m training.train --epochs 2 --max-steps 0 \
	    --learning-rate 5e-5 --class-weighting none --seed 7 --target rating \
	    --model-dir $(RUNS)/teacher/model --output-data-dir $(RUNS)/teacher/output)
	$(BIN)/python -m training.teacher --models $(TEACHER_MODELS) --features $(FEATURES) \
	    --recipe "make train-teacher TEACHER_MODELS=$(TEACHER_MODELS)"

## The served model, from the repository alone: a small student distilled from the committed teacher file,
## exported to ONNX and quantised to int8 at packaging time, then its quality report (teacher, student fp32,
## int8 on the test split). STUDENT_LAYERS=6 for the full MiniLM-L6.
SERVING := .artifacts/serving
STUDENT_LAYERS ?= 3
STUDENT_ARGS := --teacher-probabilities packaged --distill-alpha 0.5 --distill-temperature 2 --epochs 2 \
    --max-steps 0 --learning-rate 5e-5 --class-weighting none --seed 11 --num-hidden-layers $(STUDENT_LAYERS)
train-serving: featurize
	$(BIN)/python -m training.train $(STUDENT_ARGS) --model-dir $(SERVING)/model --output-data-dir $(SERVING)/output
	$(BIN)/python -m training.serving_report --model $(SERVING)/model --out $(SERVING)/report.json

## The served model's speed on this machine, side by side in one run: a plain transformers pipeline on the
## student's fp32 weights, PyTorch, ONNX fp32 and the served int8 ONNX (1,024 real reviews, requests of 32).
bench-model: install
	$(BIN)/python -m training.bench_serving --model $(or $(MODEL),$(SERVING)/model) --data $(DATA) --reviews 1024 \
	    --batch-size 32 --rounds 3 --variants transformers-pipeline,torch-fp32,onnx-fp32,onnx-int8-channel

## Training throughput: bucketed dynamic padding vs fixed 128-token padding, alternating in one run.
bench-train: featurize
	$(BIN)/python -m training.bench --steps 12 --warmup-steps 2

## AWS deployment (docs: README "Deploying to AWS"). package and check-template run offline.
.PHONY: tools package check-template audit deploy teardown
# Deploy tooling (cfn-lint, aws-sam-translator, checkov, pip-audit) lives in its own virtualenv: its
# dependencies conflict with the app's pins.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
STAGE ?= dev
PACKAGE_DIR := build/package/$(STAGE)

$(TOOLS_STAMP): requirements-tools.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

## One SAM template with every resource + the function bundle, in build/package/$(STAGE)/.
package: install
	$(BIN)/python -m infra.package --stage $(STAGE)

## SAM transform, cfn-lint (zero errors and warnings), checkov (justified skips only), bundle size.
check-template: package tools
	$(TOOLS)/bin/python -m infra.check_template $(PACKAGE_DIR)

## Known vulnerabilities in the Lambda and job requirements (needs the PyPI/OSV vulnerability services:
## not part of make test).
audit: tools
	$(TOOLS)/bin/pip-audit --strict $(foreach f,requirements.txt requirements-training.txt $(wildcard training/*requirements*.txt),-r $(f))

## Deploy the packaged stack to the account and region of your AWS credentials (DEPLOY_ARGS=--dry-run to
## print the calls), then publish the training code to the lake bucket.
deploy: package
	$(BIN)/python -m infra.deploy deploy --stage $(STAGE) --package-dir $(PACKAGE_DIR) $(DEPLOY_ARGS)

## Delete the stack and what the app created outside it (endpoint, models, registry), emptying its buckets.
teardown: install
	$(BIN)/python -m infra.deploy teardown --stage $(STAGE) $(DEPLOY_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) build .mypy_cache .ruff_cache .pytest_cache *.egg-info
