# The operator image. Multi-stage: the package is installed into a virtualenv in the build stage; the final image
# gets only that virtualenv (no pip, no wheels, no compilers). Built here by `make image` (hack/build-image.sh:
# buildah in chroot isolation, no Docker engine), and by any Dockerfile builder.
#
# BASE_IMAGE: a Debian-like image with python3 (3.11) and its venv module: the Python project's slim bookworm
# image (python3 in /usr/local), or the Debian bookworm root filesystem that hack/build-image.sh makes with
# mmdebstrap where no registry serves that one (Debian's python3 and python3-venv in /usr). Both stages use the
# same base, so the virtualenv's link to its interpreter resolves in the final image. The virtualenv under /opt
# keeps pip away from the base's own Python (Debian's refuses to install into it: PEP 668).
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1
RUN python3 -m venv /opt/release-readiness
# ca-bundle (an optional build secret): the builder's trust store, for a network whose TLS a proxy re-signs; it
# is mounted for the step that reads it only, and is in no layer.
# The dependencies first, in a layer of their own (keyed by pyproject.toml): a code change reinstalls the package only.
COPY pyproject.toml /src/
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && /opt/release-readiness/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' > /src/requirements.txt \
 && /opt/release-readiness/bin/python -m pip install --requirement /src/requirements.txt
COPY README.md /src/
COPY operator /src/operator
# kubernetes/aio is the client's asyncio copy (68 MB), which nothing here imports (kube.py uses the synchronous one).
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && /opt/release-readiness/bin/python -m pip install --no-deps --no-warn-script-location /src \
 && /opt/release-readiness/bin/python -m pip check \
 && /opt/release-readiness/bin/python -m pip uninstall --yes --quiet pip setuptools \
 && rm -rf /opt/release-readiness/lib/python3*/site-packages/kubernetes/aio

FROM ${BASE_IMAGE}
COPY --from=build /opt/release-readiness /opt/release-readiness
# The operator's user: the chart runs it as 65532:65532 with a read-only root filesystem (an emptyDir on /tmp).
# Written directly: the Debian base has no useradd.
RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'nonroot:x:65532:' >> /etc/group
ENV PATH=/opt/release-readiness/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["release-readiness-operator"]
# Last, so that a new revision rebuilds no layer above.
ARG BASE_IMAGE
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/release-readiness/release-readiness
LABEL org.opencontainers.image.title="release-readiness" \
      org.opencontainers.image.description="Kubernetes operator and admission controller for pre-production checklists" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
