# transit_window: one national node of the Digital Transit Corridor.
#
#   docker build -t transit-window .
#   docker run --rm -e TW_DATABASE_URL=... transit-window db upgrade     # once per deploy (a one-shot)
#   docker run -e TW_NODE_ID=KZ ... -p 8101:8101 transit-window           # `serve`: API + delivery worker
#   docker run ... transit-window worker                                  # extra workers on the same database
#
# Every setting is a TW_* environment variable (README.md, deploy/.env.example). Keys and the genesis trust list
# are mounted (deploy/compose.yaml keeps them under /data); the image holds no secret.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the pinned dependencies, then the application itself ---------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies in their own layer: rebuilt only when the lock changes, not on every code change.
COPY deploy/requirements.lock deploy/requirements.lock
RUN pip install --no-cache-dir --no-deps --require-hashes -r deploy/requirements.lock
COPY pyproject.toml README.md ./
COPY transit_window transit_window
# `pip check` fails the build when the lock misses a dependency (it was installed with --no-deps).
RUN pip install --no-cache-dir --no-deps . \
    && pip check \
    && python -c "import transit_window.app"

# --- runtime: no compilers, no pip cache, a non-root user with a fixed numeric uid --------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
ARG GID=10001
RUN groupadd --system --gid "${GID}" transit \
    && useradd --system --uid "${UID}" --gid "${GID}" --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin transit \
    && mkdir -p /data \
    && chown "${UID}:${GID}" /data \
    && chmod 0700 /data
COPY --from=build /opt/venv /opt/venv
COPY migrations /opt/transit-window/migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TW_MIGRATIONS_DIR=/opt/transit-window/migrations \
    TW_HOST=0.0.0.0 \
    TW_PORT=8101 \
    TW_LOG_JSON=true
WORKDIR /data
USER ${UID}:${GID}
EXPOSE 8101
# Ready = database reachable, trust list unexpired, a delivery worker alive (GET /readyz answers 503 otherwise,
# which urlopen raises on). No curl in a slim image: the interpreter is already there.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TW_PORT', '8101') + '/readyz', timeout=4)"]
ENTRYPOINT ["transit-window"]
CMD ["serve"]
