# kspec: the pytest plugin, the kspec CLI, the compliance suite (checks/) and the examples.
# Build:  docker build -t registry.example.com/platform/kspec:0.1.0 .
# Runs as the non-root user 10001 with a read-only root filesystem (manifests/); writes
# only to /var/lib/kspec (reports, history) and /tmp, both mounted volumes.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY pytest_kspec ./pytest_kspec
RUN pip install . && rm -rf /src

WORKDIR /app
COPY checks ./checks
COPY examples ./examples

RUN groupadd --gid 10001 kspec \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kspec
USER 10001:10001

CMD ["kspec", "--help"]
