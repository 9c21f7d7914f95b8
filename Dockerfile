# The salesops image. Two ways to get the binary in:
#   runtime  (default): compiled here from source, in the `build` stage;
#   prebuilt: a binary built on the host beforehand (no compile in Docker):
#     cargo build --release -p api && mkdir -p dist && cp target/release/salesops dist/
#     SALESOPS_BUILD_TARGET=prebuilt docker compose up -d --build
#   The host must be Debian 12 or have a glibc no newer than its 2.36.
# Works with the classic builder and BuildKit alike (no BuildKit-only syntax).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p api --bin salesops \
 && cp target/release/salesops /salesops

FROM debian:bookworm-slim AS base
# curl for the healthcheck; ca-certificates for https webhooks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/salesops salesops
WORKDIR /var/lib/salesops
USER salesops
ENV SALESOPS_BIND=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=12 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["salesops"]
CMD ["serve"]

FROM base AS prebuilt
COPY dist/salesops /usr/local/bin/salesops

# Last, so a plain `docker build .` gives it.
FROM base AS runtime
COPY --from=build /salesops /usr/local/bin/salesops
