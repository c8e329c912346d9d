#!/usr/bin/env python3
"""Prints the GPU check's one table (Markdown) from the files bench/gpu/check.sh wrote.
Usage: check_table.py OUT_DIR PASSED TOTAL"""
import glob
import json
import os
import re
import sys


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def last_eval(path):
    try:
        with open(path) as f:
            r = json.load(f)["results"][0]
        return r["evaluations"][-1]
    except (OSError, ValueError, KeyError, IndexError):
        return None


def compare_sim(text):
    """(measured ms, simulated ms, error %) from --compare-sim's table."""
    m = re.search(r"^\S+\s+([0-9.]+)ms\s+([0-9.]+)ms\s+([-+0-9.]+)%", text, re.M)
    return (float(m.group(1)), float(m.group(2)), float(m.group(3))) if m else None


def main():
    out, passed, total = sys.argv[1], sys.argv[2], sys.argv[3]
    rows = [("GPU", read(os.path.join(out, "gpu.txt")).strip() or "?"),
            ("GPU tests passed", f"{passed} / {total}")]
    for name in ("gemm.txt", "optimizer.txt", "torch_adamw.txt", "torch_gpt.txt"):
        for line in read(os.path.join(out, name)).splitlines():
            if line.strip():
                rows.append((name[:-4], line.strip()))
    print("| item | result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print("\n| GPT method (4 stages, 1 GPU) | time/minibatch measured | simulated | error "
          "| loss after 30 steps | small copy loss, cpu | small copy loss, cuda |")
    print("|---|---|---|---|---|---|---|")
    small = {}
    for dev in ("cpu", "cuda"):
        try:
            with open(os.path.join(out, f"small-{dev}.json")) as f:
                for r in json.load(f)["results"]:
                    small[(r["method"], dev)] = r["evaluations"][-1]["train_loss"]
        except (OSError, ValueError, KeyError):
            pass
    for txt in sorted(glob.glob(os.path.join(out, "gpt-*.txt"))):
        method = os.path.basename(txt)[4:-4]
        ev = last_eval(txt[:-4] + ".json")
        cs = compare_sim(read(txt))
        base = method.replace("-sm", "").replace("-bf16", "")
        cells = [f"{cs[0]:.1f} ms" if cs else "-", f"{cs[1]:.1f} ms" if cs else "-",
                 f"{cs[2]:+.1f}%" if cs else "-", f"{ev['train_loss']:.4f}" if ev else "failed: " + read(txt).strip()[:80],
                 f"{small[(base, 'cpu')]:.4f}" if (base, "cpu") in small else "-",
                 f"{small[(base, 'cuda')]:.4f}" if (base, "cuda") in small else "-"]
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
