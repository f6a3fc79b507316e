//===- KernelMetadata.cpp - PTX and metadata of gqa's kernels -------------===//

#include "gqa/Target/KernelMetadata.h"
#include "gqa/Conversion/GQAToGPU/GQAToGPU.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace mlir::gqa;
namespace json = llvm::json;

namespace {

/// Reads typed entries of a dictionary attribute, remembering the first
/// missing or mistyped key.
class DictionaryReader {
public:
  DictionaryReader(DictionaryAttr dictionary, StringRef where)
      : dictionary(dictionary), where(where) {}

  int64_t integer(StringRef key) {
    if (auto attr = get<IntegerAttr>(key, "an integer"))
      return attr.getInt();
    return 0;
  }
  std::optional<int64_t> optionalInteger(StringRef key) {
    if (!dictionary || !dictionary.get(key))
      return std::nullopt;
    return integer(key);
  }
  double real(StringRef key) {
    if (auto attr = get<FloatAttr>(key, "a float"))
      return attr.getValueAsDouble();
    return 0.0;
  }
  std::string string(StringRef key) {
    if (auto attr = get<StringAttr>(key, "a string"))
      return attr.getValue().str();
    return "";
  }
  bool boolean(StringRef key) {
    if (auto attr = get<BoolAttr>(key, "a bool"))
      return attr.getValue();
    return false;
  }

  /// The first problem, or an empty string.
  std::string error;

private:
  template <typename AttrT> AttrT get(StringRef key, StringRef kind) {
    Attribute value = dictionary ? dictionary.get(key) : Attribute();
    auto typed = dyn_cast_or_null<AttrT>(value);
    if (!typed && error.empty())
      error = (where + " lacks '" + key + "' (" + kind + ")").str();
    return typed;
  }

  DictionaryAttr dictionary;
  StringRef where;
};

std::string parameterType(Type type) {
  if (isa<MemRefType>(type))
    return "ptr";
  if (type.isInteger(32))
    return "i32";
  return "i64";
}

LogicalResult readKernel(gpu::GPUFuncOp func, KernelLaunchInfo &info,
                         std::optional<KernelSetTile> &tile) {
  using namespace gpu_kernel;
  auto fail = [&](const Twine &message) {
    return func.emitError() << "kernel metadata: " << message;
  };
  info.name = func.getName().str();
  auto role = func->getAttrOfType<StringAttr>(kRoleAttr);
  auto grid = func->getAttrOfType<ArrayAttr>(kGridAttr);
  auto params = func->getAttrOfType<ArrayAttr>(kParamsAttr);
  auto shared = func->getAttrOfType<IntegerAttr>(kDynamicSharedMemoryAttr);
  std::optional<ArrayRef<int32_t>> block = func.getKnownBlockSize();
  if (!role || !grid || grid.size() != 3 || !params || !shared || !block)
    return fail("the kernel lacks one of " + kRoleAttr + ", " + kGridAttr +
                ", " + kParamsAttr + ", " + kDynamicSharedMemoryAttr +
                " or known_block_size");
  info.role = role.getValue().str();
  for (int d = 0; d < 3; ++d)
    info.block[d] = (*block)[d];
  info.dynamicSharedMemoryBytes = shared.getInt();
  // Every array lives in the extern dynamic shared memory.
  info.staticSharedMemoryBytes = 0;
  for (auto [d, attr] : llvm::enumerate(grid)) {
    auto dictionary = dyn_cast<DictionaryAttr>(attr);
    DictionaryReader reader(dictionary, "a grid dimension");
    GridDimension &dim = info.grid[d];
    dim.constant = reader.optionalInteger("const");
    if (!dim.constant) {
      dim.symbol = reader.string("sym");
      dim.mul = reader.optionalInteger("mul").value_or(1);
      dim.add = reader.optionalInteger("add").value_or(0);
      dim.div = reader.optionalInteger("div").value_or(1);
    }
    if (!reader.error.empty())
      return fail(reader.error);
  }
  FunctionType type = func.getFunctionType();
  if (params.size() != type.getNumInputs())
    return fail("the kernel has " + Twine(type.getNumInputs()) +
                " parameters but " + Twine(params.size()) + " names");
  for (auto [name, paramType] : llvm::zip(params, type.getInputs())) {
    auto text = dyn_cast<StringAttr>(name);
    if (!text)
      return fail("a parameter name is not a string");
    info.params.push_back({text.getValue().str(), parameterType(paramType)});
  }
  if (auto tileAttr = func->getAttrOfType<DictionaryAttr>(kTileAttr)) {
    DictionaryReader reader(tileAttr, kTileAttr);
    KernelSetTile read;
    read.blockM = reader.integer("block_m");
    read.blockN = reader.integer("block_n");
    read.warps = reader.integer("warps");
    read.stages = reader.integer("stages");
    read.packGQA = reader.boolean("pack_gqa");
    if (!reader.error.empty())
      return fail(reader.error);
    tile = read;
  }
  return success();
}

/// The config of a merge set.
LogicalResult readMergeSet(gpu::GPUModuleOp gpuModule, DictionaryAttr config,
                           KernelSetMetadata &set) {
  DictionaryReader reader(config, gpu_kernel::kConfigAttr);
  MergeSetConfig &c = set.mergeConfig;
  c.heads = reader.integer("heads");
  c.headDimV = reader.integer("head_dim_v");
  c.dtype = reader.string("dtype");
  c.layout = reader.string("layout");
  c.varlen = reader.boolean("varlen");
  c.batch = reader.optionalInteger("batch");
  c.seqQ = reader.optionalInteger("seq_q");
  if (!reader.error.empty())
    return gpuModule.emitError() << "kernel metadata: " << reader.error;
  if (set.kernels.size() != 1)
    return gpuModule.emitError()
           << "kernel metadata: a merge set has exactly one kernel, not "
           << set.kernels.size();
  return success();
}

LogicalResult readKernelSet(gpu::GPUModuleOp gpuModule, DictionaryAttr config,
                            KernelSetMetadata &set) {
  using namespace gpu_kernel;
  set.moduleName = gpuModule.getName().str();
  std::optional<KernelSetTile> tile;
  for (auto func : gpuModule.getOps<gpu::GPUFuncOp>()) {
    if (!func.isKernel())
      continue;
    KernelLaunchInfo info;
    if (failed(readKernel(func, info, tile)))
      return failure();
    set.kernels.push_back(std::move(info));
  }
  set.merge = llvm::any_of(set.kernels, [](const KernelLaunchInfo &kernel) {
    return kernel.role == "merge";
  });
  if (set.merge)
    return readMergeSet(gpuModule, config, set);

  DictionaryReader reader(config, kConfigAttr);
  KernelSetConfig &c = set.config;
  c.qHeads = reader.integer("q_heads");
  c.kvHeads = reader.integer("kv_heads");
  c.groupSize = reader.integer("group_size");
  c.headDim = reader.integer("head_dim");
  c.headDimV = reader.integer("head_dim_v");
  c.dtype = reader.string("dtype");
  c.layout = reader.string("layout");
  c.mask = reader.string("mask");
  c.windowLeft = reader.integer("window_left");
  c.windowRight = reader.integer("window_right");
  c.scale = reader.real("scale");
  c.softcap = reader.real("softcap");
  c.kvLens = reader.string("kv_lens");
  c.pageSize = reader.integer("page_size");
  c.sinks = reader.boolean("sinks");
  c.lse = reader.boolean("lse");
  c.varlen = reader.boolean("varlen");
  c.packedKV = reader.boolean("packed_kv");
  c.batch = reader.optionalInteger("batch");
  c.seqQ = reader.optionalInteger("seq_q");
  c.seqKV = reader.optionalInteger("seq_kv");
  DictionaryReader splitReader(
      gpuModule->getAttrOfType<DictionaryAttr>(kSplitKVAttr), kSplitKVAttr);
  set.maxSplits = splitReader.integer("max_splits");
  for (const std::string &error : {reader.error, splitReader.error})
    if (!error.empty())
      return gpuModule.emitError() << "kernel metadata: " << error;
  if (set.kernels.empty() || !tile)
    return gpuModule.emitError()
           << "kernel metadata: no kernel with a " << kTileAttr << " attribute";
  set.tile = *tile;
  return success();
}

void writeGridDimension(json::OStream &j, const GridDimension &dim) {
  j.object([&] {
    if (dim.constant) {
      j.attribute("const", *dim.constant);
      return;
    }
    j.attribute("sym", dim.symbol);
    if (dim.mul != 1)
      j.attribute("mul", dim.mul);
    if (dim.add != 0)
      j.attribute("add", dim.add);
    if (dim.div != 1)
      j.attribute("div", dim.div);
  });
}

json::Value optionalSize(std::optional<int64_t> size) {
  if (size)
    return *size;
  return nullptr;
}

void writeKernels(json::OStream &j, ArrayRef<KernelLaunchInfo> kernels) {
  j.attributeArray("kernels", [&] {
    for (const KernelLaunchInfo &kernel : kernels) {
      j.object([&] {
        j.attribute("name", kernel.name);
        j.attribute("role", kernel.role);
        j.attributeArray("block", [&] {
          for (int64_t extent : kernel.block)
            j.value(extent);
        });
        j.attribute("dynamic_shared_memory_bytes",
                    kernel.dynamicSharedMemoryBytes);
        j.attribute("static_shared_memory_bytes",
                    kernel.staticSharedMemoryBytes);
        j.attributeArray("grid", [&] {
          for (const GridDimension &dim : kernel.grid)
            writeGridDimension(j, dim);
        });
        j.attributeArray("params", [&] {
          for (const KernelParameter &param : kernel.params)
            j.object([&] {
              j.attribute("name", param.name);
              j.attribute("type", param.type);
            });
        });
      });
    }
  });
}

/// The keys every document starts with.
void writeHeader(json::OStream &j, StringRef format, int64_t version,
                 StringRef chip, StringRef ptxFile) {
  j.attribute("format", format);
  j.attribute("version", version);
  j.attribute("chip", chip);
  j.attribute("ptx", ptxFile);
}

/// The metadata of a merge set (format "gqa.merge_states").
void writeMergeMetadata(json::OStream &j, const KernelSetMetadata &set,
                        StringRef chip, StringRef ptxFile) {
  const MergeSetConfig &c = set.mergeConfig;
  j.object([&] {
    writeHeader(j, "gqa.merge_states", kMergeMetadataVersion, chip, ptxFile);
    j.attributeObject("config", [&] {
      j.attribute("heads", c.heads);
      j.attribute("head_dim_v", c.headDimV);
      j.attribute("dtype", c.dtype);
      j.attribute("layout", c.layout);
      j.attribute("varlen", c.varlen);
      j.attribute("batch", optionalSize(c.batch));
      j.attribute("seq_q", optionalSize(c.seqQ));
    });
    writeKernels(j, set.kernels);
  });
}

} // namespace

FailureOr<std::vector<KernelSetMetadata>>
mlir::gqa::collectKernelSets(ModuleOp module) {
  std::vector<KernelSetMetadata> sets;
  for (auto gpuModule : module.getOps<gpu::GPUModuleOp>()) {
    auto config =
        gpuModule->getAttrOfType<DictionaryAttr>(gpu_kernel::kConfigAttr);
    if (!config)
      continue;
    KernelSetMetadata set;
    if (failed(readKernelSet(gpuModule, config, set)))
      return failure();
    sets.push_back(std::move(set));
  }
  return sets;
}

void mlir::gqa::writeKernelMetadata(llvm::raw_ostream &os,
                                    const KernelSetMetadata &set,
                                    StringRef chip, StringRef ptxFile) {
  json::OStream j(os, /*IndentSize=*/2);
  if (set.merge) {
    writeMergeMetadata(j, set, chip, ptxFile);
    os << "\n";
    return;
  }
  const KernelSetConfig &c = set.config;
  j.object([&] {
    writeHeader(j, "gqa.kernel", kKernelMetadataVersion, chip, ptxFile);
    j.attributeObject("config", [&] {
      j.attribute("q_heads", c.qHeads);
      j.attribute("kv_heads", c.kvHeads);
      j.attribute("group_size", c.groupSize);
      j.attribute("head_dim", c.headDim);
      j.attribute("head_dim_v", c.headDimV);
      j.attribute("dtype", c.dtype);
      j.attribute("layout", c.layout);
      j.attribute("mask", c.mask);
      j.attribute("window_left", c.windowLeft);
      j.attribute("window_right", c.windowRight);
      j.attribute("scale", c.scale);
      j.attribute("softcap", c.softcap);
      j.attribute("kv_lens", c.kvLens);
      j.attribute("page_size", c.pageSize);
      j.attribute("sinks", c.sinks);
      j.attribute("lse", c.lse);
      j.attribute("varlen", c.varlen);
      j.attribute("packed_kv", c.packedKV);
      j.attribute("batch", optionalSize(c.batch));
      j.attribute("seq_q", optionalSize(c.seqQ));
      j.attribute("seq_kv", optionalSize(c.seqKV));
    });
    j.attributeObject("tile", [&] {
      j.attribute("block_m", set.tile.blockM);
      j.attribute("block_n", set.tile.blockN);
      j.attribute("warps", set.tile.warps);
      j.attribute("stages", set.tile.stages);
      j.attribute("pack_gqa", set.tile.packGQA);
    });
    j.attributeObject("split_kv",
                      [&] { j.attribute("max_splits", set.maxSplits); });
    writeKernels(j, set.kernels);
  });
  os << "\n";
}

FailureOr<std::string> mlir::gqa::extractPTX(ModuleOp module,
                                             StringRef binaryName) {
  auto binary = module.lookupSymbol<gpu::BinaryOp>(binaryName);
  if (!binary)
    return module.emitError()
           << "no gpu.binary @" << binaryName
           << " (run gpu-module-to-binary{format=isa} first)";
  for (Attribute attr : binary.getObjects()) {
    auto object = dyn_cast<gpu::ObjectAttr>(attr);
    if (object && object.getFormat() == gpu::CompilationTarget::Assembly)
      return object.getObject().getValue().str();
  }
  return binary.emitError()
         << "gpu.binary @" << binaryName << " holds no PTX (assembly) object";
}
