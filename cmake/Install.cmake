# cmake --install and the Debian package (cpack -G DEB): the binary, the agent's systemd unit and
# its config, a man page generated from the program's own --help-all (help2man: written once, in
# the CLI), bash completion and a logrotate file.
include(GNUInstallDirs)

install(TARGETS bpftap RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
# Systemd looks in /usr/local/lib/systemd/system as well as /lib/systemd/system, and the unit
# names the binary without a path, so one unit serves both prefixes.
install(FILES packaging/bpftap-agent.service DESTINATION lib/systemd/system)
install(FILES packaging/bpftap.bash-completion DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME bpftap)
install(FILES README.md docs/sensor.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# /etc whatever the prefix: the unit and the agent read /etc/bpftap/agent.yaml.
install(FILES packaging/agent.yaml packaging/agent.yaml.example DESTINATION /etc/bpftap)
install(FILES packaging/bpftap.logrotate DESTINATION /etc/logrotate.d RENAME bpftap)

find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(man ${CMAKE_CURRENT_BINARY_DIR}/bpftap.8)
  add_custom_command(
    OUTPUT ${man}.gz
    COMMAND ${HELP2MAN} --no-info --section=8 --help-option=--help-all --version-string=${PROJECT_VERSION}
            "--name=eBPF virtual TAP and packet tracer" --include=${CMAKE_CURRENT_SOURCE_DIR}/docs/bpftap.h2m
            --output=${man} $<TARGET_FILE:bpftap>
    COMMAND gzip -9nf ${man}
    DEPENDS bpftap ${CMAKE_CURRENT_SOURCE_DIR}/docs/bpftap.h2m
    COMMENT "man page from bpftap --help-all")
  add_custom_target(man ALL DEPENDS ${man}.gz)
  install(FILES ${man}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
else()
  message(STATUS "help2man not found: no man page (scripts/setup installs it)")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bpftap)
set(CPACK_PACKAGE_VENDOR bpftap)
set(CPACK_PACKAGE_CONTACT "bpftap maintainers <bpftap@example.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "eBPF virtual TAP and packet tracer")
set(CPACK_PACKAGE_DESCRIPTION "Captures many interfaces at once from TC hooks with tcpdump filters compiled into the\n"
                              "kernel program, mirrors selected traffic to a monitor port or a VXLAN sensor, inspects it\n"
                              "(nDPI, behavioural detectors), and runs as an agent with a REST API.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_STRIP_FILES ON)  # the debug info stays in the build tree: 18 MB -> a few
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: from the libraries the binary links (dpkg-shlibdeps)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "tcpdump")  # capture prints packets through it
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "tshark, suricata, zeek")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/conffiles ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/prerm ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
