# syntax=docker/dockerfile:1
# One image for every part of the task tracker; the command picks the part:
#   docker run task-tracker:0.1.0 serve gateway      (listens on 0.0.0.0:3010)
#   docker run task-tracker:0.1.0 serve task_svc     (any service: tracker serve NAME)
#   docker run task-tracker:0.1.0 db upgrade         (migrations, a one-shot job)
# Build from the repository root: docker build -t task-tracker:0.1.0 .   (deploy/README.md)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtual environment with the pinned dependencies and the project ------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, constrained by the lock, in their own layer: a code change does not
# reinstall them. Every wheel they need exists for CPython 3.11 on linux, so no compiler.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/dependencies.txt \
 && pip install -c requirements.lock -r /tmp/dependencies.txt

# Then the project itself, the same way: pip install -c requirements.lock .
# tracker/migrate.py finds the Alembic scripts next to the tracker package, but they are not a
# Python package, so the wheel does not carry them: copy them where it looks.
COPY tracker ./tracker
COPY gateway ./gateway
COPY services ./services
COPY migrations ./migrations
RUN pip install -c requirements.lock . \
 && cp -r migrations "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/migrations" \
 && python -c "import tracker.migrate as m; assert (m.MIGRATIONS / 'env.py').is_file(), m.MIGRATIONS" \
 && python -c "from tracker.plugins import discover; print('services:', ', '.join(discover()))"

# --- runtime: the virtual environment only, run by an unprivileged user ----------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="task-tracker" \
      org.opencontainers.image.description="Distributed task tracker: gateway, services and migrations"
RUN groupadd --system --gid 10001 tracker \
 && useradd --system --uid 10001 --gid tracker --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin tracker
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TT_BIND=0.0.0.0:3010
# Numeric, so Kubernetes can verify runAsNonRoot.
USER 10001:10001
EXPOSE 3010
# Services stop gracefully on SIGTERM (finish in-flight RPCs), gunicorn too (--graceful-timeout).
STOPSIGNAL SIGTERM
# `tracker probe` without a name checks the part this container runs: a service's heartbeat
# (connected to the broker and consuming), the gateway's /readyz; a migration job passes.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 CMD ["tracker", "probe"]
ENTRYPOINT ["tracker"]
CMD ["serve", "gateway"]
