//===- BufferizableOpInterfaceImpl.cpp - Bufferizing gqa ops --------------===//

#include "gqa/Dialect/GQA/Transforms/BufferizableOpInterfaceImpl.h"
#include "gqa/Dialect/GQA/IR/GQAOps.h"
#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Bufferization/IR/DstBufferizableOpInterfaceImpl.h"
#include "mlir/IR/DialectRegistry.h"

using namespace mlir;
using namespace mlir::bufferization;
using namespace mlir::gqa;

namespace {

/// A gqa op in destination-passing style whose inits are only written:
/// bufferization need not copy their contents.
template <typename ConcreteModel, typename OpT>
struct WriteOnlyInitsModel
    : public DstBufferizableOpInterfaceExternalModel<ConcreteModel, OpT> {
  bool bufferizesToMemoryRead(Operation *op, OpOperand &operand,
                              const AnalysisState &) const {
    return !cast<DestinationStyleOpInterface>(op).isDpsInit(&operand);
  }
};

/// Bufferizes `gqa.attention` in destination-passing style: the result is
/// written into the buffer of `outs`, which the op never reads.
struct AttentionOpInterface
    : public WriteOnlyInitsModel<AttentionOpInterface, AttentionOp> {
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto attention = cast<AttentionOp>(op);
    if (attention.hasPureBufferSemantics())
      return success();
    auto bufferOf = [&](Value value) -> FailureOr<Value> {
      if (!value)
        return Value();
      return getBuffer(rewriter, value, options, state);
    };
    FailureOr<Value> query = bufferOf(attention.getQuery());
    FailureOr<Value> key = bufferOf(attention.getKey());
    FailureOr<Value> value = bufferOf(attention.getValue());
    FailureOr<Value> kvLens = bufferOf(attention.getKvLens());
    FailureOr<Value> blockTable = bufferOf(attention.getBlockTable());
    FailureOr<Value> sinks = bufferOf(attention.getSinks());
    FailureOr<Value> cuSeqlensQ = bufferOf(attention.getCuSeqlensQ());
    FailureOr<Value> cuSeqlensK = bufferOf(attention.getCuSeqlensK());
    FailureOr<Value> init = bufferOf(attention.getInit());
    FailureOr<Value> lseInit = bufferOf(attention.getLseInit());
    if (failed(query) || failed(key) || failed(value) || failed(kvLens) ||
        failed(blockTable) || failed(sinks) || failed(cuSeqlensQ) ||
        failed(cuSeqlensK) || failed(init) || failed(lseInit))
      return failure();
    rewriter.setInsertionPoint(op);
    AttentionOp::create(rewriter, op->getLoc(), TypeRange(), *query, *key,
                        *value, *kvLens, *blockTable, *sinks, *cuSeqlensQ,
                        *cuSeqlensK, attention.getMaxSeqlenQ(),
                        attention.getMaxSeqlenK(), *init, *lseInit,
                        attention.getQHeadsAttr(), attention.getKvHeadsAttr(),
                        attention.getLayoutAttr(), attention.getMaskAttr(),
                        attention.getScaleAttr(), attention.getSoftcapAttr(),
                        attention.getScheduleAttr());
    SmallVector<Value, 2> results = {*init};
    if (*lseInit)
      results.push_back(*lseInit);
    replaceOpWithBufferizedValues(rewriter, op, results);
    return success();
  }
};

/// Bufferizes `gqa.merge_states` in destination-passing style: the results
/// are written into the buffers of `outs`, which the op never reads.
struct MergeStatesOpInterface
    : public WriteOnlyInitsModel<MergeStatesOpInterface, MergeStatesOp> {
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto merge = cast<MergeStatesOp>(op);
    if (merge.hasPureBufferSemantics())
      return success();
    SmallVector<Value, 6> buffers;
    for (Value operand : op->getOperands()) {
      FailureOr<Value> buffer = getBuffer(rewriter, operand, options, state);
      if (failed(buffer))
        return failure();
      buffers.push_back(*buffer);
    }
    rewriter.setInsertionPoint(op);
    MergeStatesOp::create(rewriter, op->getLoc(), TypeRange(), buffers[0],
                          buffers[1], buffers[2], buffers[3], buffers[4],
                          buffers[5], merge.getLayoutAttr());
    replaceOpWithBufferizedValues(rewriter, op, {buffers[4], buffers[5]});
    return success();
  }
};

} // namespace

void mlir::gqa::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, GQADialect *) {
    AttentionOp::attachInterface<AttentionOpInterface>(*context);
    MergeStatesOp::attachInterface<MergeStatesOpInterface>(*context);
  });
}
