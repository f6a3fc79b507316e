# -*- Python -*-
"""lit configuration for gqa's FileCheck suites."""

import os
import shutil

import lit.formats
from lit.llvm import llvm_config

config.name = "GQA"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".py"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.gqa_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%gqa_src_root", config.gqa_src_root))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

tool_dirs = [config.gqa_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(["gqa-compile", "gqa-opt", "gqa-run", "FileCheck", "not", "count"],
                                   tool_dirs)

# A stock mlir-opt and gqa's plugin for it (test/Plugin).
config.substitutions.append(("%mlir_opt", os.path.join(config.llvm_tools_dir, "mlir-opt")))
config.substitutions.append(("%gqa_plugin", os.path.join(config.gqa_obj_root, "lib", "libGQAPlugin.so")))

# ptxas validates emitted PTX without a GPU; tests that need it say
# `REQUIRES: ptxas`.
if shutil.which("ptxas"):
    config.available_features.add("ptxas")

# The runtime library, when the build has it (GQA_BUILD_RUNTIME=ON): tests
# that parse metadata with it say `REQUIRES: gqa-runtime`.
for candidate in ("lib/libgqa_runtime.so", "lib/Runtime/libgqa_runtime.so"):
    runtime_lib = os.path.join(config.gqa_obj_root, candidate)
    if os.path.exists(runtime_lib):
        config.available_features.add("gqa-runtime")
        config.substitutions.append(("%gqa_runtime_lib", runtime_lib))
        break

# The fake CUDA driver and the launch tests that use it (unittests/Runtime/
# FakeDriver): tests that run them say `REQUIRES: fake-cuda`.
fake_cuda = os.path.join(config.gqa_obj_root, "lib", "libgqa-fake-cuda.so")
fake_tests = os.path.join(config.gqa_tools_dir, "gqa-runtime-fake-driver-tests")
if os.path.exists(fake_cuda) and os.path.exists(fake_tests):
    config.available_features.add("fake-cuda")
    config.substitutions.append(("%gqa_fake_cuda", fake_cuda))
    config.substitutions.append(("%gqa_fake_driver_tests", fake_tests))
