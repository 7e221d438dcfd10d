# poolgate in a container: built on Debian bookworm with the -dev packages, run on bookworm with
# only the runtime packages, as a non-root user. Both stages install from debian-packages.txt,
# the same list the Makefile uses.

FROM rust:1-bookworm AS build
COPY debian-packages.txt /tmp/debian-packages.txt
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(awk '!/^#/ && ($1 == "build" || $1 == "runtime") {print $2}' /tmp/debian-packages.txt) \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The binary and the plugins (cdylibs named libpoolgate_*.so), without the test crates and the
# plugins that exist only for tests. `poolgate plugins` exits 1 if a copied library is not a
# plugin this poolgate loads, which stops the build.
RUN cargo build --release --locked --workspace --exclude poolgate-tests \
      --exclude test-panic --exclude test-bad-version \
 && mkdir -p /out/plugins \
 && cp target/release/libpoolgate_*.so /out/plugins/ \
 && ./target/release/poolgate plugins --dir /out/plugins \
 && cd gateway/web && npm ci --no-audit --no-fund && npm run build

FROM debian:bookworm-slim AS runtime
COPY debian-packages.txt /tmp/debian-packages.txt
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(awk '!/^#/ && $1 == "runtime" {print $2}' /tmp/debian-packages.txt) \
 && rm -rf /var/lib/apt/lists/* /tmp/debian-packages.txt \
 && useradd --system --create-home --home-dir /var/lib/poolgate poolgate
COPY --from=build /src/target/release/poolgate /usr/local/bin/poolgate
COPY --from=build /src/gateway/web/dist /usr/share/poolgate/web
# plugins.dir of config/docker.toml.
COPY --from=build /out/plugins /usr/lib/poolgate/plugins
COPY config/docker.toml /etc/poolgate/poolgate.toml
USER poolgate
WORKDIR /var/lib/poolgate
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/poolgate"]
CMD ["--config", "/etc/poolgate/poolgate.toml"]
