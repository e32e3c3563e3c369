# syntax=docker/dockerfile:1
#
# webproxy container image: a wheel build stage, then a slim non-root runtime.
#
#   docker build -t webproxy:local .
#   docker run --rm -p 8445:8445 -e WEBPROXY_UPSTREAM_URL=https://finesse.example.com:8445 webproxy:local
#
# The same image runs the bundled Finesse simulator: `docker run webproxy:local sim --listen 0.0.0.0:8082`.
# Configuration: /etc/webproxy/webproxy.toml (config/webproxy.toml: every key at its default),
# overridden by WEBPROXY_<SECTION>_<KEY> variables, overridden by flags after `serve`.
# The admin listener (/metrics, /healthz, /readyz, /admin/cache) defaults to 127.0.0.1:9901,
# which nothing outside the container can reach: set WEBPROXY_ADMIN_LISTEN=0.0.0.0:9901 for
# Prometheus and probes, and then always set WEBPROXY_ADMIN_TOKEN too (without a token only
# loopback clients may clear the cache: from a container, only `docker exec` commands).

# --- stage 1: build the project's wheel and the wheels of its runtime dependencies ----------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY webproxy/ webproxy/
# The project alone, then its runtime dependencies (aiohttp, cachetools, redis,
# prometheus-client) as wheels too, so the runtime stage installs offline from /wheels.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip wheel --wheel-dir /wheels /wheels/webproxy-*.whl

# --- stage 2: the runtime: the installed wheels, a config file, a non-root user -------------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Wheels only (no compiler, no sources); bind-mounted, so they never become a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels webproxy

# uid 10001, no home, no shell: Kubernetes' runAsNonRoot can check the numeric USER below.
RUN groupadd --system --gid 10001 webproxy \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin webproxy

COPY --chown=root:root --chmod=0644 config/webproxy.toml /etc/webproxy/webproxy.toml

USER 10001

# 8445: the proxy (HTTP, or HTTPS once server.tls_cert/tls_key are set); 9901: the admin API.
EXPOSE 8445 9901

# slim has no curl: Python's urllib raises (exit 1) on a refused connection or a non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9901/healthz', timeout=4)"]

ENTRYPOINT ["webproxy"]
CMD ["serve", "--config", "/etc/webproxy/webproxy.toml"]
