# One image for every service of the stack; docker-compose.yml picks the command.
# It installs the project exactly as the tests do (`pip install .` from pyproject.toml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ground ./ground
COPY village ./village
COPY devices ./devices
COPY ingest ./ingest
COPY alerting ./alerting
COPY dashboards ./dashboards
COPY simulators ./simulators
COPY broadcast ./broadcast
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/village village \
    # Mount points of the shared volumes, owned by the service user so a fresh named
    # volume starts writable for it.
    && mkdir -p /var/lib/village/broker /var/lib/village/credentials \
       /var/lib/village/grafana /var/lib/village/simulators \
    && chown -R village:village /var/lib/village

COPY deploy/entrypoint.sh /usr/local/bin/village-entrypoint
USER village
WORKDIR /var/lib/village
ENTRYPOINT ["village-entrypoint"]
CMD ["village", "--help"]
