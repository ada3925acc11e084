"""PyTorch eager's training step on the same model, weights and tokens as `irc bench`.

    python3 benches/torch_step.py HF_DIR DATA.json THREADS STEPS [--autocast bf16]

HF_DIR is what `irc export --hf` writes for the spec (config.json + model.safetensors of
irc's own initialization), loaded with transformers' GPT2LMHeadModel / LlamaForCausalLM:
the model definition tests/reference was made with. DATA.json holds "batch", "seq",
"tokens", "targets" (flat, row-major) and the AdamW settings irc uses ("lr", "beta1",
"beta2", "eps", "weight_decay", "clip"). A step is what irc's is: zero the gradients,
forward, mean cross-entropy of the logits against the targets, backward, gradient-norm
clipping, AdamW (weight decay on tensors of 2+ dimensions only, as irc). One warm-up step,
then STEPS timed steps; the median is reported. `--autocast bf16` runs forward and loss
under torch.autocast("cpu", torch.bfloat16) (PyTorch's own CPU bf16 path, for bf16 rows).

Threads are pinned with torch.set_num_threads(THREADS) (and OMP_NUM_THREADS by the
caller). Prints one JSON object: {"torch", "step_ms", "loss0", "rss_kb"}, or
{"not_importable": why} when torch or transformers cannot be imported (exit status 0).
"""

import json
import os
import sys
import time


def peak_rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    autocast = "--autocast" in sys.argv and sys.argv[sys.argv.index("--autocast") + 1]
    if autocast:
        args.remove(autocast)
    hf_dir, data_file, threads, steps = args[0], args[1], int(args[2]), int(args[3])
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch
        import transformers
    except Exception as e:  # ImportError, or a broken install
        print(json.dumps({"not_importable": "torch/transformers: %s" % e}))
        return
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with open(data_file) as f:
        d = json.load(f)
    b, t = d["batch"], d["seq"]
    tokens = torch.tensor(d["tokens"], dtype=torch.long).view(b, t)
    targets = torch.tensor(d["targets"], dtype=torch.long).view(b, t)
    model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model.train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": d["weight_decay"]}, {"params": rest, "weight_decay": 0.0}],
        lr=d["lr"],
        betas=(d["beta1"], d["beta2"]),
        eps=d["eps"],
    )
    ctx = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if autocast == "bf16"
        else (lambda: torch.autocast("cpu", enabled=False))
    )

    def step():
        opt.zero_grad(set_to_none=True)
        with ctx():
            logits = model(input_ids=tokens).logits
            loss = torch.nn.functional.cross_entropy(
                logits.float().view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-100
            )
        loss.backward()
        if d["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), d["clip"])
        opt.step()
        return loss.item()

    loss0 = step()  # warm-up (its loss is the loss at the initial weights, as irc's first)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(
        json.dumps(
            {
                "torch": "torch %s, transformers %s" % (torch.__version__, transformers.__version__),
                "step_ms": 1e3 * times[len(times) // 2],
                "loss0": loss0,
                "rss_kb": peak_rss_kb(),
            }
        )
    )


if __name__ == "__main__":
    main()
