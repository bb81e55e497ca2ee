# Install rules and the exported CMake package: an HPC code does find_package(nsamp) and links nsamp::nsamp.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(NSAMP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nsamp)

install(TARGETS nsamp_core nsamp_kernels nsamp_autograd nsamp_targets nsamp_samplers nsamp
        EXPORT nsampTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY core/include/ kernels/include/ autograd/include/ targets/include/ samplers/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h" PATTERN "*.in" EXCLUDE)
install(FILES ${PROJECT_BINARY_DIR}/core/include/nsamp/core/config.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nsamp/core)
if(TARGET nsamp_cli)
  install(TARGETS nsamp_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  # `nsamp bench NAME` finds bench_NAME in ../libexec/nsamp of an installed tree.
  foreach(b kernels mlp energy metrics path dikl mc_score idem egnn)
    if(TARGET bench_${b})
      install(TARGETS bench_${b} RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/nsamp)
    endif()
  endforeach()
endif()

install(EXPORT nsampTargets NAMESPACE nsamp:: DESTINATION ${NSAMP_CMAKE_DIR})
configure_package_config_file(cmake/nsampConfig.cmake.in ${PROJECT_BINARY_DIR}/nsampConfig.cmake
                              INSTALL_DESTINATION ${NSAMP_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/nsampConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/nsampConfig.cmake ${PROJECT_BINARY_DIR}/nsampConfigVersion.cmake
        DESTINATION ${NSAMP_CMAKE_DIR})
