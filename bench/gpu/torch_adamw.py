#!/usr/bin/env python3
"""GB/s of torch.optim.AdamW(fused=True) on a 256 Mi-element float32 tensor, the comparison for
bench/gpu/optimizer_bench.cc: the same tensor size, a device-to-device copy measured in the same
run, the median of 20 timed steps (CUDA events, after 3 warm-up steps), and bytes counted the
same way, as what the kernel must move: torch's fused AdamW reads W, g, m, v and writes W, m, v
(28 B per element; pipecast's step also writes last_step, 32 B). Prints one line per
measurement; exits 0 with a message when torch or a CUDA device is missing."""

import statistics
import sys

ELEMENTS = 256 << 20
WARMUP = 3
TIMED = 20


def median_ms(torch, call):
    for _ in range(WARMUP):
        call()
    times = []
    for _ in range(TIMED):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def report(what, bytes_per_element, ms, copy_gbps=None):
    gbps = bytes_per_element * ELEMENTS / (ms * 1e-3) / 1e9
    line = (f"{what:<20} {ELEMENTS} elements, {bytes_per_element} B/element, "
            f"median {ms:.3f} ms, {gbps:.1f} GB/s")
    if copy_gbps:
        line += f", {100 * gbps / copy_gbps:.1f}% of the copy"
    print(line)
    return gbps


def main():
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing measured")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 0
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    src = torch.full((ELEMENTS,), 0.0115, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    copy_ms = median_ms(torch, lambda: dst.copy_(src))
    copy_gbps = report("memcpy_d2d", 8, copy_ms)
    del dst
    param = torch.nn.Parameter(src)
    param.grad = torch.full_like(src, 0.0115)
    opt = torch.optim.AdamW([param], lr=1e-3, weight_decay=1e-2, fused=True)
    step_ms = median_ms(torch, opt.step)
    report("torch_adamw_fused", 28, step_ms, copy_gbps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
