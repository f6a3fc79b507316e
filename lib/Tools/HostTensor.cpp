//===- HostTensor.cpp - Host arrays of f16/bf16/f32 -----------------------===//

#include "gqa/Tools/HostTensor.h"

#include <cmath>
#include <cstring>
#include <fstream>

using namespace mlir::gqa;

namespace {

uint32_t bitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

float floatOf(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

} // namespace

uint16_t mlir::gqa::floatToBF16Bits(float value) {
  uint32_t bits = bitsOf(value);
  if (std::isnan(value))
    return static_cast<uint16_t>((bits >> 16) | 0x40);
  uint32_t roundingBias = 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + roundingBias) >> 16);
}

float mlir::gqa::bf16BitsToFloat(uint16_t bits) {
  return floatOf(static_cast<uint32_t>(bits) << 16);
}

uint16_t mlir::gqa::floatToF16Bits(float value) {
  uint32_t bits = bitsOf(value);
  uint32_t sign = (bits >> 16) & 0x8000;
  uint32_t magnitude = bits & 0x7FFFFFFF;
  if (magnitude > 0x7F800000) // NaN
    return static_cast<uint16_t>(sign | 0x7E00);
  if (magnitude >= 0x477FF000) // rounds to >= 65520: infinity
    return static_cast<uint16_t>(sign | 0x7C00);
  if (magnitude < 0x38800000) { // below the smallest normal half: subnormal
    // Scale into the subnormal range and round to nearest even there.
    float scaled = floatOf(magnitude) * 16777216.0f; // 2^24
    uint32_t rounded = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | rounded);
  }
  // Normal: rebias the exponent and round the mantissa to 10 bits.
  uint32_t halfBits = magnitude - 0x38000000; // exponent bias 127 -> 15
  uint32_t roundingBias = 0xFFF + ((halfBits >> 13) & 1);
  return static_cast<uint16_t>(sign | ((halfBits + roundingBias) >> 13));
}

float mlir::gqa::f16BitsToFloat(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  uint32_t exponent = (bits >> 10) & 0x1F;
  uint32_t mantissa = bits & 0x3FF;
  if (exponent == 0) // zero or subnormal: mantissa * 2^-24
    return floatOf(sign) + (sign ? -1.0f : 1.0f) *
                               std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 31)
    return floatOf(sign | 0x7F800000 | (mantissa << 13));
  return floatOf(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

HostTensor::HostTensor(ElementType type, int64_t size)
    : elementType(type), elementCount(size),
      storage(static_cast<size_t>(size * elementBytes(type))) {}

HostTensor HostTensor::random(ElementType type, int64_t size,
                              std::mt19937_64 &generator) {
  HostTensor tensor(type, size);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (int64_t i = 0; i < size; ++i)
    tensor.set(i, normal(generator));
  return tensor;
}

double HostTensor::get(int64_t index) const {
  const uint8_t *at = storage.data() + index * elementBytes(elementType);
  if (elementType == ElementType::F32) {
    float value;
    std::memcpy(&value, at, sizeof(value));
    return value;
  }
  uint16_t bits;
  std::memcpy(&bits, at, sizeof(bits));
  return elementType == ElementType::BF16 ? bf16BitsToFloat(bits)
                                          : f16BitsToFloat(bits);
}

void HostTensor::set(int64_t index, double value) {
  uint8_t *at = storage.data() + index * elementBytes(elementType);
  float single = static_cast<float>(value);
  if (elementType == ElementType::F32) {
    std::memcpy(at, &single, sizeof(single));
    return;
  }
  uint16_t bits = elementType == ElementType::BF16 ? floatToBF16Bits(single)
                                                   : floatToF16Bits(single);
  std::memcpy(at, &bits, sizeof(bits));
}

void HostTensor::fill(double value) {
  for (int64_t i = 0; i < elementCount; ++i)
    set(i, value);
}

std::vector<double> HostTensor::toDoubles() const {
  std::vector<double> values(static_cast<size_t>(elementCount));
  for (int64_t i = 0; i < elementCount; ++i)
    values[i] = get(i);
  return values;
}

std::string HostTensor::writeRaw(const std::string &path) const {
  std::ofstream file(path, std::ios::binary);
  file.write(reinterpret_cast<const char *>(storage.data()),
             static_cast<std::streamsize>(storage.size()));
  if (!file)
    return "cannot write " + path;
  return "";
}
