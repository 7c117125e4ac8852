# syntax=docker/dockerfile:1
# The scaler image: `scaler run` (the controller) or `scaler proxy` (the sidecar).
# See docs/image.md. BASE must be a Debian-like image with Python 3.11 and `python3 -m venv`:
# the default public slim image, or a local one (scripts/build-image.sh makes one offline).
ARG BASE=python:3.11-slim

# Build stage: a wheel of the project, installed with its dependencies into /opt/scaler.
FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# pip's cache is a cache mount, and behind a TLS-intercepting proxy pip may be given a CA
# bundle as the optional secret `pip_cert` (--secret id=pip_cert,src=FILE): neither is
# ever written into a layer.
# /opt/build holds the tools (pip, the wheel builder); /opt/scaler only what runs.
RUN python3 -m venv /opt/build \
 && python3 -m venv --without-pip /opt/scaler
WORKDIR /src
# Dependencies first, read from pyproject.toml, so a source change reuses this layer.
COPY pyproject.toml README.md ./
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
 && /opt/build/bin/pip --python /opt/scaler/bin/python install -r /tmp/requirements.txt
COPY scaler ./scaler
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && /opt/build/bin/pip wheel --no-deps --wheel-dir /tmp/wheels . \
 && /opt/build/bin/pip --python /opt/scaler/bin/python install --no-deps /tmp/wheels/scaler-*.whl \
 && /opt/build/bin/pip --python /opt/scaler/bin/python check \
 && /opt/scaler/bin/python -m compileall -q /opt/scaler >/dev/null \
 && /opt/scaler/bin/scaler --help >/dev/null

# Final stage: the same base, the venv and a non-root user; no compilers, pip or caches.
FROM ${BASE}
# Drop the base's own pip/setuptools/wheel if it has them (the slim image does), and add
# a fixed non-root user without a login shell or home directory.
RUN if python3 -m pip --version >/dev/null 2>&1; then \
        python3 -m pip uninstall -y -q pip setuptools wheel >/dev/null 2>&1 || true; \
        rm -f /usr/local/bin/pip /usr/local/bin/pip3*; \
    fi \
 && echo 'scaler:x:10001:' >> /etc/group \
 && echo 'scaler:x:10001:10001:scaler:/nonexistent:/usr/sbin/nologin' >> /etc/passwd
COPY --from=build /opt/scaler /opt/scaler
# Nothing is written at runtime outside /tmp: bytecode is compiled at build time, and
# matplotlib (scaler simulate --plot) keeps its cache in /tmp.
ENV PATH=/opt/scaler/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
# 8080: the controller's /metrics and /healthz; 11434: the proxy, in front of Ollama.
EXPOSE 8080 11434
ENTRYPOINT ["scaler"]
CMD ["run"]
