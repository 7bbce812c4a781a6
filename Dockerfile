# The operator image. Multi-stage: wheels are built with the toolchain, the final image has none.
# (No Docker engine runs on the development machines: this file is built by CI elsewhere.)
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="release-readiness" \
      org.opencontainers.image.description="Kubernetes operator and admission controller for pre-production checklists"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels release-readiness \
 && rm -rf /wheels \
 && groupadd --gid 65532 nonroot && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin nonroot
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["release-readiness-operator"]
