# syntax=docker/dockerfile:1
# The brownout collector image. Consistent with helm/brownout: runs as uid/gid 10001 on a
# read-only root file system (writes go to /tmp and /var/lib/brownout, emptyDirs in the chart),
# serves /metrics, /healthz and /readyz on 9464, and runs `brownout collect` unless told otherwise
# (the chart's init-topics Job runs `brownout kafka init-topics` from the same image).
#
#   docker build -t brownout:0.1.0 .
#   docker run --rm -p 9464:9464 -e BROWNOUT_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 brownout:0.1.0
#
# Pin the base image by digest in your own builds: --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/brownout
WORKDIR /src
# Dependencies first, from the pinned list, as wheels only: this layer changes only with the pins.
COPY constraints.txt ./
RUN /opt/brownout/bin/pip install --only-binary=:all: -r constraints.txt
COPY pyproject.toml README.md ./
COPY brownout ./brownout
RUN /opt/brownout/bin/pip install --no-deps . \
 && /opt/brownout/bin/pip check \
 && /opt/brownout/bin/brownout --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="brownout" \
      org.opencontainers.image.description="Streaming detection of LLM provider brownouts: alerts and circuit breakers for routers" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 brownout \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin brownout \
 && mkdir -p /var/lib/brownout \
 && chown 10001:10001 /var/lib/brownout
COPY --from=build /opt/brownout /opt/brownout
ENV PATH=/opt/brownout/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /var/lib/brownout
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2)"]
ENTRYPOINT ["brownout"]
CMD ["collect"]
