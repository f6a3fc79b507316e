//===- HostTensor.h - Host arrays of f16/bf16/f32 ---------------*- C++ -*-===//

#ifndef GQA_TOOLS_HOSTTENSOR_H
#define GQA_TOOLS_HOSTTENSOR_H

#include "gqa/Tools/AttentionSpec.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace mlir::gqa {

/// Rounds `value` to the nearest bf16 (ties to even) and returns its bits.
uint16_t floatToBF16Bits(float value);
float bf16BitsToFloat(uint16_t bits);
/// Rounds `value` to the nearest IEEE half (ties to even) and returns its
/// bits.
uint16_t floatToF16Bits(float value);
float f16BitsToFloat(uint16_t bits);

/// A flat host array in one element type, stored as the kernels store it
/// (f16 and bf16 as 16-bit patterns), little-endian.
class HostTensor {
public:
  HostTensor(ElementType type, int64_t size);

  /// Standard-normal values, rounded to the element type.
  static HostTensor random(ElementType type, int64_t size,
                           std::mt19937_64 &generator);

  ElementType type() const { return elementType; }
  int64_t size() const { return elementCount; }
  void *data() { return storage.data(); }
  const void *data() const { return storage.data(); }
  int64_t bytes() const { return static_cast<int64_t>(storage.size()); }

  /// Element `index`, decoded to double.
  double get(int64_t index) const;
  /// Stores `value`, rounded to the element type.
  void set(int64_t index, double value);
  /// Sets every element to `value` (e.g. NaN, to catch unwritten output).
  void fill(double value);
  /// The decoded elements.
  std::vector<double> toDoubles() const;

  /// Writes the raw bytes to `path`; returns an error message or "".
  std::string writeRaw(const std::string &path) const;

private:
  ElementType elementType;
  int64_t elementCount;
  std::vector<uint8_t> storage;
};

} // namespace mlir::gqa

#endif // GQA_TOOLS_HOSTTENSOR_H
