#include "TileLowering.h"
using namespace mlir;
using namespace mlir::gqa;
using namespace mlir::gqa::gpu_kernel;
std::unique_ptr<TileTarget>
mlir::gqa::gpu_kernel::createSIMTTarget(ScheduleAttr schedule) {
  return createTensorCoreTarget(schedule);
}
