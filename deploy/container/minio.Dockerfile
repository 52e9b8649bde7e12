# syntax=docker/dockerfile:1
# MinIO for deploy/compose, built from the Go module proxy at the
# pseudo-version deploy/local/lib.sh pins (MINIO_VERSION; upstream publishes
# no current community image). scripts/deploy-check.sh checks the two agree.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
ARG MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOBIN=/out GOFLAGS=-mod=mod go install "github.com/minio/minio@${MINIO_VERSION}"
RUN mkdir -p /rootfs/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/minio /usr/local/bin/minio
# A new named volume takes this directory's owner: MinIO can write /data.
COPY --from=build --chown=65532:65532 /rootfs/data /data
USER 65532:65532
EXPOSE 9000 9001
ENTRYPOINT ["/usr/local/bin/minio"]
CMD ["server", "/data"]
