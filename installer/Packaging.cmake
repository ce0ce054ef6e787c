# CPack: DEB and TGZ of what is installed. Components: `cli` (pagoda-cli,
# pagoda-bench), `gui` (pagoda with its desktop entry, AppStream metadata
# and hicolor icons; app/pagoda/CMakeLists.txt), `cuda` (the CUDA backend
# module, kernels/cuda/CMakeLists.txt, built only where nvcc is). One DEB
# per component, so the programs install on machines without CUDA; the TGZ
# holds everything.
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
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENT_CLI_DESCRIPTION "Pagoda command-line tools: pagoda-cli (generate, chat, inspect models) and pagoda-bench")
set(CPACK_COMPONENT_GUI_DESCRIPTION "Pagoda desktop app: chat with local LLMs and profile the inference engine live")
# The CUDA runtime and cuBLAS are not Debian packages here (NVIDIA's
# installer), so SHLIBDEPS cannot name them; without them the module fails
# to load and the programs say why and use the CPU.
set(CPACK_COMPONENT_CUDA_DESCRIPTION
    "Pagoda CUDA backend module (needs an NVIDIA driver, the CUDA 13 runtime and cuBLAS; loaded at run time)")
set(CPACK_DEBIAN_GUI_PACKAGE_SUGGESTS "pagoda-cuda")
set(CPACK_DEBIAN_CLI_PACKAGE_SUGGESTS "pagoda-cuda")
include(CPack)
