# syntax=docker/dockerfile:1
#
# One image for every supportflow process. It has no service-specific entrypoint: each Kubernetes
# workload says what to run with `command` (deploy/base):
#   python -m services.intake              the intake gRPC service (port 50051)
#   python -m services.workflow            the workflow gRPC service (port 50052)
#   python -m services.notify              the notify gRPC service (port 50053)
#   python -m services.<name> migrate      apply that service's database migrations (the Jobs)
#   supportflow process deploy|validate …  the process admin's client (DeployProcess)
# Build from the repository root:  docker build -t supportflow:dev .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/supportflow
ENV PATH=/opt/supportflow/bin:$PATH
WORKDIR /src
# Third-party packages first, each at its pinned version: this layer survives code changes.
COPY deploy/constraints.txt deploy/constraints.txt
RUN pip install --requirement deploy/constraints.txt
# Then the project itself (runtime dependencies only, no dev extras), held to the same pins;
# `pip check` fails the build if pyproject.toml asks for something the pins do not satisfy.
COPY pyproject.toml README.md ./
COPY proto/gen/python proto/gen/python
COPY services services
RUN pip install --constraint deploy/constraints.txt . && pip check

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 supportflow \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin supportflow
COPY --from=build /opt/supportflow /opt/supportflow
# The default process bundle, organisations' catalogue and notification configuration, baked in
# (read-only, owned by root). Changed bundles reach a running system through DeployProcess, an
# organisation's notification configuration through a ConfigMap (deploy/README.md).
COPY bpmn /app/bpmn
# The settings' built-in paths point into a source checkout; an installed package needs these.
ENV PATH=/opt/supportflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SUPPORTFLOW_CATALOG_FILE=/app/bpmn/organisations.toml \
    SUPPORTFLOW_DEFAULT_BUNDLE_DIR=/app/bpmn \
    SUPPORTFLOW_CONFIG_DIR=/app/bpmn/notify
# Business calendars and ticket numbers need the IANA zone data (Asia/Shanghai, …): the python
# image ships Debian's tzdata in /usr/share/zoneinfo; fail the build if that ever changes. Importing
# every entrypoint proves the installed package is complete.
RUN python -c "import zoneinfo; zoneinfo.ZoneInfo('Asia/Shanghai')" \
 && python -c "import services.intake.__main__, services.workflow.__main__, services.notify.__main__"
WORKDIR /app
USER 10001:10001
EXPOSE 50051 50052 50053 9090
CMD ["supportflow", "--help"]
