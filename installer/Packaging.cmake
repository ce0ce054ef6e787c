# CPack: DEB and TGZ of what is installed. Components: `cli` (pagoda-cli,
# pagoda-bench), `gui` (pagoda with its desktop entry, AppStream metadata
# and hicolor icons; app/pagoda/CMakeLists.txt); the CUDA backend module
# gets its own component as it lands.
set(CPACK_PACKAGE_NAME "pagoda")
set(CPACK_PACKAGE_VENDOR "Pagoda")
set(CPACK_PACKAGE_CONTACT "Pagoda developers <pagoda@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Chat with local LLMs and profile the inference engine underneath")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR "DEB;TGZ")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_ARCHIVE_COMPONENT_INSTALL OFF)
set(CPACK_DEB_COMPONENT_INSTALL OFF)
include(CPack)
