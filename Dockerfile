# The churn pipeline's flow-run image, built by `prefect deploy` (prefect.yaml) and run
# by a Docker work pool. It holds code and dependencies only: credentials come from
# Prefect blocks at run time, so no secret is ever copied or passed into a layer.
ARG BASE_IMAGE=prefecthq/prefect:3-python3.11
FROM ${BASE_IMAGE}

# The venv lives outside the project folder so that copying the code never hides it,
# and it comes first on PATH so `python -m prefect.engine` runs the locked versions.
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    CHURN_DATA_DIR=/tmp/churn-data

RUN python -m pip install --no-cache-dir --disable-pip-version-check uv

WORKDIR /opt/churn

# Dependencies before code: this layer is rebuilt only when the lock changes.
# --no-install-project because the code is not here yet. Bytecode is compiled now
# (uncompiled imports of Prefect take seconds at every run); uv compiles every file it
# can, skipping the few that only a later Python can read.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project --compile-bytecode --no-cache

COPY . .
# Installs the project itself (churn, flows, blocks) into the venv; the dependencies are
# there and compiled (uv would compile the whole venv again: pyproject.toml asks it to),
# so only the project's own code is compiled, and it must compile.
RUN uv sync --frozen --no-dev --no-cache --no-compile-bytecode \
    && python -m compileall -q churn flows blocks

# dbt's parse at build time, kept where runs look for it (under CHURN_DATA_DIR), so runs
# start without a full parse. profiles.yml reads only env_var() with defaults, so parsing
# needs no database and no credential.
RUN python -m churn.build parse

# Runs as an unprivileged user. It owns the data folder (dbt's run folders, generated
# files) and the project folder itself (so run outputs such as reports/ can be created),
# but not the code files, which stay root's and read-only to it.
RUN useradd --create-home --uid 10001 --home-dir /home/churn churn \
    && mkdir -p /tmp/churn-data \
    && chown churn:churn /opt/churn \
    && chown -R churn:churn /tmp/churn-data
USER churn
