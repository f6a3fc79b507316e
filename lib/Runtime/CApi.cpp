//===- CApi.cpp - The C ABI of the runtime --------------------------------===//
//
// Each entry point checks its handles and pointers, runs the C++ code inside
// `guard`, and turns the outcome into a gqa_status and the thread's last
// error message. No exception crosses the ABI.
//
//===----------------------------------------------------------------------===//

#include "gqa/Runtime/Runtime.h"

#include "DeviceRuntime.h"
#include "KernelMetadata.h"
#include "LaunchPlan.h"
#include "Status.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>

using namespace gqa::runtime;

struct gqa_metadata_s {
  KernelMetadata metadata;
};

struct gqa_runtime_s {
  std::shared_ptr<DeviceRuntime> runtime;
};

struct gqa_kernel_s {
  gqa_metadata_s metadata;
  LoadedKernel loaded;
};

namespace {

thread_local std::string lastErrorMessage;

void setLastError(const char *message) noexcept {
  try {
    lastErrorMessage = message;
  } catch (...) {
    lastErrorMessage.clear(); // No memory even for the message.
  }
}

/// Runs `body` (returning a Status), catching every exception, and records
/// the outcome as the thread's last error.
template <typename Body> gqa_status guard(Body &&body) noexcept {
  lastErrorMessage.clear();
  try {
    Status status = body();
    if (!status.ok())
      setLastError(status.getMessage().c_str());
    return status.getCode();
  } catch (const std::bad_alloc &) {
    setLastError("out of host memory");
    return GQA_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception &error) {
    setLastError(error.what());
    return GQA_ERROR_INTERNAL;
  } catch (...) {
    setLastError("unknown C++ exception");
    return GQA_ERROR_INTERNAL;
  }
}

/// A failure for a NULL handle or pointer argument.
Status nullArgument(const char *function, const char *argument) {
  return Status::failure(GQA_ERROR_INVALID_ARGUMENT,
                         std::string(function) + ": " + argument + " is NULL");
}

/// The failure of a call that reads one kind of kernel set given the other.
Status wrongKind(const char *function, const KernelMetadata &metadata) {
  return Status::failure(
      GQA_ERROR_INVALID_ARGUMENT,
      std::string(function) +
          (metadata.isMergeStates()
               ? ": the metadata describes a gqa.merge_states kernel set, "
                 "which has no attention config, tile or split_kv (read its "
                 "config with gqa_metadata_get_merge_config)"
               : ": the metadata describes an attention kernel set "
                 "(gqa.kernel), which has no merge config (read its config "
                 "with gqa_metadata_get_config)"));
}

Status readFile(const std::string &path, std::string &contents) {
  std::ifstream file(path, std::ios::binary);
  if (file) {
    std::ostringstream buffer;
    buffer << file.rdbuf();
    if (file) {
      contents = std::move(buffer).str();
      return Status::success();
    }
  }
  return Status::failure(GQA_ERROR_IO,
                         "cannot read '" + path + "': " + std::strerror(errno));
}

Status loadKernel(gqa_runtime runtime, std::string_view ptx,
                  KernelMetadata metadata, gqa_kernel *kernel) {
  auto loaded = std::make_unique<gqa_kernel_s>();
  loaded->metadata.metadata = std::move(metadata);
  if (Status status = runtime->runtime->loadKernel(
          ptx, loaded->metadata.metadata, loaded->loaded);
      !status.ok())
    return status;
  *kernel = loaded.release();
  return Status::success();
}

} // namespace

extern "C" {

const char *gqa_status_name(gqa_status status) {
  switch (status) {
  case GQA_SUCCESS:
    return "GQA_SUCCESS";
  case GQA_ERROR_INVALID_ARGUMENT:
    return "GQA_ERROR_INVALID_ARGUMENT";
  case GQA_ERROR_INVALID_METADATA:
    return "GQA_ERROR_INVALID_METADATA";
  case GQA_ERROR_IO:
    return "GQA_ERROR_IO";
  case GQA_ERROR_DRIVER_UNAVAILABLE:
    return "GQA_ERROR_DRIVER_UNAVAILABLE";
  case GQA_ERROR_CUDA:
    return "GQA_ERROR_CUDA";
  case GQA_ERROR_UNSUPPORTED_DEVICE:
    return "GQA_ERROR_UNSUPPORTED_DEVICE";
  case GQA_ERROR_OUT_OF_MEMORY:
    return "GQA_ERROR_OUT_OF_MEMORY";
  case GQA_ERROR_INTERNAL:
    return "GQA_ERROR_INTERNAL";
  }
  return "GQA_STATUS_UNKNOWN";
}

const char *gqa_last_error_message(void) { return lastErrorMessage.c_str(); }

int32_t gqa_runtime_abi_version(void) { return GQA_RUNTIME_ABI_VERSION; }

gqa_status gqa_metadata_parse(const char *json, size_t json_size,
                              gqa_metadata *metadata) {
  return guard([&] {
    if (!json)
      return nullArgument("gqa_metadata_parse", "json");
    if (!metadata)
      return nullArgument("gqa_metadata_parse", "metadata");
    auto parsed = std::make_unique<gqa_metadata_s>();
    if (Status status = parseKernelMetadata(std::string_view(json, json_size),
                                            parsed->metadata);
        !status.ok())
      return status;
    *metadata = parsed.release();
    return Status::success();
  });
}

void gqa_metadata_destroy(gqa_metadata metadata) { delete metadata; }

gqa_status gqa_metadata_get_config(gqa_metadata metadata,
                                   gqa_kernel_config *config) {
  return guard([&] {
    if (!metadata)
      return nullArgument("gqa_metadata_get_config", "metadata");
    if (!config)
      return nullArgument("gqa_metadata_get_config", "config");
    if (metadata->metadata.isMergeStates())
      return wrongKind("gqa_metadata_get_config", metadata->metadata);
    *config = metadata->metadata.config;
    return Status::success();
  });
}

gqa_status gqa_metadata_get_kind(gqa_metadata metadata,
                                 gqa_kernel_set_kind *kind) {
  return guard([&] {
    if (!metadata)
      return nullArgument("gqa_metadata_get_kind", "metadata");
    if (!kind)
      return nullArgument("gqa_metadata_get_kind", "kind");
    *kind = metadata->metadata.kind;
    return Status::success();
  });
}

gqa_status gqa_metadata_get_merge_config(gqa_metadata metadata,
                                         gqa_merge_config *config) {
  return guard([&] {
    if (!metadata)
      return nullArgument("gqa_metadata_get_merge_config", "metadata");
    if (!config)
      return nullArgument("gqa_metadata_get_merge_config", "config");
    if (!metadata->metadata.isMergeStates())
      return wrongKind("gqa_metadata_get_merge_config", metadata->metadata);
    *config = metadata->metadata.mergeConfig;
    return Status::success();
  });
}

gqa_status gqa_metadata_get_tiling(gqa_metadata metadata,
                                   gqa_kernel_tiling *tiling) {
  return guard([&] {
    if (!metadata)
      return nullArgument("gqa_metadata_get_tiling", "metadata");
    if (!tiling)
      return nullArgument("gqa_metadata_get_tiling", "tiling");
    if (metadata->metadata.isMergeStates())
      return wrongKind("gqa_metadata_get_tiling", metadata->metadata);
    *tiling = metadata->metadata.tiling;
    return Status::success();
  });
}

const char *gqa_metadata_chip(gqa_metadata metadata) {
  return metadata ? metadata->metadata.chip.c_str() : "";
}

const char *gqa_metadata_ptx_file(gqa_metadata metadata) {
  return metadata ? metadata->metadata.ptxFile.c_str() : "";
}

gqa_status gqa_plan_launch(gqa_metadata metadata, const gqa_launch_args *args,
                           int32_t sm_count, gqa_launch_plan *plan) {
  return guard([&] {
    if (!metadata)
      return nullArgument("gqa_plan_launch", "metadata");
    if (!args)
      return nullArgument("gqa_plan_launch", "args");
    if (!plan)
      return nullArgument("gqa_plan_launch", "plan");
    return planLaunch(metadata->metadata, *args, sm_count, *plan);
  });
}

gqa_status gqa_plan_merge(gqa_metadata metadata, const gqa_merge_args *args,
                          gqa_kernel_launch_config *launch) {
  return guard([&] {
    if (!metadata)
      return nullArgument("gqa_plan_merge", "metadata");
    if (!args)
      return nullArgument("gqa_plan_merge", "args");
    if (!launch)
      return nullArgument("gqa_plan_merge", "launch");
    return planMerge(metadata->metadata, *args, *launch);
  });
}

gqa_status gqa_runtime_create(int32_t device_ordinal, gqa_runtime *runtime) {
  return gqa_runtime_create_with_driver(device_ordinal, nullptr, runtime);
}

gqa_status gqa_runtime_create_with_driver(int32_t device_ordinal,
                                          const char *driver_library,
                                          gqa_runtime *runtime) {
  return guard([&] {
    if (!runtime)
      return nullArgument("gqa_runtime_create", "runtime");
    auto created = std::make_unique<gqa_runtime_s>();
    if (Status status = DeviceRuntime::create(device_ordinal, driver_library,
                                              created->runtime);
        !status.ok())
      return std::move(status).withContext("creating the runtime for device " +
                                           std::to_string(device_ordinal));
    *runtime = created.release();
    return Status::success();
  });
}

void gqa_runtime_destroy(gqa_runtime runtime) { delete runtime; }

gqa_status gqa_runtime_get_device_info(gqa_runtime runtime,
                                       gqa_device_info *info) {
  return guard([&] {
    if (!runtime)
      return nullArgument("gqa_runtime_get_device_info", "runtime");
    if (!info)
      return nullArgument("gqa_runtime_get_device_info", "info");
    *info = runtime->runtime->getDeviceInfo();
    return Status::success();
  });
}

gqa_status gqa_runtime_get_context(gqa_runtime runtime, void **cu_context) {
  return guard([&] {
    if (!runtime)
      return nullArgument("gqa_runtime_get_context", "runtime");
    if (!cu_context)
      return nullArgument("gqa_runtime_get_context", "cu_context");
    *cu_context = runtime->runtime->getContext();
    return Status::success();
  });
}

gqa_status gqa_kernel_load(gqa_runtime runtime, const char *ptx,
                           size_t ptx_size, const char *metadata_json,
                           size_t metadata_json_size, gqa_kernel *kernel) {
  return guard([&] {
    if (!runtime)
      return nullArgument("gqa_kernel_load", "runtime");
    if (!ptx)
      return nullArgument("gqa_kernel_load", "ptx");
    if (!metadata_json)
      return nullArgument("gqa_kernel_load", "metadata_json");
    if (!kernel)
      return nullArgument("gqa_kernel_load", "kernel");
    KernelMetadata metadata;
    if (Status status = parseKernelMetadata(
            std::string_view(metadata_json, metadata_json_size), metadata);
        !status.ok())
      return status;
    return loadKernel(runtime, std::string_view(ptx, ptx_size),
                      std::move(metadata), kernel);
  });
}

gqa_status gqa_kernel_load_files(gqa_runtime runtime, const char *ptx_path,
                                 const char *metadata_path,
                                 gqa_kernel *kernel) {
  return guard([&] {
    if (!runtime)
      return nullArgument("gqa_kernel_load_files", "runtime");
    if (!metadata_path)
      return nullArgument("gqa_kernel_load_files", "metadata_path");
    if (!kernel)
      return nullArgument("gqa_kernel_load_files", "kernel");
    std::string json;
    if (Status status = readFile(metadata_path, json); !status.ok())
      return status;
    KernelMetadata metadata;
    if (Status status = parseKernelMetadata(json, metadata); !status.ok())
      return std::move(status).withContext(metadata_path);
    std::string resolvedPtxPath;
    if (ptx_path) {
      resolvedPtxPath = ptx_path;
    } else if (metadata.ptxFile.front() == '/') {
      resolvedPtxPath = metadata.ptxFile;
    } else {
      std::string_view directory(metadata_path);
      size_t slash = directory.rfind('/');
      directory = slash == std::string_view::npos
                      ? std::string_view()
                      : directory.substr(0, slash + 1);
      resolvedPtxPath = std::string(directory) + metadata.ptxFile;
    }
    std::string ptx;
    if (Status status = readFile(resolvedPtxPath, ptx); !status.ok())
      return status;
    return loadKernel(runtime, ptx, std::move(metadata), kernel)
        .withContext(resolvedPtxPath);
  });
}

void gqa_kernel_destroy(gqa_kernel kernel) { delete kernel; }

gqa_metadata gqa_kernel_metadata(gqa_kernel kernel) {
  return kernel ? &kernel->metadata : nullptr;
}

gqa_status gqa_kernel_get_module(gqa_kernel kernel, void **cu_module) {
  return guard([&] {
    if (!kernel)
      return nullArgument("gqa_kernel_get_module", "kernel");
    if (!cu_module)
      return nullArgument("gqa_kernel_get_module", "cu_module");
    *cu_module = kernel->loaded.module->getHandle();
    return Status::success();
  });
}

gqa_status gqa_kernel_plan(gqa_kernel kernel, const gqa_launch_args *args,
                           gqa_launch_plan *plan) {
  return guard([&] {
    if (!kernel)
      return nullArgument("gqa_kernel_plan", "kernel");
    if (!args)
      return nullArgument("gqa_kernel_plan", "args");
    if (!plan)
      return nullArgument("gqa_kernel_plan", "plan");
    return planLaunch(
        kernel->metadata.metadata, *args,
        kernel->loaded.module->getRuntime().getDeviceInfo().sm_count, *plan);
  });
}

gqa_status gqa_kernel_workspace_bytes(gqa_kernel kernel,
                                      const gqa_launch_args *args,
                                      uint64_t *workspace_bytes) {
  if (!workspace_bytes)
    return guard([] {
      return nullArgument("gqa_kernel_workspace_bytes", "workspace_bytes");
    });
  gqa_launch_plan plan;
  gqa_status status = gqa_kernel_plan(kernel, args, &plan);
  *workspace_bytes = status == GQA_SUCCESS ? plan.workspace_bytes : 0;
  return status;
}

gqa_status gqa_kernel_launch(gqa_kernel kernel, const gqa_launch_args *args) {
  return guard([&] {
    if (!kernel)
      return nullArgument("gqa_kernel_launch", "kernel");
    if (!args)
      return nullArgument("gqa_kernel_launch", "args");
    return kernel->loaded.module->getRuntime().launch(kernel->metadata.metadata,
                                                      kernel->loaded, *args);
  });
}

gqa_status gqa_kernel_merge_states(gqa_kernel kernel,
                                   const gqa_merge_args *args) {
  return guard([&] {
    if (!kernel)
      return nullArgument("gqa_kernel_merge_states", "kernel");
    if (!args)
      return nullArgument("gqa_kernel_merge_states", "args");
    return kernel->loaded.module->getRuntime().mergeStates(
        kernel->metadata.metadata, kernel->loaded, *args);
  });
}

} // extern "C"
