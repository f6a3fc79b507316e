//===- CPURunner.cpp - JIT-compile and run attention on the CPU -----------===//

#include "gqa/Tools/CPURunner.h"
#include "gqa/InitAll.h"
#include "gqa/Pipelines/Pipelines.h"
#include "gqa/Tools/AttentionModule.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/Mangling.h"
#include "llvm/Support/TargetSelect.h"

#include <cstdlib>
#include <dlfcn.h>
#include <mutex>
#include <vector>

using namespace mlir;
using namespace mlir::gqa;

namespace {

/// A ranked memref descriptor as func-to-llvm passes it through the C
/// interface.
template <int Rank> struct MemRefDescriptor {
  const void *allocated;
  const void *aligned;
  int64_t offset;
  int64_t sizes[Rank];
  int64_t strides[Rank];
};

/// A contiguous descriptor of a (B, heads, S, dim) tensor in the layout.
MemRefDescriptor<4> describeTensor(const AttentionSpec &spec, const void *data,
                                   int64_t batch, int64_t heads, int64_t seq,
                                   int64_t dim) {
  MemRefDescriptor<4> descriptor{data, data, 0, {}, {}};
  int64_t shape[4] = {batch, spec.bshd ? seq : heads, spec.bshd ? heads : seq,
                      dim};
  int64_t stride = 1;
  for (int i = 3; i >= 0; --i) {
    descriptor.sizes[i] = shape[i];
    descriptor.strides[i] = stride;
    stride *= shape[i];
  }
  return descriptor;
}

/// The symbols MLIR's async runtime exports to JIT-compiled code (its
/// `__mlir_execution_engine_init`), loaded once per process, or an error.
///
/// Not through ExecutionEngineOptions::sharedLibPaths: that dlopens with
/// RTLD_GLOBAL, which puts the runtime's libLLVM into the process's global
/// scope, where it then interposes on the LLVM that other libraries loaded
/// later carry statically (Triton's, imported with PyTorch), which crash in
/// their static initialisers. RTLD_LOCAL keeps it to itself.
llvm::Expected<const llvm::StringMap<void *> &> asyncRuntimeSymbols() {
  static llvm::StringMap<void *> symbols;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    void *library = dlopen(GQA_MLIR_ASYNC_RUNTIME, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      error = std::string("cannot load MLIR's async runtime: ") + dlerror();
      return;
    }
    auto init = reinterpret_cast<ExecutionEngine::LibraryInitFn>(
        dlsym(library, ExecutionEngine::kLibraryInitFnName));
    if (!init) {
      error = std::string(GQA_MLIR_ASYNC_RUNTIME) + " has no " +
              ExecutionEngine::kLibraryInitFnName;
      return;
    }
    init(symbols);
    // Its worker threads must stop before the process unloads it, as
    // ExecutionEngine's destructor would stop them.
    static auto destroy = reinterpret_cast<ExecutionEngine::LibraryDestroyFn>(
        dlsym(library, ExecutionEngine::kLibraryDestroyFnName));
    if (destroy)
      std::atexit([] { destroy(); });
  });
  if (!error.empty())
    return llvm::createStringError(error);
  return symbols;
}

/// Collects the diagnostics of a failed compilation into one message.
class DiagnosticCollector {
public:
  explicit DiagnosticCollector(MLIRContext &context)
      : handler(&context, [this](Diagnostic &diagnostic) {
          if (!messages.empty())
            messages += "; ";
          messages += diagnostic.str();
          return success();
        }) {}
  std::string messages;

private:
  ScopedDiagnosticHandler handler;
};

} // namespace

JITFunction::JITFunction(std::unique_ptr<ExecutionEngine> engine,
                         void (*entry)(void **), bool parallel)
    : engine(std::move(engine)), entry(entry), parallel(parallel) {}

JITFunction::~JITFunction() {
  // A worker of the async runtime may still be returning through the JIT'd
  // code of a block it finished (the run returned when the block's token
  // was set, not when its coroutine frame unwound), and nothing in the
  // runtime's API waits for that short of destroying the runtime. So the
  // code of a parallel kernel stays mapped until the process exits, after
  // the runtime's workers stopped (asyncRuntimeSymbols).
  if (!parallel)
    return;
  static std::mutex mutex;
  static auto *retired = new std::vector<std::unique_ptr<ExecutionEngine>>();
  std::lock_guard<std::mutex> lock(mutex);
  retired->push_back(std::move(engine));
}

/// The context the CPU path builds and lowers its modules in.
static DialectRegistry getCPURegistry() {
  DialectRegistry registry;
  registerAllDialects(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  return registry;
}

llvm::Expected<std::unique_ptr<JITFunction>>
JITFunction::compile(ModuleOp module, const CPUSchedule &schedule,
                     llvm::StringRef name) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  DiagnosticCollector diagnostics(*module.getContext());
  PassManager pm(module.getContext());
  CPUPipelineOptions options;
  options.schedule = schedule.target;
  options.blockM = schedule.blockM;
  options.blockN = schedule.blockN;
  options.maxSplits = schedule.maxSplits;
  options.threads = schedule.threads;
  buildGQAToLLVMCPUPipeline(pm, options);
  if (failed(pm.run(module)))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "lowering to LLVM failed: %s",
                                   diagnostics.messages.c_str());

  // Optimise for this host: without its target machine the vectorizer would
  // see no vector registers.
  auto hostBuilder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!hostBuilder)
    return hostBuilder.takeError();
  auto targetMachine = hostBuilder->createTargetMachine();
  if (!targetMachine)
    return targetMachine.takeError();
  ExecutionEngineOptions engineOptions;
  auto optimize = makeOptimizingTransformer(/*optLevel=*/3, /*sizeLevel=*/0,
                                            targetMachine->get());
  engineOptions.transformer = optimize;
  auto engine =
      ExecutionEngine::create(module, engineOptions, std::move(*targetMachine));
  if (!engine)
    return engine.takeError();
  // The async runtime's thread pool runs the blocks of a parallel kernel.
  if (schedule.threads > 1) {
    auto runtime = asyncRuntimeSymbols();
    if (!runtime)
      return runtime.takeError();
    (*engine)->registerSymbols([&](llvm::orc::MangleAndInterner interner) {
      llvm::orc::SymbolMap map;
      for (const auto &symbol : *runtime)
        map[interner(symbol.getKey())] = {
            llvm::orc::ExecutorAddr::fromPtr(symbol.getValue()),
            llvm::JITSymbolFlags::Exported};
      return map;
    });
  }
  auto entry = (*engine)->lookupPacked(("_mlir_ciface_" + name).str());
  if (!entry)
    return entry.takeError();
  return std::unique_ptr<JITFunction>(
      new JITFunction(std::move(*engine), *entry, schedule.threads > 1));
}

llvm::Expected<std::unique_ptr<CPUKernel>>
CPUKernel::compile(const AttentionSpec &spec, const CPUSchedule &schedule) {
  MLIRContext context(getCPURegistry());
  DiagnosticCollector diagnostics(context);
  OwningOpRef<ModuleOp> module =
      buildAttentionModule(context, spec, "gqa_attention");
  if (!module)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "invalid attention configuration: %s",
                                   diagnostics.messages.c_str());
  auto function = JITFunction::compile(*module, schedule, "gqa_attention");
  if (!function)
    return function.takeError();
  return std::unique_ptr<CPUKernel>(new CPUKernel(spec, std::move(*function)));
}

llvm::Expected<std::unique_ptr<CPUMergeKernel>>
CPUMergeKernel::compile(const MergeStatesSpec &spec, int64_t threads) {
  MLIRContext context(getCPURegistry());
  DiagnosticCollector diagnostics(context);
  OwningOpRef<ModuleOp> module =
      buildMergeStatesModule(context, spec, "gqa_merge_states");
  if (!module)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "invalid merge configuration: %s",
                                   diagnostics.messages.c_str());
  CPUSchedule schedule;
  schedule.threads = threads;
  auto function = JITFunction::compile(*module, schedule, "gqa_merge_states");
  if (!function)
    return function.takeError();
  return std::unique_ptr<CPUMergeKernel>(
      new CPUMergeKernel(spec, std::move(*function)));
}

void CPUMergeKernel::run(int64_t batch, int64_t seqQ,
                         const CPUMergeOperands &operands) const {
  // The outputs as the attention's of a spec with their layout, dtype and
  // heads; packed tokens [T, H, Dv] and [H, T].
  AttentionSpec layout;
  layout.bshd = spec.bshd;
  int64_t heads = spec.heads, dv = spec.headDimV;
  auto outputOf = [&](const void *data) {
    return describeTensor(layout, data, batch, heads, seqQ, dv);
  };
  auto lseOf = [&](const float *data) {
    return MemRefDescriptor<3>{
        data, data, 0, {batch, heads, seqQ}, {heads * seqQ, seqQ, 1}};
  };
  auto tokensOf = [&](const void *data) {
    return MemRefDescriptor<3>{
        data, data, 0, {seqQ, heads, dv}, {heads * dv, dv, 1}};
  };
  auto tokenLseOf = [&](const float *data) {
    return MemRefDescriptor<2>{data, data, 0, {heads, seqQ}, {seqQ, 1}};
  };
  MemRefDescriptor<4> outputs[3] = {outputOf(operands.outA),
                                    outputOf(operands.outB),
                                    outputOf(operands.output)};
  MemRefDescriptor<3> lses[3] = {lseOf(operands.lseA), lseOf(operands.lseB),
                                 lseOf(operands.lse)};
  MemRefDescriptor<3> tokens[3] = {tokensOf(operands.outA),
                                   tokensOf(operands.outB),
                                   tokensOf(operands.output)};
  MemRefDescriptor<2> tokenLses[3] = {tokenLseOf(operands.lseA),
                                      tokenLseOf(operands.lseB),
                                      tokenLseOf(operands.lse)};
  // out_a, lse_a, out_b, lse_b, out, lse (AttentionModule.cpp).
  void *descriptors[6];
  for (int part = 0; part < 3; ++part) {
    descriptors[2 * part] =
        spec.varlen ? static_cast<void *>(&tokens[part]) : &outputs[part];
    descriptors[2 * part + 1] =
        spec.varlen ? static_cast<void *>(&tokenLses[part]) : &lses[part];
  }
  void *packed[6];
  for (int i = 0; i < 6; ++i)
    packed[i] = &descriptors[i];
  function->call(packed);
}

void CPUKernel::run(const AttentionSizes &sizes,
                    const CPUOperands &operands) const {
  int64_t dv = spec.valueHeadDim();
  auto q = describeTensor(spec, operands.query, sizes.batch, spec.qHeads,
                          sizes.seqQ, spec.headDim);
  auto k = describeTensor(spec, operands.key, sizes.batch, spec.kvHeads,
                          sizes.seqKV, spec.headDim);
  auto v = describeTensor(spec, operands.value, sizes.batch, spec.kvHeads,
                          sizes.seqKV, dv);
  auto o = describeTensor(spec, operands.output, sizes.batch, spec.qHeads,
                          sizes.seqQ, dv);
  MemRefDescriptor<1> lens{
      operands.kvLens, operands.kvLens, 0, {sizes.batch}, {1}};
  MemRefDescriptor<1> sinks{
      operands.sinks, operands.sinks, 0, {spec.qHeads}, {1}};
  MemRefDescriptor<3> lse{operands.lse,
                          operands.lse,
                          0,
                          {sizes.batch, spec.qHeads, sizes.seqQ},
                          {spec.qHeads * sizes.seqQ, sizes.seqQ, 1}};
  MemRefDescriptor<2> blockTable{};
  if (spec.isPaged()) {
    // The pools are [pages, page size, Hkv, D]: bshd-ordered.
    AttentionSpec pool = spec;
    pool.bshd = true;
    k = describeTensor(pool, operands.key, operands.numPages, spec.kvHeads,
                       spec.pageSize, spec.headDim);
    v = describeTensor(pool, operands.value, operands.numPages, spec.kvHeads,
                       spec.pageSize, dv);
    const int32_t *table = operands.blockTable;
    blockTable = {table,
                  table,
                  0,
                  {sizes.batch, operands.pagesPerSequence},
                  {operands.pagesPerSequence, 1}};
  }
  // A ragged batch: packed tokens [T, H, D] and their B+1 offsets.
  int64_t tokens = sizes.totalQueries(), keyTokens = sizes.totalKeys(spec);
  auto packedTokens = [](const void *data, int64_t rows, int64_t heads,
                         int64_t dim) {
    return MemRefDescriptor<3>{
        data, data, 0, {rows, heads, dim}, {heads * dim, dim, 1}};
  };
  MemRefDescriptor<3> qTokens =
      packedTokens(operands.query, tokens, spec.qHeads, spec.headDim);
  MemRefDescriptor<3> oTokens =
      packedTokens(operands.output, tokens, spec.qHeads, dv);
  MemRefDescriptor<3> kTokens =
      packedTokens(operands.key, keyTokens, spec.kvHeads, spec.headDim);
  MemRefDescriptor<3> vTokens =
      packedTokens(operands.value, keyTokens, spec.kvHeads, dv);
  MemRefDescriptor<1> cuQ{
      operands.cuSeqlensQ, operands.cuSeqlensQ, 0, {sizes.batch + 1}, {1}};
  MemRefDescriptor<1> cuK{
      operands.cuSeqlensK, operands.cuSeqlensK, 0, {sizes.batch + 1}, {1}};
  MemRefDescriptor<2> lseTokens{
      operands.lse, operands.lse, 0, {spec.qHeads, tokens}, {tokens, 1}};
  // The C interface takes a pointer to each descriptor, in operand order
  // (AttentionModule.cpp); the packed wrapper takes a pointer to each of
  // those.
  SmallVector<void *, 10> descriptors = {
      spec.varlen ? static_cast<void *>(&qTokens) : &q,
      spec.packedKV ? static_cast<void *>(&kTokens) : &k,
      spec.packedKV ? static_cast<void *>(&vTokens) : &v};
  if (spec.hasKVLens)
    descriptors.push_back(&lens);
  if (spec.isPaged())
    descriptors.push_back(&blockTable);
  if (spec.hasSinks)
    descriptors.push_back(&sinks);
  if (spec.varlen)
    descriptors.push_back(&cuQ);
  if (spec.packedKV)
    descriptors.push_back(&cuK);
  SmallVector<void *, 12> packed;
  for (void *&descriptor : descriptors)
    packed.push_back(&descriptor);
  // max_seqlen_q/k: index arguments, which the C interface takes by value
  // (so the packed wrapper points at the values themselves).
  int64_t longestQueries = sizes.seqQ, longestKeys = sizes.seqKV;
  if (spec.varlen)
    packed.push_back(&longestQueries);
  if (spec.packedKV)
    packed.push_back(&longestKeys);
  SmallVector<void *, 2> outputs = {spec.varlen ? static_cast<void *>(&oTokens)
                                                : &o};
  if (spec.returnLse)
    outputs.push_back(spec.varlen ? static_cast<void *>(&lseTokens) : &lse);
  for (void *&descriptor : outputs)
    packed.push_back(&descriptor);
  function->call(packed.data());
}
