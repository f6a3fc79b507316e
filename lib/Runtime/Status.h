//===- Status.h - The outcome of a runtime operation ------------*- C++ -*-===//
//
// Internal code reports failures as a Status (a gqa_status code plus a
// message) instead of throwing; the C ABI hands the code to the caller and the
// message to gqa_last_error_message.
//
//===----------------------------------------------------------------------===//

#ifndef GQA_RUNTIME_STATUS_H
#define GQA_RUNTIME_STATUS_H

#include "gqa/Runtime/Runtime.h"

#include <string>
#include <string_view>
#include <utility>

namespace gqa::runtime {

/// The outcome of an operation: success, or a failure code with a message
/// that names what was being done and why it failed.
class [[nodiscard]] Status {
public:
  /// Success.
  Status() = default;

  static Status success() { return Status(); }
  static Status failure(gqa_status code, std::string message) {
    return Status(code, std::move(message));
  }

  bool ok() const { return code == GQA_SUCCESS; }
  gqa_status getCode() const { return code; }
  const std::string &getMessage() const { return message; }

  /// Prefixes a failure's message with what was being done:
  /// "<context>: <message>". Success stays success.
  Status withContext(std::string_view context) && {
    if (!ok())
      message = std::string(context) + ": " + message;
    return std::move(*this);
  }

private:
  Status(gqa_status code, std::string message)
      : code(code), message(std::move(message)) {}

  gqa_status code = GQA_SUCCESS;
  std::string message;
};

} // namespace gqa::runtime

#endif // GQA_RUNTIME_STATUS_H
