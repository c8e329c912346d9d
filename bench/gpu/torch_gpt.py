#!/usr/bin/env python3
"""The GPU check's PyTorch baseline: the GPT of bench/gpu/gpt.job.yaml written in PyTorch
(token and position embeddings, pre-LayerNorm blocks of causal self-attention and a 4x GELU
(tanh) MLP, a final LayerNorm and a linear head; the layer shapes and parameter layout of
pipecast's models/model.h GPT), trained with AdamW on one minibatch of 32 sequences of 512 tokens
per step, in float32 with TF32 off (pipecast's CUDA device uses no TF32). Prints the median time
of a training step over 20 steps after 5 warm-up steps, with and without fused AdamW. Exits 0 with
a message when PyTorch or a GPU is missing."""
import statistics
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("torch_gpt: PyTorch is not installed")
    sys.exit(0)

LAYERS, HIDDEN, HEADS, SEQ, VOCAB, BATCH = 8, 1024, 16, 512, 64, 32


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN)
        self.qkv, self.proj = nn.Linear(HIDDEN, 3 * HIDDEN), nn.Linear(HIDDEN, HIDDEN)
        self.fc, self.out = nn.Linear(HIDDEN, 4 * HIDDEN), nn.Linear(4 * HIDDEN, HIDDEN)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(HIDDEN, dim=2)
        q, k, v = (t.view(b, s, HEADS, h // HEADS).transpose(1, 2) for t in (q, k, v))
        ctx = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(ctx.transpose(1, 2).reshape(b, s, h))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(VOCAB, HIDDEN), nn.Embedding(SEQ, HIDDEN)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln, self.head = nn.LayerNorm(HIDDEN), nn.Linear(HIDDEN, VOCAB)

    def forward(self, ids):
        x = self.tok(ids) + self.pos(torch.arange(SEQ, device=ids.device))
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln(x))


def median_step_ms(fused):
    torch.manual_seed(1)
    model = Gpt().cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=fused)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), device="cuda")
    labels = torch.randint(0, VOCAB, (BATCH, SEQ), device="cuda")
    times = []
    for step in range(25):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        loss = F.cross_entropy(model(ids).view(-1, VOCAB), labels.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        end.record()
        torch.cuda.synchronize()
        if step >= 5:
            times.append(start.elapsed_time(end))
    return statistics.median(times), sum(p.numel() for p in model.parameters())


def main():
    if not torch.cuda.is_available():
        print("torch_gpt: no CUDA device")
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for fused in (True, False):
        ms, params = median_step_ms(fused)
        print(f"torch_gpt: fused_adamw={fused} params={params} step_ms={ms:.2f} "
              f"tokens_per_s={BATCH * SEQ / ms * 1e3:.0f}")


if __name__ == "__main__":
    main()
