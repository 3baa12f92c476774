# Install-time part of deploy/packaging.cmake (runs inside `cmake --install` and cpack, where
# CMAKE_INSTALL_PREFIX is the final prefix and DESTDIR, if any, is applied by file(INSTALL)).
# Installs the example configs, the systemd units with their paths rewritten for this prefix,
# and the docs. STATHERD_* variables are set by the install(CODE) just before this script.

# Where /etc is for this prefix (the GNUInstallDirs rule): an absolute SYSCONFDIR wins; the
# prefixes / and /usr use /etc; any other prefix uses PREFIX/etc.
if(IS_ABSOLUTE "${STATHERD_SYSCONFDIR}")
  set(statherd_etc "${STATHERD_SYSCONFDIR}")
elseif(CMAKE_INSTALL_PREFIX MATCHES "^/(usr/?)?$")
  set(statherd_etc "/etc")
else()
  set(statherd_etc "${CMAKE_INSTALL_PREFIX}/${STATHERD_SYSCONFDIR}")
endif()
set(statherd_config_dir "${statherd_etc}/statherd")
set(statherd_bin_dir "${CMAKE_INSTALL_PREFIX}/${STATHERD_BINDIR}")
string(REGEX REPLACE "/+" "/" statherd_bin_dir "${statherd_bin_dir}")

# Example configs: existing files are left alone (an operator's edited config survives a
# reinstall; the Debian package marks them as conffiles instead).
foreach(name agent.yaml server.yaml)
  if(EXISTS "$ENV{DESTDIR}${statherd_config_dir}/${name}")
    message(STATUS "Keeping existing: $ENV{DESTDIR}${statherd_config_dir}/${name}")
  else()
    file(INSTALL DESTINATION "${statherd_config_dir}" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
         FILES "${STATHERD_SOURCE_DIR}/config/${name}")
  endif()
endforeach()

# systemd units: deploy/*.service name /usr/bin and /etc/statherd; rewrite both for this prefix.
set(statherd_unit_stage "${STATHERD_BINARY_DIR}/statherd-units")
file(MAKE_DIRECTORY "${statherd_unit_stage}")
foreach(unit statherd-agent.service statherd-server.service)
  file(READ "${STATHERD_SOURCE_DIR}/deploy/${unit}" text)
  string(REPLACE "/usr/bin/statherd-" "${statherd_bin_dir}/statherd-" text "${text}")
  string(REPLACE "/etc/statherd/" "${statherd_config_dir}/" text "${text}")
  file(WRITE "${statherd_unit_stage}/${unit}" "${text}")
endforeach()
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${statherd_unit_stage}/statherd-agent.service"
           "${statherd_unit_stage}/statherd-server.service")

# README, every docs/*.md and the Debian copyright file (machine-readable; the license is
# Apache-2.0, LICENSE at the source root).
file(GLOB statherd_docs "${STATHERD_SOURCE_DIR}/docs/*.md")
list(PREPEND statherd_docs "${STATHERD_SOURCE_DIR}/README.md")
list(APPEND statherd_docs "${STATHERD_SOURCE_DIR}/deploy/debian/copyright")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${STATHERD_DOCDIR}" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES ${statherd_docs})
