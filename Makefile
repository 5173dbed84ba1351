# make demo | make test [ARGS="-k transport"] | make kafka [KAFKA_PORT=9092]
KAFKA_PORT ?= 9092
ARGS ?=

.PHONY: bootstrap demo test kafka

bootstrap:
	scripts/bootstrap

demo: bootstrap
	.venv/bin/brownout demo

test:
	scripts/test $(ARGS)

kafka:
	python3 scripts/kafka_broker.py run --port $(KAFKA_PORT)
