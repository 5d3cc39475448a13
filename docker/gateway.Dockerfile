# The Switchman gateway image: `switchman gateway` (aiohttp) on CPython 3.11, as uid 10001.
#
#   docker build -f docker/gateway.Dockerfile -t switchman/gateway:0.1.0 .
#
# The operator runs it for every RoutingPolicy (spec.gateway.image defaults to this tag) with the
# policy's ConfigMap mounted at /etc/switchman, a read-only root filesystem and /tmp as an
# emptyDir; without a cluster: `docker run -v $PWD/gateway.yaml:/etc/switchman/gateway.yaml
# -p 8080:8080 switchman/gateway:0.1.0`.
#
# Built from the repository root (.dockerignore keeps the context to what the wheel needs).
# The base is pinned to an exact patch release. Pin its digest too where your builds must be
# reproducible (`FROM python:3.11.14-slim-bookworm@sha256:...`, the digest from your registry
# mirror or `docker buildx imagetools inspect`): this file cannot, it was written offline.
# Needs BuildKit (the default builder since Docker 23) for the `--mount` of the builder's wheels.

# --- builder: the switchman wheel and every dependency's wheel, nothing installed -------------
FROM python:3.11.14-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
# Every dependency's wheel is built; only the gateway extra's are installed below.
RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
    && python docker/extra_requirements.py gateway > /wheels/requirements.txt

# --- runtime: a virtualenv holding only the wheels, no compilers, no pip ------------------------
FROM python:3.11.14-slim-bookworm AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="switchman-gateway" \
      org.opencontainers.image.description="Switchman gateway: one OpenAI-compatible endpoint over in-cluster vLLM and external providers" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="python:3.11.14-slim-bookworm"

# The venv gets no pip of its own (--without-pip): the base's pip installs into it, offline,
# from the builder's wheels, which are bind-mounted and so never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/switchman \
    && pip --python /opt/switchman/bin/python install --no-cache-dir --no-index \
        --disable-pip-version-check --root-user-action=ignore --find-links /wheels \
        --no-deps switchman \
    && pip --python /opt/switchman/bin/python install --no-cache-dir --no-index \
        --disable-pip-version-check --root-user-action=ignore --find-links /wheels \
        -r /wheels/requirements.txt \
    && groupadd --system --gid 10001 switchman \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin switchman

# Bytecode was compiled at install time; the root filesystem is read-only at run time.
ENV PATH=/opt/switchman/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Numeric, so that the kubelet can enforce runAsNonRoot without a passwd lookup; the operator's
# gateway Deployment runs it with the same uid and gid.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["switchman"]
CMD ["gateway", "--config", "/etc/switchman/gateway.yaml", "--host", "0.0.0.0", "--port", "8080"]
