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
      ./platform/cmd/sidecar ./platform/cmd/redrive ./platform/cmd/probe ./platform/cmd/localsecrets \
      ./services/orders/cmd/orders ./services/payments/cmd/payments ./services/payments/cmd/psp \
      ./services/inventory/cmd/inventory && \
    mkdir -p /out-data/var/lib/psp

# distroless static: CA certificates and tzdata, no shell; nonroot is
# uid 65532. Healthchecks use /opt/probe/probe (platform/cmd/probe).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY --from=build /out/probe /opt/probe/probe
# psp's keyring directory (PSP_KEY_FILE), writable by nonroot; compose
# mounts a volume here, which Docker fills with this directory's owner.
COPY --from=build --chown=nonroot:nonroot /out-data/var/lib/psp /var/lib/psp
USER nonroot:nonroot
ENTRYPOINT []
CMD ["orders"]
