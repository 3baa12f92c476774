# Install rules and the Debian package (CPack DEB). Included from the top-level CMakeLists.txt.
#
#   cmake --install build --prefix /usr      (DESTDIR=/tmp/root honoured)
#     /usr/bin/statherd-agent, /usr/bin/statherd-server
#     /etc/statherd/agent.yaml, /etc/statherd/server.yaml    (PREFIX/etc/statherd unless the
#                                                             prefix is / or /usr, as GNUInstallDirs)
#     /usr/lib/systemd/system/statherd-{agent,server}.service (ExecStart points at PREFIX/bin)
#     /usr/share/doc/statherd/{README.md,docs/*.md (API, BENCHMARKS, FORMAT, OPERATIONS),copyright}
#     /usr/lib/python3/dist-packages/statherd/   (the v2 writer: `import statherd` with python3)
#   cpack -G DEB  (or `make package`): statherd_<version>_<arch>.deb, Depends from dpkg-shlibdeps,
#     maintainer scripts in deploy/debian/.
#
# The config and unit destinations depend on the prefix, so they are computed when installing
# (deploy/install_files.cmake), not when configuring: `cmake --install --prefix X` is right for
# any X, and the package is right whatever prefix the build dir was configured with.
include(GNUInstallDirs)
# `install`/cpack do not build `all` first (cpack's preinstall step would build every test and
# benchmark): `make install` and `make package` build first, then install what was built.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS statherd-agent statherd-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(CODE "
  set(STATHERD_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
  set(STATHERD_BINARY_DIR \"${CMAKE_BINARY_DIR}\")
  set(STATHERD_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(STATHERD_SYSCONFDIR \"${CMAKE_INSTALL_SYSCONFDIR}\")
  set(STATHERD_DOCDIR \"${CMAKE_INSTALL_DATAROOTDIR}/doc/statherd\")
")
install(SCRIPT ${CMAKE_SOURCE_DIR}/deploy/install_files.cmake)
# The Python writer of the v2 stat files, where Debian's python3 finds it for the prefix /usr.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/clients/python/statherd
        DESTINATION lib/python3/dist-packages
        FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                              WORLD_READ WORLD_EXECUTE
        FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME statherd)
set(CPACK_PACKAGE_VENDOR statherd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "collects the stats of running Python processes into Graphite, Prometheus and JSON")
# Every source the agent reads and every output the server has (README.md names the same).
set(CPACK_PACKAGE_DESCRIPTION
    "statherd-agent reads, on each host, the stats that running Python processes keep,\n\
without logging, restarting or slowing them: mmstats memory-mapped files,\n\
statherd v2 files (written by the included Python library: import statherd),\n\
prometheus_client multiprocess *.db files, Scales /status JSON endpoints and\n\
Prometheus text endpoints. statherd-server rolls them up per interval (counter\n\
rates, EWMA rates, gauge statistics, distribution percentiles merged exactly\n\
across processes) and sends them to Graphite/Carbon (plaintext), to Prometheus\n\
(a /metrics scrape endpoint and remote_write) and serves them on a JSON API with\n\
a Graphite-compatible render API (/render, /metrics/find) and a web page.\n\
Ships systemd units (disabled until enabled by the operator).")
set(CPACK_PACKAGE_CONTACT "statherd developers <statherd@localhost>")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "statherd developers <statherd@localhost>")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # statherd_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)     # Depends: libc6, libstdc++6, libyaml-cpp0.7 ...
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd") # useradd/groupadd in postinst
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3") # for the statherd writer module
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/conffiles
    ${CMAKE_SOURCE_DIR}/deploy/debian/postinst
    ${CMAKE_SOURCE_DIR}/deploy/debian/prerm
    ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)
# Install with DESTDIR=<staging> and prefix /usr, so /etc/statherd lands in the package as /etc.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
include(CPack)
