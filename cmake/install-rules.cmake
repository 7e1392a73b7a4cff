include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS sluice sluice_asio EXPORT sluiceTargets)

set(SLUICE_CONFIG_DIR "${CMAKE_INSTALL_DATADIR}/cmake/sluice")
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/sluiceConfigVersion.cmake"
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/sluiceConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/sluiceConfig.cmake"
  INSTALL_DESTINATION "${SLUICE_CONFIG_DIR}")
install(FILES
  "${PROJECT_BINARY_DIR}/sluiceConfig.cmake"
  "${PROJECT_BINARY_DIR}/sluiceConfigVersion.cmake"
  DESTINATION "${SLUICE_CONFIG_DIR}")
install(EXPORT sluiceTargets
  NAMESPACE sluice::
  DESTINATION "${SLUICE_CONFIG_DIR}")
