# syntax=docker/dockerfile:1
# One image for every process of the suite (orders, payments, psp,
# inventory, sidecar, redrive, probe): compose and Kubernetes pick the
# binary with the command. Build from the repository root:
#
#   docker build --build-arg VERSION=$(git describe --always) -t sagasuite .
#
# The build runs deploy/build.sh, the same command as `make build` and the
# e2e tests, so `make test` catches a broken build stage.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# The cache mounts keep modules and compiled packages between builds.
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    VERSION=${VERSION} deploy/build.sh /out \
      ./platform/cmd/sidecar ./platform/cmd/redrive ./platform/cmd/probe \
      ./services/orders/cmd/orders ./services/payments/cmd/payments ./services/payments/cmd/psp \
      ./services/inventory/cmd/inventory

# distroless static: CA certificates and tzdata, no shell; nonroot is
# uid 65532. Healthchecks use /opt/probe/probe (platform/cmd/probe).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY --from=build /out/probe /opt/probe/probe
USER nonroot:nonroot
ENTRYPOINT []
CMD ["orders"]
