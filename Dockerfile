# The mlfunctions operator image: the operator, nothing else (no numpy, no scikit-learn, no compilers). Build
# from the repository root (.dockerignore keeps the context to the operator's package):
#
#   docker build -t ghcr.io/mlfunctions/mlfunctions-operator:0.1.0 .
#
# Any builder works (BuildKit, the legacy builder, buildah): no `# syntax=` frontend to pull. Without a registry,
# hack/images.sh builds it on a local Debian base (--build-arg PYTHON_IMAGE=...). The base is pinned by version;
# pin it by digest too when you build for production (python:3.11.14-slim-bookworm@sha256:...): a tag can be
# re-pushed, a digest cannot.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build: a wheel of the operator, then a virtualenv with it and its dependencies ------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY operator/ operator/
RUN pip wheel --wheel-dir /wheels ./operator
# A virtualenv without pip: the final image gets the operator's dependency tree and no package installer.
RUN python -m venv --without-pip /opt/operator \
 && pip --python /opt/operator/bin/python install --no-index --find-links /wheels mlfunctions-operator \
 && /opt/operator/bin/python -c "import mlfunctions_operator.__main__"

# -- final: the virtualenv on the same base, run as an unprivileged numeric user ---------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mlfunctions-operator" \
      org.opencontainers.image.description="Kubernetes operator: scikit-learn models as OpenFaaS functions" \
      org.opencontainers.image.source="https://github.com/mlfunctions/mlfunctions"
# Bytecode was compiled at install time; the root filesystem is read-only at run time.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/operator/bin:$PATH
COPY --from=build /opt/operator /opt/operator
# A numeric user (not a name), so Kubernetes can verify runAsNonRoot; 65532 is the usual "nonroot" id.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/opt/operator/bin/python", "-m", "mlfunctions_operator"]
