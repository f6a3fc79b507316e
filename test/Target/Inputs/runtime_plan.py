"""Parse kernel metadata with the runtime's own parser (libgqa_runtime.so)
and plan a launch of it on a 132-SM device (no GPU needed).

usage: runtime_plan.py SRC_ROOT LIBRARY BATCH SEQ_Q SEQ_KV KERNEL.json...
"""
import json
import sys

sys.path.insert(0, sys.argv[1] + "/python")
from gqa import _runtime  # noqa: E402
from gqa.shapes import AttentionDims  # noqa: E402

library = _runtime.RuntimeLibrary(sys.argv[2])
batch, seq_q, seq_kv = (int(x) for x in sys.argv[3:6])
for path in sys.argv[6:]:
    text = open(path).read()
    config = json.loads(text)["config"]
    dims = AttentionDims(batch, config["q_heads"], config["kv_heads"], seq_q, seq_kv,
                         config["head_dim"], config["head_dim_v"])
    # Aligned, non-null stand-in addresses: planning checks but never uses them.
    args = _runtime.launch_args(dims, config["dtype"], config["layout"], 1 << 20, 2 << 20,
                                3 << 20, 4 << 20,
                                kv_lens=(5 << 20) if config["kv_lens"] != "none" else None,
                                block_table=(6 << 20) if config["page_size"] else None,
                                num_pages=1000 if config["page_size"] else 0)
    plan = library.plan(text, args, sm_count=132)
    print(path.rsplit("/", 1)[-1], "num_splits", plan["num_splits"], "workspace", plan["workspace_bytes"],
          *[f"{k['name']}:{k['role']}:grid={k['grid']}:block={k['block']}:smem={k['dynamic_shared_memory_bytes']}"
            for k in plan["kernels"]])
