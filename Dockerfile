# statherd image: both daemons, built in a builder stage and installed in the runtime stage from
# the project's own Debian package (so the runtime gets exactly the shared libraries the
# package's Depends name, found by dpkg-shlibdeps). Runs as the non-root user statherd.
#
#   docker build -t statherd .
#   docker run -v statherd-etc:/etc/statherd -p 8470:8470 statherd            # the server
#   docker run ... statherd statherd-agent --config /etc/statherd/agent.yaml   # the agent
#
# /etc/statherd is a volume: it starts with the example agent.yaml and server.yaml; put the
# shared token in /etc/statherd/token (deploy/compose.yaml does it with a one-shot service).
# Built and run with podman by tests/integration/test_image.py (base images made locally by
# scripts/container-setup.sh; the apt sources are the base image's own), linted by
# test_docker_files.py. Here: podman build --runtime runc --network host -t statherd .

FROM debian:bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       cmake make g++ pkg-config libboost-dev libboost-system-dev nlohmann-json3-dev \
       libyaml-cpp-dev prometheus-cpp-dev libsnappy-dev libgoogle-perftools-dev libre2-dev dpkg-dev file \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The compile inputs first: a change to the docs, configs or packaging files does not recompile.
COPY CMakeLists.txt ./
COPY deploy/packaging.cmake deploy/
COPY common/ common/
COPY agent/ agent/
COPY server/ server/
# Only the two daemons: no tests, no benchmarks (a packager's plain Release build, no -Werror).
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DSTATHERD_TESTS=OFF -DSTATHERD_BENCH=OFF \
             -DSTATHERD_MALLOC=tcmalloc \
    && cmake --build /build -j"$(nproc)" --target statherd-server statherd-agent
COPY README.md LICENSE ./
COPY config/ config/
COPY deploy/ deploy/
COPY docs/ docs/
COPY clients/python/statherd/ clients/python/statherd/
RUN cd /build && cpack -G DEB && mv /build/statherd_*.deb /statherd.deb

FROM debian:bookworm-slim
COPY --from=build /statherd.deb /tmp/statherd.deb
# The package's postinst creates the statherd user and group; the state directories are made
# here because systemd's StateDirectory= does not exist in a container.
RUN apt-get update \
    && apt-get install -y --no-install-recommends /tmp/statherd.deb \
    && rm -rf /var/lib/apt/lists/* /tmp/statherd.deb \
    && install -d -o statherd -g statherd -m 0700 /var/lib/statherd /var/lib/statherd-agent
COPY deploy/healthcheck.sh /usr/local/bin/statherd-healthcheck
VOLUME ["/etc/statherd"]
USER statherd
EXPOSE 8470
# GET /healthz of the server in this container; bash's /dev/tcp, so no curl in the image.
# The agent has no HTTP port: compose disables the check for it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/statherd-healthcheck", "127.0.0.1:8470"]
CMD ["statherd-server", "--config", "/etc/statherd/server.yaml", "--listen", "0.0.0.0:8470", \
     "--state-dir", "/var/lib/statherd"]
