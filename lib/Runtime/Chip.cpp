//===- Chip.cpp - Chip names and the devices that run them ----------------===//

#include "KernelMetadata.h"

namespace gqa::runtime {

namespace {

/// The name of a chip parsed: "sm_90a" -> {90, 'a'}.
struct ChipName {
  int number = 0;
  char suffix = '\0';
};

bool parseChipName(std::string_view chip, ChipName &name) {
  constexpr std::string_view prefix = "sm_";
  if (chip.substr(0, prefix.size()) != prefix)
    return false;
  chip.remove_prefix(prefix.size());
  if (!chip.empty() && (chip.back() == 'a' || chip.back() == 'f')) {
    name.suffix = chip.back();
    chip.remove_suffix(1);
  }
  if (chip.size() < 2 || chip.size() > 4)
    return false;
  name.number = 0;
  for (char c : chip) {
    if (c < '0' || c > '9')
      return false;
    name.number = name.number * 10 + (c - '0');
  }
  return true;
}

} // namespace

bool isValidChipName(std::string_view chip) {
  ChipName name;
  return parseChipName(chip, name);
}

Status checkChipSupported(std::string_view chip, int major, int minor) {
  ChipName name;
  if (!parseChipName(chip, name))
    return Status::failure(GQA_ERROR_INVALID_METADATA,
                           "cannot read the chip name '" + std::string(chip) +
                               "'");
  int chipMajor = name.number / 10, chipMinor = name.number % 10;
  int device = major * 10 + minor;
  bool supported;
  switch (name.suffix) {
  case 'a':
    supported = device == name.number;
    break;
  case 'f':
    supported = major == chipMajor && minor >= chipMinor;
    break;
  default:
    supported = device >= name.number;
    break;
  }
  if (supported)
    return Status::success();
  std::string needs =
      std::to_string(chipMajor) + "." + std::to_string(chipMinor) +
      (name.suffix == 'a'   ? " exactly"
       : name.suffix == 'f' ? " up to " + std::to_string(chipMajor) + ".9"
                            : " or newer");
  return Status::failure(GQA_ERROR_UNSUPPORTED_DEVICE,
                         "the kernel was compiled for " + std::string(chip) +
                             " (compute capability " + needs +
                             "), but the device has compute capability " +
                             std::to_string(major) + "." +
                             std::to_string(minor));
}

} // namespace gqa::runtime
