//===- SinksLseTest.cpp - Sinks, the LSE and ragged batches ---------------===//
//
// Metadata version 3: config.sinks, config.lse, config.varlen and
// config.packed_kv, and the `sinks`, `lse`, `cu_seqlens_q`, `total_q`,
// `cu_seqlens_k` and `total_kv` parameters every kernel of
// such a set takes; the launch arguments that carry them, checked and bound
// by name.
//
//===----------------------------------------------------------------------===//

#include "LaunchPlan.h"
#include "TestMetadata.h"

#include "gtest/gtest.h"

using namespace gqa::runtime;
using namespace gqa::runtime::test;

namespace {

/// The contract's example with the config flags `flags` set and the kernel
/// taking `pointers` after `out` and `sizes` after seq_kv (each "name:type").
JsonValue exampleWith(std::initializer_list<const char *> flags,
                      std::initializer_list<const char *> pointers,
                      std::initializer_list<const char *> sizes = {}) {
  JsonValue document = parseDocument(kContractExample);
  for (const char *flag : flags)
    replaceValue(document, std::string("config.") + flag, "true");
  std::string params;
  auto add = [&](std::string_view nameAndType) {
    size_t colon = nameAndType.find(':');
    params += std::string(params.empty() ? "" : ", ") + "{\"name\": \"" +
              std::string(nameAndType.substr(0, colon)) + "\", \"type\": \"" +
              std::string(nameAndType.substr(colon + 1)) + "\"}";
  };
  for (const char *param : {"q:ptr", "k:ptr", "v:ptr", "out:ptr"})
    add(param);
  for (const char *param : pointers)
    add(param);
  for (const char *param : {"batch:i64", "seq_q:i64", "seq_kv:i64"})
    add(param);
  for (const char *param : sizes)
    add(param);
  replaceValue(document, "kernels[0].params", "[" + params + "]");
  return document;
}

/// The contract's example with sinks and the LSE: the kernel takes both
/// after `out`.
JsonValue sinksLseDocument() {
  return exampleWith({"sinks", "lse"}, {"sinks:ptr", "lse:ptr"});
}

KernelMetadata sinksLseMetadata() {
  KernelMetadata metadata;
  Status status = decodeKernelMetadata(sinksLseDocument(), metadata);
  EXPECT_TRUE(status.ok()) << status.getMessage();
  return metadata;
}

std::string pointerError(const KernelMetadata &metadata,
                         const gqa_launch_args &args) {
  gqa_launch_plan plan;
  Status status = planLaunch(metadata, args, 132, plan);
  EXPECT_TRUE(status.ok()) << status.getMessage();
  status = validateLaunchPointers(metadata, args, plan);
  EXPECT_EQ(status.getCode(), GQA_ERROR_INVALID_ARGUMENT);
  return status.getMessage();
}

/// Binds the parameters of the first kernel for a launch of `args` that
/// plans and passes the pointer checks.
void bindParams(const KernelMetadata &metadata, const gqa_launch_args &args,
                KernelParamValues &params) {
  gqa_launch_plan plan;
  Status status = planLaunch(metadata, args, 132, plan);
  EXPECT_TRUE(status.ok()) << status.getMessage();
  status = validateLaunchPointers(metadata, args, plan);
  EXPECT_TRUE(status.ok()) << status.getMessage();
  bindKernelParams(metadata.kernels[0], args, plan, 0, params);
}

TEST(SinksLseMetadataTest, DecodesTheFlagsAndTheParameters) {
  KernelMetadata metadata = sinksLseMetadata();
  EXPECT_EQ(metadata.config.sinks, 1);
  EXPECT_EQ(metadata.config.lse, 1);
  const KernelSpec &kernel = metadata.kernels[0];
  EXPECT_EQ(std::get<PointerParam>(kernel.params[4].source),
            PointerParam::Sinks);
  EXPECT_EQ(std::get<PointerParam>(kernel.params[5].source), PointerParam::Lse);
  KernelMetadata plain = parseValidMetadata(kContractExample);
  EXPECT_EQ(plain.config.sinks, 0);
  EXPECT_EQ(plain.config.lse, 0);
}

TEST(SinksLseMetadataTest, TheKernelsTakeWhatTheConfigSays) {
  JsonValue document = sinksLseDocument();
  replaceValue(document, "config.lse", "false");
  EXPECT_EQ(decodeError(document),
            "kernel 'gqa_attention_fwd' (kernels[0]) takes 'lse', but "
            "config.lse is false");
  document = parseDocument(kContractExample);
  replaceValue(document, "config.sinks", "true");
  EXPECT_EQ(decodeError(document),
            "kernel 'gqa_attention_fwd' (kernels[0]) must take parameter "
            "'sinks' (config.sinks is true)");
  document = parseDocument(kContractExample);
  replaceValue(document, "config.lse", "1");
  EXPECT_EQ(decodeError(document), "key 'config.lse' must be a boolean, not "
                                   "a number");
  document = parseDocument(kContractExample);
  eraseMember(document, "config.sinks");
  EXPECT_EQ(decodeError(document), "missing key 'config.sinks'");
}

TEST(SinksLseLaunchTest, ChecksTheArguments) {
  KernelMetadata metadata = sinksLseMetadata();
  gqa_launch_args args = makeArgs(metadata, 2, 100, 100);
  gqa_launch_plan plan;
  ASSERT_TRUE(planLaunch(metadata, args, 132, plan).ok());
  EXPECT_TRUE(validateLaunchPointers(metadata, args, plan).ok());

  args.sinks = nullptr;
  EXPECT_EQ(pointerError(metadata, args),
            "args.sinks is NULL, but the kernel was compiled with it "
            "(config.sinks = true)");
  args = makeArgs(metadata, 2, 100, 100);
  args.lse = reinterpret_cast<void *>(uintptr_t{0x80002});
  EXPECT_EQ(pointerError(metadata, args),
            "args.lse (524290) is not aligned to 4 bytes");

  KernelMetadata plain = parseValidMetadata(kContractExample);
  args = makeArgs(plain, 2, 100, 100);
  args.lse = reinterpret_cast<void *>(uintptr_t{0x80000});
  EXPECT_EQ(pointerError(plain, args),
            "args.lse is set, but the kernel was compiled without it "
            "(config.lse = false)");
}

TEST(SinksLseLaunchTest, BindsThePointersByName) {
  KernelMetadata metadata = sinksLseMetadata();
  KernelParamValues params;
  bindParams(metadata, makeArgs(metadata, 2, 100, 100), params);
  ASSERT_EQ(params.count, 9u);
  EXPECT_EQ(params.values[3].pointer, 0x40000u); // out
  EXPECT_EQ(params.values[4].pointer, 0x70000u); // sinks
  EXPECT_EQ(params.values[5].pointer, 0x80000u); // lse
  EXPECT_EQ(params.values[6].i64, 2);            // batch
}

/// The contract's example as a ragged batch: the offsets after `out`, the
/// packed tokens after the sizes.
JsonValue varlenDocument() {
  return exampleWith({"varlen"}, {"cu_seqlens_q:ptr"}, {"total_q:i32"});
}

TEST(VarlenTest, ChecksBindsAndRefuses) {
  KernelMetadata metadata;
  ASSERT_TRUE(decodeKernelMetadata(varlenDocument(), metadata).ok());
  gqa_launch_args args = makeArgs(metadata, 3, 17, 100);
  args.cu_seqlens_q = reinterpret_cast<const void *>(uintptr_t{0x90000});
  args.total_q = 23;
  KernelParamValues params;
  bindParams(metadata, args, params);
  gqa_launch_plan plan;
  ASSERT_EQ(params.count, 9u);
  EXPECT_EQ(params.values[4].pointer, 0x90000u); // cu_seqlens_q
  EXPECT_EQ(params.values[6].i64, 17);           // seq_q: the longest
  EXPECT_EQ(params.values[8].i32, 23);           // total_q

  args.total_q = 0;
  EXPECT_EQ(planLaunch(metadata, args, 132, plan).getMessage(),
            "args.total_q must be >= 1, not 0");
  args.total_q = 16;
  EXPECT_EQ(planLaunch(metadata, args, 132, plan).getMessage(),
            "args.seq_q (the longest sequence's queries) is 17, more than all "
            "the queries, args.total_q = 16");
  args.total_q = 23;
  args.cu_seqlens_q = nullptr;
  EXPECT_EQ(pointerError(metadata, args),
            "args.cu_seqlens_q is NULL, but the kernel was compiled with it "
            "(config.varlen = true)");
  KernelMetadata plain = parseValidMetadata(kContractExample);
  gqa_launch_args padded = makeArgs(plain, 3, 17, 100);
  padded.total_q = 23;
  EXPECT_EQ(planLaunch(plain, padded, 132, plan).getMessage(),
            "args.total_q is 23, but config.varlen is false: leave it 0");

  JsonValue document = varlenDocument();
  replaceValue(document, "config.layout", "\"bhsd\"");
  EXPECT_EQ(decodeError(document), "config.varlen is true, so config.layout "
                                   "must be bshd (packed tokens [T, H, D])");
  document = parseDocument(kContractExample);
  replaceValue(document, "config.varlen", "true");
  EXPECT_EQ(decodeError(document),
            "kernel 'gqa_attention_fwd' (kernels[0]) must take parameter "
            "'cu_seqlens_q' (config.varlen is true)");
}

/// The contract's example with packed K/V: both offsets after `out`, both
/// token counts after the sizes.
JsonValue packedKVDocument() {
  return exampleWith({"varlen", "packed_kv"},
                     {"cu_seqlens_q:ptr", "cu_seqlens_k:ptr"},
                     {"total_q:i64", "total_kv:i64"});
}

TEST(PackedKVTest, ChecksBindsAndRefuses) {
  KernelMetadata metadata;
  ASSERT_TRUE(decodeKernelMetadata(packedKVDocument(), metadata).ok());
  gqa_launch_args args = makeArgs(metadata, 3, 17, 100);
  args.cu_seqlens_q = reinterpret_cast<const void *>(uintptr_t{0x90000});
  args.cu_seqlens_k = reinterpret_cast<const void *>(uintptr_t{0xA0000});
  args.total_q = 23;
  args.total_kv = 147;
  KernelParamValues params;
  bindParams(metadata, args, params);
  gqa_launch_plan plan;
  ASSERT_EQ(params.count, 11u);
  EXPECT_EQ(params.values[4].pointer, 0x90000u); // cu_seqlens_q
  EXPECT_EQ(params.values[5].pointer, 0xA0000u); // cu_seqlens_k
  EXPECT_EQ(params.values[8].i64, 100);          // seq_kv: max_seqlen_k
  EXPECT_EQ(params.values[9].i64, 23);           // total_q
  EXPECT_EQ(params.values[10].i64, 147);         // total_kv

  args.total_kv = 0;
  EXPECT_EQ(planLaunch(metadata, args, 132, plan).getMessage(),
            "args.total_kv must be >= 1, not 0");
  // max_seqlen_k above all the keys (a bucketed maximum) only sizes the
  // split partition.
  args.total_kv = 99;
  EXPECT_TRUE(planLaunch(metadata, args, 132, plan).ok());
  args.total_kv = 147;
  args.cu_seqlens_k = nullptr;
  EXPECT_EQ(pointerError(metadata, args),
            "args.cu_seqlens_k is NULL, but the kernel was compiled with it "
            "(config.packed_kv = true)");
  KernelMetadata cache;
  ASSERT_TRUE(decodeKernelMetadata(varlenDocument(), cache).ok());
  gqa_launch_args cached = makeArgs(cache, 3, 17, 100);
  cached.total_q = 23;
  cached.total_kv = 147;
  EXPECT_EQ(planLaunch(cache, cached, 132, plan).getMessage(),
            "args.total_kv is 147, but config.packed_kv is false: leave it 0");

  JsonValue document = packedKVDocument();
  replaceValue(document, "config.varlen", "false");
  EXPECT_EQ(decodeError(document),
            "config.packed_kv is true, but config.varlen is false");
  document = varlenDocument();
  replaceValue(document, "config.packed_kv", "true");
  EXPECT_EQ(decodeError(document),
            "kernel 'gqa_attention_fwd' (kernels[0]) must take parameter "
            "'cu_seqlens_k' (config.packed_kv is true)");
}

} // namespace
