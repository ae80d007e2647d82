# syntax=docker/dockerfile:1
#
# A small image with a static tokensmith binary:
#
#   docker build -t tokensmith:0.1.0 .
#   docker run --rm -v "$PWD:/work" -w /work tokensmith:0.1.0 validate -f tokensmith.yaml
#
# Stage 1 builds for musl on Alpine, so the binary is fully static (TLS is rustls with built-in
# root certificates, libgit2 is compiled in without network transports; nothing is loaded at run
# time; it allocates with mimalloc, as musl's own malloc made parsing a large spec three to four
# times slower). Stage 2 is distroless/static: no shell, no package manager, user 65532
# ("nonroot").
# The image runs `validate`, `plan`, `apply`, `drift`, `inventory`, `sandbox` and
# `force-unlock`; what it cannot do is run programs that are not in it: `--lock-remote` (which
# pushes with the `git` command line) and `exec` delivery targets need an image that adds them.
# Cargo's registry and the build directory are BuildKit cache mounts, so a rebuild after a
# source change compiles only tokensmith.

FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev gcc make pkgconf zlib-dev zlib-static
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
COPY schemas ./schemas
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tokensmith \
    && cp target/release/tokensmith /tokensmith \
    && if ldd /tokensmith 2>/dev/null | grep -q '=>'; then echo "tokensmith is not static" >&2; exit 1; fi \
    && /tokensmith --version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /tokensmith /usr/local/bin/tokensmith
WORKDIR /work
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tokensmith"]
CMD ["--help"]
