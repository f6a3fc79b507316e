//===- TestMetadata.h - Metadata documents for the tests --------*- C++ -*-===//

#ifndef GQA_UNITTESTS_RUNTIME_TESTMETADATA_H
#define GQA_UNITTESTS_RUNTIME_TESTMETADATA_H

#include "Json.h"
#include "KernelMetadata.h"

#include "gtest/gtest.h"

#include <string>
#include <string_view>

namespace gqa::runtime::test {

/// The example of docs/kernel-metadata.md, verbatim.
inline constexpr std::string_view kContractExample = R"json({
  "format": "gqa.kernel",
  "version": 3,
  "chip": "sm_90",
  "ptx": "l70b.ptx",
  "config": {
    "q_heads": 64, "kv_heads": 8, "group_size": 8,
    "head_dim": 128, "head_dim_v": 128,
    "dtype": "bf16",
    "layout": "bshd",
    "mask": "causal",
    "window_left": -1, "window_right": -1,
    "scale": 0.08838834764831845,
    "softcap": 0.0,
    "kv_lens": "none",
    "page_size": 0, "sinks": false, "lse": false, "varlen": false, "packed_kv": false,
    "batch": null, "seq_q": null, "seq_kv": null
  },
  "tile": { "block_m": 64, "block_n": 64, "warps": 4, "stages": 2, "pack_gqa": true },
  "split_kv": { "max_splits": 0 },
  "kernels": [
    {
      "name": "gqa_attention_fwd",
      "role": "main",
      "block": [128, 1, 1],
      "dynamic_shared_memory_bytes": 0,
      "static_shared_memory_bytes": 49152,
      "grid": [
        { "sym": "seq_q", "mul": 8, "div": 64 },
        { "const": 8 },
        { "sym": "batch" }
      ],
      "params": [
        { "name": "q", "type": "ptr" },
        { "name": "k", "type": "ptr" },
        { "name": "v", "type": "ptr" },
        { "name": "out", "type": "ptr" },
        { "name": "batch", "type": "i64" },
        { "name": "seq_q", "type": "i64" },
        { "name": "seq_kv", "type": "i64" }
      ]
    }
  ]
})json";

/// A split-KV decode kernel with per-batch KV lengths: the split kernel runs
/// one CTA per (KV head, split, batch), the combine kernel one per
/// (query head, batch).
inline constexpr std::string_view kSplitKVExample = R"json({
  "format": "gqa.kernel",
  "version": 3,
  "chip": "sm_90",
  "ptx": "decode.ptx",
  "config": {
    "q_heads": 32, "kv_heads": 4, "group_size": 8,
    "head_dim": 128, "head_dim_v": 64,
    "dtype": "f16",
    "layout": "bhsd",
    "mask": "none",
    "window_left": -1, "window_right": -1,
    "scale": 0.125,
    "softcap": 30.0,
    "kv_lens": "i32",
    "page_size": 0, "sinks": false, "lse": false, "varlen": false, "packed_kv": false,
    "batch": null, "seq_q": 1, "seq_kv": null
  },
  "tile": { "block_m": 16, "block_n": 128, "warps": 4, "stages": 2, "pack_gqa": true },
  "split_kv": { "max_splits": 16 },
  "kernels": [
    {
      "name": "gqa_decode_split",
      "role": "split",
      "block": [128, 1, 1],
      "dynamic_shared_memory_bytes": 65536,
      "static_shared_memory_bytes": 0,
      "grid": [ { "const": 4 }, { "sym": "num_splits" }, { "sym": "batch" } ],
      "params": [
        { "name": "q", "type": "ptr" },
        { "name": "k", "type": "ptr" },
        { "name": "v", "type": "ptr" },
        { "name": "out", "type": "ptr" },
        { "name": "kv_lens", "type": "ptr" },
        { "name": "partial_out", "type": "ptr" },
        { "name": "partial_lse", "type": "ptr" },
        { "name": "batch", "type": "i32" },
        { "name": "seq_kv", "type": "i32" },
        { "name": "num_splits", "type": "i32" }
      ]
    },
    {
      "name": "gqa_decode_combine",
      "role": "combine",
      "block": [64, 1, 1],
      "dynamic_shared_memory_bytes": 0,
      "static_shared_memory_bytes": 1024,
      "grid": [ { "const": 32 }, { "sym": "batch" }, { "const": 1 } ],
      "params": [
        { "name": "partial_out", "type": "ptr" },
        { "name": "partial_lse", "type": "ptr" },
        { "name": "out", "type": "ptr" },
        { "name": "num_splits", "type": "i64" },
        { "name": "batch", "type": "i64" }
      ]
    }
  ]
})json";

/// A paged decode kernel (16-token pages, the vLLM layout): the attention
/// kernel reads the block table and the pool size.
inline constexpr std::string_view kPagedExample = R"json({
  "format": "gqa.kernel",
  "version": 3,
  "chip": "sm_90",
  "ptx": "paged.ptx",
  "config": {
    "q_heads": 64, "kv_heads": 8, "group_size": 8,
    "head_dim": 128, "head_dim_v": 128,
    "dtype": "bf16",
    "layout": "bshd",
    "mask": "none",
    "window_left": -1, "window_right": -1,
    "scale": 0.08838834764831845,
    "softcap": 0.0,
    "kv_lens": "i32",
    "page_size": 16, "sinks": false, "lse": false, "varlen": false, "packed_kv": false,
    "batch": null, "seq_q": null, "seq_kv": null
  },
  "tile": { "block_m": 64, "block_n": 64, "warps": 4, "stages": 1, "pack_gqa": true },
  "split_kv": { "max_splits": 0 },
  "kernels": [
    {
      "name": "gqa_attention_fwd",
      "role": "main",
      "block": [128, 1, 1],
      "dynamic_shared_memory_bytes": 49152,
      "static_shared_memory_bytes": 0,
      "grid": [ { "sym": "seq_q", "mul": 8, "div": 64 }, { "const": 8 }, { "sym": "batch" } ],
      "params": [
        { "name": "q", "type": "ptr" },
        { "name": "k", "type": "ptr" },
        { "name": "v", "type": "ptr" },
        { "name": "out", "type": "ptr" },
        { "name": "kv_lens", "type": "ptr" },
        { "name": "block_table", "type": "ptr" },
        { "name": "batch", "type": "i64" },
        { "name": "seq_q", "type": "i64" },
        { "name": "seq_kv", "type": "i64" },
        { "name": "num_pages", "type": "i64" }
      ]
    }
  ]
})json";

/// The merge_states example of docs/kernel-metadata.md, verbatim: bf16
/// outputs in bshd, 64 heads of 128 values, 4 rows per CTA.
inline constexpr std::string_view kMergeExample = R"json({
  "format": "gqa.merge_states",
  "version": 1,
  "chip": "sm_90",
  "ptx": "merge.ptx",
  "config": {
    "heads": 64, "head_dim_v": 128, "dtype": "bf16", "layout": "bshd",
    "varlen": false, "batch": null, "seq_q": null
  },
  "kernels": [
    {
      "name": "gqa_merge_states",
      "role": "merge",
      "block": [128, 1, 1],
      "dynamic_shared_memory_bytes": 0,
      "static_shared_memory_bytes": 0,
      "grid": [ { "sym": "seq_q", "mul": 64, "div": 4 }, { "const": 1 }, { "sym": "batch" } ],
      "params": [
        { "name": "out_a", "type": "ptr" }, { "name": "lse_a", "type": "ptr" },
        { "name": "out_b", "type": "ptr" }, { "name": "lse_b", "type": "ptr" },
        { "name": "out", "type": "ptr" }, { "name": "lse", "type": "ptr" },
        { "name": "batch", "type": "i64" }, { "name": "seq_q", "type": "i64" }
      ]
    }
  ]
})json";

/// Parses a JSON text that the test expects to be valid.
inline JsonValue parseDocument(std::string_view text) {
  JsonValue document;
  Status status = parseJson(text, document);
  EXPECT_TRUE(status.ok()) << status.getMessage();
  return document;
}

/// Parses and decodes metadata that the test expects to be valid.
inline KernelMetadata parseValidMetadata(std::string_view text) {
  KernelMetadata metadata;
  Status status = parseKernelMetadata(text, metadata);
  EXPECT_TRUE(status.ok()) << status.getMessage();
  return metadata;
}

/// The value at a path such as "config.q_heads" or "kernels[0].grid[1]", or
/// null if there is none.
inline JsonValue *lookUp(JsonValue &document, std::string_view path) {
  JsonValue *value = &document;
  while (value && !path.empty()) {
    if (path.front() == '.')
      path.remove_prefix(1);
    if (path.front() == '[') {
      size_t close = path.find(']');
      size_t index = std::stoul(std::string(path.substr(1, close - 1)));
      path.remove_prefix(close + 1);
      if (value->getKind() != JsonValue::Kind::Array ||
          index >= value->getArray().size())
        return nullptr;
      value = &value->getArray()[index];
      continue;
    }
    size_t end = path.find_first_of(".[");
    std::string_view key = path.substr(0, end);
    path.remove_prefix(end == std::string_view::npos ? path.size() : end);
    value = value->find(key);
  }
  return value;
}

/// Removes the member at `path` ("config.q_heads").
inline void eraseMember(JsonValue &document, std::string_view path) {
  size_t dot = path.rfind('.');
  JsonValue *parent = dot == std::string_view::npos
                          ? &document
                          : lookUp(document, path.substr(0, dot));
  ASSERT_NE(parent, nullptr) << path;
  std::string_view key =
      dot == std::string_view::npos ? path : path.substr(dot + 1);
  JsonValue::Object &members = parent->getObject();
  for (auto it = members.begin(); it != members.end(); ++it) {
    if (it->first == key) {
      members.erase(it);
      return;
    }
  }
  FAIL() << "no member " << path;
}

/// Replaces the value at `path` with the JSON text `replacement`.
inline void replaceValue(JsonValue &document, std::string_view path,
                         std::string_view replacement) {
  JsonValue *value = lookUp(document, path);
  ASSERT_NE(value, nullptr) << path;
  *value = parseDocument(replacement);
}

/// Decodes a document the test expects to be rejected, and returns the
/// message.
inline std::string decodeError(const JsonValue &document) {
  KernelMetadata metadata;
  Status status = decodeKernelMetadata(document, metadata);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.getCode(), GQA_ERROR_INVALID_METADATA);
  return status.getMessage();
}

/// Launch arguments matching a metadata's config, with `batch`, `seqQ`,
/// `seqKV` and non-null, aligned dummy pointers (never dereferenced).
inline gqa_launch_args makeArgs(const KernelMetadata &metadata, int64_t batch,
                                int64_t seqQ, int64_t seqKV) {
  gqa_launch_args args = {};
  args.q = reinterpret_cast<const void *>(uintptr_t{0x10000});
  args.k = reinterpret_cast<const void *>(uintptr_t{0x20000});
  args.v = reinterpret_cast<const void *>(uintptr_t{0x30000});
  args.out = reinterpret_cast<void *>(uintptr_t{0x40000});
  if (metadata.config.kv_lens != GQA_KV_LENS_NONE)
    args.kv_lens = reinterpret_cast<const void *>(uintptr_t{0x50000});
  if (metadata.config.page_size) {
    args.block_table = reinterpret_cast<const void *>(uintptr_t{0x60000});
    args.num_pages = 1000;
  }
  if (metadata.config.sinks)
    args.sinks = reinterpret_cast<const void *>(uintptr_t{0x70000});
  if (metadata.config.lse)
    args.lse = reinterpret_cast<void *>(uintptr_t{0x80000});
  args.batch = batch;
  args.seq_q = seqQ;
  args.seq_kv = seqKV;
  args.q_heads = metadata.config.q_heads;
  args.kv_heads = metadata.config.kv_heads;
  args.head_dim = metadata.config.head_dim;
  args.head_dim_v = metadata.config.head_dim_v;
  args.dtype = metadata.config.dtype;
  args.layout = metadata.config.layout;
  return args;
}

/// Merge arguments matching a merge_states metadata's config, with `batch`,
/// `seqQ` and non-null, aligned dummy pointers (never dereferenced) 2^40
/// bytes apart, so that no two arrays overlap.
inline gqa_merge_args makeMergeArgs(const KernelMetadata &metadata,
                                    int64_t batch, int64_t seqQ) {
  auto at = [](uint64_t index) {
    return reinterpret_cast<void *>(static_cast<uintptr_t>(index << 40));
  };
  gqa_merge_args args = {};
  args.out_a = at(1);
  args.lse_a = at(2);
  args.out_b = at(3);
  args.lse_b = at(4);
  args.out = at(5);
  args.lse = at(6);
  args.batch = batch;
  args.seq_q = seqQ;
  args.heads = metadata.mergeConfig.heads;
  args.head_dim_v = metadata.mergeConfig.head_dim_v;
  args.dtype = metadata.mergeConfig.dtype;
  args.layout = metadata.mergeConfig.layout;
  return args;
}

} // namespace gqa::runtime::test

#endif // GQA_UNITTESTS_RUNTIME_TESTMETADATA_H
