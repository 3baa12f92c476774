# Builder: Debian 12 with the packages the project builds with; runtime: the two binaries and
# their shared libraries, run as a non-root user. (Hardening, healthcheck and compose: issue 5.)
FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      cmake make g++ libboost-dev libboost-system-dev nlohmann-json3-dev libyaml-cpp-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DSTATHERD_TESTS=OFF -DSTATHERD_BENCH=OFF \
    && cmake --build /build -j"$(nproc)"

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libyaml-cpp0.7 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/statherd --create-home statherd
COPY --from=build /build/statherd-agent /build/statherd-server /usr/local/bin/
COPY config/ /etc/statherd/
USER statherd
EXPOSE 8470
ENTRYPOINT ["/usr/local/bin/statherd-server"]
CMD ["--config", "/etc/statherd/server.yaml", "--listen", "0.0.0.0:8470"]
