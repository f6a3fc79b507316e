//===- GQAAttrs.cpp - Attributes of the gqa dialect -----------------------===//

#include "gqa/Dialect/GQA/IR/GQAAttrs.h"
#include "gqa/Dialect/GQA/IR/GQADialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::gqa;

#include "gqa/Dialect/GQA/IR/GQAEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "gqa/Dialect/GQA/IR/GQAAttrs.cpp.inc"

void GQADialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "gqa/Dialect/GQA/IR/GQAAttrs.cpp.inc"
      >();
}

bool mlir::gqa::isScheduleTarget(StringRef target) {
  return target == "cpu" || target == "sm_80" || target == "sm_90";
}

LayoutDims mlir::gqa::getLayoutDims(Layout layout) {
  switch (layout) {
  case Layout::BHSD:
    return {/*batch=*/0, /*heads=*/1, /*seq=*/2, /*headDim=*/3};
  case Layout::BSHD:
    return {/*batch=*/0, /*heads=*/2, /*seq=*/1, /*headDim=*/3};
  }
  llvm_unreachable("unknown layout");
}

//===----------------------------------------------------------------------===//
// MaskAttr
//===----------------------------------------------------------------------===//

/// Parses `none`, `causal`, `window = [left, right]` or
/// `causal, window = [left, right]` between angle brackets.
Attribute MaskAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess())
    return {};
  bool causal = false;
  int64_t left = -1, right = -1;
  if (succeeded(parser.parseOptionalKeyword("none"))) {
    if (parser.parseGreater())
      return {};
    return parser.getChecked<MaskAttr>(loc, parser.getContext(), causal, left,
                                       right);
  }
  causal = succeeded(parser.parseOptionalKeyword("causal"));
  bool hasWindow = !causal || succeeded(parser.parseOptionalComma());
  if (hasWindow) {
    SMLoc windowLoc = parser.getCurrentLocation();
    if (failed(parser.parseOptionalKeyword("window")))
      return parser.emitError(windowLoc, "expected mask 'none', 'causal', "
                                         "'window = [left, right]' or "
                                         "'causal, window = [left, right]'"),
             Attribute();
    if (parser.parseEqual() || parser.parseLSquare() ||
        parser.parseInteger(left) || parser.parseComma() ||
        parser.parseInteger(right) || parser.parseRSquare())
      return {};
    bool boundsNothing = left == -1 && (right == -1 || (causal && right <= 0));
    if (boundsNothing)
      return parser.emitError(windowLoc)
                 << "mask window = [" << left << ", " << right
                 << "] bounds no key; write "
                 << (causal ? "#gqa.mask<causal>" : "#gqa.mask<none>")
                 << " instead",
             Attribute();
  }
  if (parser.parseGreater())
    return {};
  return parser.getChecked<MaskAttr>(loc, parser.getContext(), causal, left,
                                     right);
}

void MaskAttr::print(AsmPrinter &printer) const {
  printer << '<';
  if (isNone()) {
    printer << "none>";
    return;
  }
  if (getCausal())
    printer << "causal";
  if (hasWindow()) {
    if (getCausal())
      printer << ", ";
    printer << "window = [" << getWindowLeft() << ", " << getWindowRight()
            << ']';
  }
  printer << '>';
}

LogicalResult MaskAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               bool causal, int64_t windowLeft,
                               int64_t windowRight) {
  if (windowLeft < -1)
    return emitError() << "mask window left must be >= 0 (or -1 for "
                          "unbounded), got "
                       << windowLeft;
  if (windowRight < -1)
    return emitError() << "mask window right must be >= 0 (or -1 for "
                          "unbounded), got "
                       << windowRight;
  if (causal && windowRight > 0)
    return emitError() << "mask window right = " << windowRight
                       << " contradicts the causal mask, which admits no key "
                          "after the diagonal (use 0)";
  return success();
}

LogicalResult ScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   StringRef target, int64_t blockM,
                                   int64_t blockN, int64_t maxSplits,
                                   int64_t warps, int64_t stages,
                                   bool qInRegisters, int64_t minCtasPerSm,
                                   int64_t maxRegisters) {
  if (!isScheduleTarget(target))
    return emitError() << "schedule target must be cpu, sm_80 or sm_90, got '"
                       << target << "'";
  if (blockM < 1 || blockN < 1)
    return emitError() << "schedule block_m and block_n must be positive, got "
                       << blockM << " and " << blockN;
  if (blockM > kMaxTileSize || blockN > kMaxTileSize ||
      blockM * blockN > kMaxScoreTileElements)
    return emitError() << "schedule block_m = " << blockM
                       << " and block_n = " << blockN
                       << " are too large (each at most " << kMaxTileSize
                       << ", a score tile at most " << kMaxScoreTileElements
                       << " elements)";
  if (maxSplits < 0)
    return emitError() << "schedule max_splits must be >= 0 (0: no split-KV), "
                          "got "
                       << maxSplits;
  if (warps < 1 || stages < 1)
    return emitError() << "schedule warps and stages must be positive, got "
                       << warps << " and " << stages;
  if (minCtasPerSm < 0 || maxRegisters < 0)
    return emitError() << "schedule min_ctas_per_sm and max_registers must be "
                          ">= 0, got "
                       << minCtasPerSm << " and " << maxRegisters;
  return success();
}
