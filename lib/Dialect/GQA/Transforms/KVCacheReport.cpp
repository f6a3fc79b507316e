//===- KVCacheReport.cpp - KV-cache size of a model -----------------------===//
//
// Prints the K/V cache each attention op (a model layer) needs, and the sum
// over the module, against the same model with multi-head attention.
//
//===----------------------------------------------------------------------===//

#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "gqa/Dialect/GQA/Transforms/Passes.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::gqa {
#define GEN_PASS_DEF_GQAKVCACHEREPORT
#include "gqa/Dialect/GQA/Transforms/Passes.h.inc"
} // namespace mlir::gqa

using namespace mlir;
using namespace mlir::gqa;

namespace {

/// Exact K/V cache sizes, in bytes, of one layer or of a whole model.
struct CacheBytes {
  uint64_t perToken = 0;
  uint64_t total = 0;
  uint64_t mhaTotal = 0;
};

/// `a * b * ...`, or nullopt on 64-bit overflow.
std::optional<uint64_t> multiply(std::initializer_list<uint64_t> factors) {
  std::optional<uint64_t> product = 1;
  for (uint64_t factor : factors) {
    product = llvm::checkedMulUnsigned(*product, factor);
    if (!product)
      return std::nullopt;
  }
  return product;
}

void printSaving(llvm::raw_ostream &os, const CacheBytes &bytes) {
  os << "kv bytes/token " << bytes.perToken << ", kv bytes " << bytes.total
     << ", mha bytes " << bytes.mhaTotal;
  if (bytes.total == 0)
    return;
  double factor = static_cast<double>(bytes.mhaTotal) / bytes.total;
  double percent = 100.0 * (1.0 - 1.0 / factor);
  os << ", saving " << llvm::format("%g", factor) << "x ("
     << llvm::format("%g", percent) << "% less)";
}

struct GQAKVCacheReportPass
    : public gqa::impl::GQAKVCacheReportBase<GQAKVCacheReportPass> {
  using Base::Base;

  void runOnOperation() override {
    llvm::raw_ostream &os = llvm::outs();
    os << "gqa-kv-cache-report: seq_len " << seqLen << ", batch " << batch
       << "\n";
    CacheBytes model;
    unsigned layer = 0;
    WalkResult walk = getOperation().walk([&](AttentionOp op) {
      std::optional<CacheBytes> bytes = layerBytes(op);
      std::optional<uint64_t> total =
          bytes ? llvm::checkedAddUnsigned(model.total, bytes->total)
                : std::nullopt;
      std::optional<uint64_t> mhaTotal =
          bytes ? llvm::checkedAddUnsigned(model.mhaTotal, bytes->mhaTotal)
                : std::nullopt;
      if (!total || !mhaTotal) {
        op.emitError() << "KV-cache size at seq-len "
                       << static_cast<uint64_t>(seqLen) << ", batch "
                       << static_cast<uint64_t>(batch)
                       << " does not fit in 64 bits";
        return WalkResult::interrupt();
      }
      model.perToken += bytes->perToken;
      model.total = *total;
      model.mhaTotal = *mhaTotal;
      if (perOp) {
        os << "layer " << layer << ": q_heads " << op.getQHeads()
           << ", kv_heads " << op.getKvHeads() << ", group "
           << op.getGroupSize() << ", head_dim " << op.getHeadDim()
           << ", head_dim_v " << op.getHeadDimV() << ", " << op.getElementType()
           << ": ";
        printSaving(os, *bytes);
        os << "\n";
      }
      ++layer;
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();
    os << "model: layers " << layer << ", ";
    printSaving(os, model);
    os << "\n";
    markAllAnalysesPreserved();
  }

  /// The cache of one layer: K holds D and V holds Dv elements per KV head and
  /// token.
  std::optional<CacheBytes> layerBytes(AttentionOp op) {
    uint64_t elementBytes = op.getElementType().getIntOrFloatBitWidth() / 8;
    uint64_t elementsPerHead = op.getHeadDim() + op.getHeadDimV();
    std::optional<uint64_t> perToken =
        multiply({static_cast<uint64_t>(op.getKvHeads()), elementsPerHead,
                  elementBytes});
    std::optional<uint64_t> mhaPerToken = multiply(
        {static_cast<uint64_t>(op.getQHeads()), elementsPerHead, elementBytes});
    if (!perToken || !mhaPerToken)
      return std::nullopt;
    std::optional<uint64_t> total = multiply({*perToken, seqLen, batch});
    std::optional<uint64_t> mhaTotal = multiply({*mhaPerToken, seqLen, batch});
    if (!total || !mhaTotal)
      return std::nullopt;
    return CacheBytes{*perToken, *total, *mhaTotal};
  }
};

} // namespace
