# wsrelay image. Two stages: `build` makes a virtualenv with wsrelay and its dependencies,
# the final stage copies only that venv onto the same base, so no compiler, pip cache or
# source tree ships. Builds with the legacy builder too (no syntax directive, no BuildKit-only
# features).
#
# Build args:
#   BASE_IMAGE      the Python base (default the official slim image; `make image` can pass a
#                   locally built Debian bookworm + python3 image instead)
#   PIP_NO_INDEX, PIP_FIND_LINKS
#                   offline builds: PIP_NO_INDEX=1 PIP_FIND_LINKS=/src/dist/wheels installs only
#                   from wheels downloaded beforehand into dist/wheels (`make wheels`)
#
# Runtime: runs as uid 10001, needs no writable path (read-only root filesystem is fine; give it
# a tmpfs on /tmp only if you add code that writes temporary files), listens on 8080 and drains
# on SIGTERM (WSRELAY_SHUTDOWN_DELAY / _TIMEOUT), exiting 0.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG PIP_NO_INDEX=0
ARG PIP_FIND_LINKS=
ENV PIP_NO_INDEX=${PIP_NO_INDEX} \
    PIP_FIND_LINKS=${PIP_FIND_LINKS} \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY . /src
# pip and setuptools leave the venv once it is filled: the runtime image installs nothing.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /src \
    && /opt/venv/bin/wsrelay --help >/dev/null \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 wsrelay \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin wsrelay
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WSRELAY_HOST=0.0.0.0 \
    WSRELAY_PORT=8080
USER 10001:10001
EXPOSE 8080
# Liveness from wsrelay itself (no curl or wget needed): `wsrelay healthcheck` reads the same
# settings as `serve` (PORT, PATH_PREFIX, a WSRELAY_CONFIG file) and GETs /healthz on loopback,
# over https when WSRELAY_TLS_CERT_FILE/_KEY_FILE are set. Standard library only: ~0.1 s a probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["wsrelay", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["wsrelay"]
CMD ["serve"]
