#!/usr/bin/python3
"""Export the memplan real-model corpus: training graphs with the loss inside.

Run with Debian's system interpreter (it sees python3-torch / -torchvision / -onnx):

    /usr/bin/python3 tools/export_corpus.py                 # everything into test/models
    /usr/bin/python3 tools/export_corpus.py --only gpt2     # one model (both opsets)
    /usr/bin/python3 tools/export_corpus.py --check         # regenerate into a temp dir and
                                                             # compare with test/models/SHA256SUMS

Every graph takes the model inputs plus integer labels and has a single output,
the scalar `loss` (F.cross_entropy -> SoftmaxCrossEntropyLoss).  Exports use
TrainingMode.TRAINING so BatchNormalization carries training_mode=1 and Dropout
keeps its ratio.  The batch dimension is always named `batch`, the sequence
dimension always `seq`.

After export every floating-point initializer larger than 1 KiB has its data
removed and is marked as external data in NAME.weights.bin (a file that is not
shipped); dims, dtypes and names are kept.  Small and integer initializers stay
inline so constant folding can use them.  The two samples under samples/ keep
all weights inline so they can be executed.
"""

import argparse
import hashlib
import io
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import warnings

# BatchNorm's num_batches_tracked update is dropped by the exporter (expected).
warnings.filterwarnings("ignore", message="ONNX Preprocess - Removing mutation")

OPSETS = (14, 17)
SAMPLE_OPSET = 17
SEED = 0
STRIP_THRESHOLD = 1024  # bytes; float initializers above this become external
SIZE_LIMIT = 1_500_000  # every stripped file must stay well under this
SAMPLE_SIZE_LIMIT = 200_000

# Tracing example sizes (any value > 1 works; the dims are symbolic in the graph).
TRACE_BATCH = 2
TRACE_SEQ = 16


# ----------------------------------------------------------------------------
# Loss wrappers
# ----------------------------------------------------------------------------

class ClassifierLoss(nn.Module):
    """logits [batch, classes] (or [batch, classes, H, W]) + labels -> scalar loss."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input, labels):
        return F.cross_entropy(self.model(input), labels)


class LMLoss(nn.Module):
    """Token model: logits [batch, seq, vocab] reshaped to [batch*seq, vocab]."""

    def __init__(self, model, vocab):
        super().__init__()
        self.model = model
        self.vocab = vocab

    def forward(self, input_ids, labels):
        logits = self.model(input_ids)
        return F.cross_entropy(logits.reshape(-1, self.vocab), labels.reshape(-1))


class Seq2SeqLoss(nn.Module):
    def __init__(self, model, vocab):
        super().__init__()
        self.model = model
        self.vocab = vocab

    def forward(self, input_ids, decoder_input_ids, labels):
        logits = self.model(input_ids, decoder_input_ids)
        return F.cross_entropy(logits.reshape(-1, self.vocab), labels.reshape(-1))


# ----------------------------------------------------------------------------
# U-Net (Ronneberger et al. 2015, with padding and BatchNorm)
# ----------------------------------------------------------------------------

class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    def __init__(self, in_ch=3, n_classes=2, widths=(64, 128, 256, 512, 1024)):
        super().__init__()
        self.inc = DoubleConv(in_ch, widths[0])
        self.downs = nn.ModuleList(
            DoubleConv(widths[i], widths[i + 1]) for i in range(4))
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(4)))
        self.up_convs = nn.ModuleList(
            DoubleConv(2 * widths[i], widths[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    def forward(self, x):
        x = self.inc(x)
        skips = []
        for down in self.downs:
            skips.append(x)
            x = down(self.pool(x))
        for up, conv in zip(self.ups, self.up_convs):
            x = up(x)
            x = conv(torch.cat([skips.pop(), x], dim=1))
        return self.head(x)


def init_normal(module, std=0.02):
    """GPT-2/BERT style init (N(0, std) weights, zero biases): keeps the tied-head
    logits, and so the loss of the executable samples, in a realistic range."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------
# GPT-2 small (Radford et al. 2019)
# ----------------------------------------------------------------------------

class GPT2Attention(nn.Module):
    def __init__(self, d, n_head, p):
        super().__init__()
        self.d, self.n_head, self.hd = d, n_head, d // n_head
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.attn_drop = nn.Dropout(p)
        self.resid_drop = nn.Dropout(p)

    def forward(self, x):
        B, T = x.size(0), x.size(1)
        q, k, v = self.c_attn(x).split(self.d, dim=2)
        q = q.view(B, T, self.n_head, self.hd).transpose(1, 2)
        k = k.view(B, T, self.n_head, self.hd).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.hd).transpose(1, 2)
        att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        causal = torch.tril(torch.ones(T, T, device=x.device))
        att = att.masked_fill(causal == 0, float("-inf"))
        att = self.attn_drop(F.softmax(att, dim=-1))
        y = torch.matmul(att, v).transpose(1, 2).reshape(B, T, self.d)
        return self.resid_drop(self.c_proj(y))


class GPT2MLP(nn.Module):
    def __init__(self, d, p):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.act = nn.GELU(approximate="tanh")  # GPT-2's "gelu_new"
        self.c_proj = nn.Linear(4 * d, d)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return self.drop(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(nn.Module):
    def __init__(self, d, n_head, p):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = GPT2Attention(d, n_head, p)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = GPT2MLP(d, p)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, vocab=50257, n_ctx=1024, d=768, n_layer=12, n_head=12, p=0.1):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(n_ctx, d)
        self.drop = nn.Dropout(p)
        self.h = nn.ModuleList(GPT2Block(d, n_head, p) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        init_normal(self)
        nn.init.normal_(self.wpe.weight, std=0.01)

    def forward(self, input_ids):
        pos = torch.arange(input_ids.size(1), device=input_ids.device)
        x = self.drop(self.wte(input_ids) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        x = self.ln_f(x)
        return F.linear(x, self.wte.weight)  # tied LM head


# ----------------------------------------------------------------------------
# BERT-base with the masked-LM head (Devlin et al. 2019)
# ----------------------------------------------------------------------------

class BertLayer(nn.Module):
    def __init__(self, d, n_head, d_ff, p, eps):
        super().__init__()
        self.d, self.n_head, self.hd = d, n_head, d // n_head
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.attn_drop = nn.Dropout(p)
        self.attn_out = nn.Linear(d, d)
        self.attn_out_drop = nn.Dropout(p)
        self.attn_ln = nn.LayerNorm(d, eps=eps)
        self.intermediate = nn.Linear(d, d_ff)
        self.act = nn.GELU()  # erf GELU
        self.output = nn.Linear(d_ff, d)
        self.out_drop = nn.Dropout(p)
        self.out_ln = nn.LayerNorm(d, eps=eps)

    def heads(self, t, B, T):
        return t.view(B, T, self.n_head, self.hd).permute(0, 2, 1, 3)

    def forward(self, x):
        B, T = x.size(0), x.size(1)
        q = self.heads(self.query(x), B, T)
        k = self.heads(self.key(x), B, T)
        v = self.heads(self.value(x), B, T)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hd)
        a = self.attn_drop(F.softmax(s, dim=-1))
        ctx = torch.matmul(a, v).permute(0, 2, 1, 3).reshape(B, T, self.d)
        x = self.attn_ln(x + self.attn_out_drop(self.attn_out(ctx)))  # post-LN
        h = self.out_drop(self.output(self.act(self.intermediate(x))))
        return self.out_ln(x + h)


class BertMLM(nn.Module):
    def __init__(self, vocab=30522, d=768, n_layer=12, n_head=12, d_ff=3072,
                 max_pos=512, type_vocab=2, p=0.1, eps=1e-12):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, d)
        self.position_embeddings = nn.Embedding(max_pos, d)
        self.token_type_embeddings = nn.Embedding(type_vocab, d)
        self.emb_ln = nn.LayerNorm(d, eps=eps)
        self.emb_drop = nn.Dropout(p)
        self.layers = nn.ModuleList(
            BertLayer(d, n_head, d_ff, p, eps) for _ in range(n_layer))
        # MLM head: transform (dense + GELU + LN), decoder tied to word embeddings.
        self.head_dense = nn.Linear(d, d)
        self.head_act = nn.GELU()
        self.head_ln = nn.LayerNorm(d, eps=eps)
        self.decoder_bias = nn.Parameter(torch.zeros(vocab))
        init_normal(self)

    def forward(self, input_ids):
        pos = torch.arange(input_ids.size(1), device=input_ids.device)
        token_type = torch.zeros_like(input_ids)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(pos)
             + self.token_type_embeddings(token_type))
        x = self.emb_drop(self.emb_ln(x))
        for layer in self.layers:
            x = layer(x)
        x = self.head_ln(self.head_act(self.head_dense(x)))
        return F.linear(x, self.word_embeddings.weight, self.decoder_bias)


# ----------------------------------------------------------------------------
# T5 v1.1 small (Raffel et al. 2020; v1.1 = gated GELU, no bias, untied head)
# ----------------------------------------------------------------------------

class T5RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def t5_relative_bucket(rel, bidirectional, num_buckets, max_distance):
    """Map relative positions (key - query) to bucket ids, all as tensor ops."""
    buckets = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (rel > 0).to(torch.long) * num_buckets
        n = torch.abs(rel)
    else:
        n = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    is_small = n < max_exact
    large = max_exact + (
        torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, n, large)


class T5Attention(nn.Module):
    def __init__(self, d_model, n_head, d_kv, p):
        super().__init__()
        self.n_head, self.d_kv, self.inner = n_head, d_kv, n_head * d_kv
        self.q = nn.Linear(d_model, self.inner, bias=False)
        self.k = nn.Linear(d_model, self.inner, bias=False)
        self.v = nn.Linear(d_model, self.inner, bias=False)
        self.o = nn.Linear(self.inner, d_model, bias=False)
        self.drop = nn.Dropout(p)

    def forward(self, x, kv, bias):
        B, Tq, Tk = x.size(0), x.size(1), kv.size(1)
        q = self.q(x).view(B, Tq, self.n_head, self.d_kv).transpose(1, 2)
        k = self.k(kv).view(B, Tk, self.n_head, self.d_kv).transpose(1, 2)
        v = self.v(kv).view(B, Tk, self.n_head, self.d_kv).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2))  # T5 does not scale scores
        if bias is not None:
            s = s + bias
        a = self.drop(F.softmax(s.float(), dim=-1))
        y = torch.matmul(a, v).transpose(1, 2).reshape(B, Tq, self.inner)
        return self.o(y)


class T5GatedFF(nn.Module):
    def __init__(self, d_model, d_ff, p):
        super().__init__()
        self.wi_0 = nn.Linear(d_model, d_ff, bias=False)
        self.wi_1 = nn.Linear(d_model, d_ff, bias=False)
        self.wo = nn.Linear(d_ff, d_model, bias=False)
        self.act = nn.GELU(approximate="tanh")  # "gelu_new"
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return self.wo(self.drop(self.act(self.wi_0(x)) * self.wi_1(x)))


class T5Layer(nn.Module):
    def __init__(self, d_model, n_head, d_kv, d_ff, p, cross):
        super().__init__()
        self.self_ln = T5RMSNorm(d_model)
        self.self_attn = T5Attention(d_model, n_head, d_kv, p)
        self.self_drop = nn.Dropout(p)
        self.cross = cross
        if cross:
            self.cross_ln = T5RMSNorm(d_model)
            self.cross_attn = T5Attention(d_model, n_head, d_kv, p)
            self.cross_drop = nn.Dropout(p)
        self.ff_ln = T5RMSNorm(d_model)
        self.ff = T5GatedFF(d_model, d_ff, p)
        self.ff_drop = nn.Dropout(p)

    def forward(self, x, bias, enc=None):
        h = self.self_ln(x)
        x = x + self.self_drop(self.self_attn(h, h, bias))
        if self.cross:
            x = x + self.cross_drop(self.cross_attn(self.cross_ln(x), enc, None))
        return x + self.ff_drop(self.ff(self.ff_ln(x)))


class T5Stack(nn.Module):
    def __init__(self, d_model, n_layer, n_head, d_kv, d_ff, p, decoder,
                 num_buckets=32, max_distance=128):
        super().__init__()
        self.decoder = decoder
        self.num_buckets, self.max_distance = num_buckets, max_distance
        # Only the first layer owns the relative bias table; all layers share it.
        self.relative_attention_bias = nn.Embedding(num_buckets, n_head)
        self.layers = nn.ModuleList(
            T5Layer(d_model, n_head, d_kv, d_ff, p, decoder) for _ in range(n_layer))
        self.final_ln = T5RMSNorm(d_model)
        self.drop = nn.Dropout(p)

    def position_bias(self, T, device):
        ctx = torch.arange(T, dtype=torch.long, device=device)[:, None]
        mem = torch.arange(T, dtype=torch.long, device=device)[None, :]
        buckets = t5_relative_bucket(mem - ctx, not self.decoder,
                                     self.num_buckets, self.max_distance)
        bias = self.relative_attention_bias(buckets)  # [T, T, heads]
        bias = bias.permute(2, 0, 1).unsqueeze(0)  # [1, heads, T, T]
        if self.decoder:
            causal = torch.tril(torch.ones(T, T, device=device))
            bias = bias.masked_fill(causal == 0, float("-inf"))
        return bias

    def forward(self, x, enc=None):
        bias = self.position_bias(x.size(1), x.device)
        x = self.drop(x)
        for layer in self.layers:
            x = layer(x, bias, enc)
        return self.drop(self.final_ln(x))


class T5(nn.Module):
    def __init__(self, vocab=32128, d_model=512, n_layer=8, n_head=6, d_kv=64,
                 d_ff=1024, p=0.1):
        super().__init__()
        self.shared = nn.Embedding(vocab, d_model)
        self.encoder = T5Stack(d_model, n_layer, n_head, d_kv, d_ff, p, decoder=False)
        self.decoder = T5Stack(d_model, n_layer, n_head, d_kv, d_ff, p, decoder=True)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)  # untied in v1.1

    def forward(self, input_ids, decoder_input_ids):
        enc = self.encoder(self.shared(input_ids))
        dec = self.decoder(self.shared(decoder_input_ids), enc)
        return self.lm_head(dec)


# ----------------------------------------------------------------------------
# Samples (executed later; all weights inline)
# ----------------------------------------------------------------------------

class TinyCNN(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(3, 16), *block(16, 16), nn.MaxPool2d(2),
            *block(16, 32), nn.MaxPool2d(2),
            *block(32, 64))
        self.pool = nn.AdaptiveAvgPool2d(1)  # -> GlobalAveragePool
        self.fc = nn.Linear(64, n_classes)  # 2-D input -> Gemm

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class TinyTransformer(nn.Module):
    """Pre-LN causal decoder: 2 layers, d=64, 4 heads, vocab 256, context 64."""

    def __init__(self, vocab=256, n_ctx=64, d=64, n_layer=2, n_head=4, p=0.1):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(n_ctx, d)
        self.drop = nn.Dropout(p)
        self.h = nn.ModuleList(GPT2Block(d, n_head, p) for _ in range(n_layer))
        for blk in self.h:
            blk.mlp.act = nn.GELU()
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.wte.weight  # tied
        init_normal(self)

    def forward(self, input_ids):
        pos = torch.arange(input_ids.size(1), device=input_ids.device)
        x = self.drop(self.wte(input_ids) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.head(self.ln_f(x))


# ----------------------------------------------------------------------------
# Model table
# ----------------------------------------------------------------------------

def image_inputs(size, seg=False):
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(TRACE_BATCH, 3, size, size, generator=g)
    if seg:
        y = torch.randint(0, 2, (TRACE_BATCH, size, size), generator=g)
        lab_axes = {0: "batch"}
    else:
        y = torch.randint(0, 10, (TRACE_BATCH,), generator=g)
        lab_axes = {0: "batch"}
    return (x, y), ["input", "labels"], {"input": {0: "batch"}, "labels": lab_axes}


def token_inputs(vocab, names=("input_ids", "labels")):
    g = torch.Generator().manual_seed(SEED)
    args = tuple(torch.randint(0, vocab, (TRACE_BATCH, TRACE_SEQ), generator=g)
                 for _ in names)
    return args, list(names), {n: {0: "batch", 1: "seq"} for n in names}


def torchvision_model(name):
    fn = getattr(torchvision.models, name)
    m = fn(weights=None, num_classes=1000)
    # Bernoulli does not export: disable stochastic depth wherever it occurs.
    sd = getattr(torchvision.ops, "StochasticDepth", None)
    for mod in m.modules():
        if sd is not None and isinstance(mod, sd):
            mod.p = 0.0
    return m


def build(name):
    """Return (wrapper, args, input_names, dynamic_axes)."""
    if name in ("resnet18", "resnet50", "mobilenet_v2", "vgg16"):
        return (ClassifierLoss(torchvision_model(name)),) + image_inputs(224)
    if name == "vit_b_16":
        return (ClassifierLoss(torchvision_model(name)),) + image_inputs(224)
    if name == "unet":
        return (ClassifierLoss(UNet()),) + image_inputs(256, seg=True)
    if name == "gpt2":
        return (LMLoss(GPT2(), 50257),) + token_inputs(50257)
    if name == "bert":
        return (LMLoss(BertMLM(), 30522),) + token_inputs(30522)
    if name == "t5":
        return (Seq2SeqLoss(T5(), 32128),) + token_inputs(
            32128, ("input_ids", "decoder_input_ids", "labels"))
    if name == "tiny_cnn":
        (x, _), names, axes = image_inputs(32)
        y = torch.randint(0, 10, (TRACE_BATCH,), generator=torch.Generator().manual_seed(1))
        return ClassifierLoss(TinyCNN()), (x, y), names, axes
    if name == "tiny_transformer":
        return (LMLoss(TinyTransformer(), 256),) + token_inputs(256)
    raise KeyError(name)


MODELS = ["resnet18", "resnet50", "mobilenet_v2", "vgg16", "unet", "vit_b_16",
          "gpt2", "bert", "t5"]
SAMPLES = ["tiny_cnn", "tiny_transformer"]


# ----------------------------------------------------------------------------
# Export + weight stripping
# ----------------------------------------------------------------------------

FLOAT_TYPES = {
    onnx.TensorProto.FLOAT: 4, onnx.TensorProto.DOUBLE: 8,
    onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.BFLOAT16: 2,
}


def export_proto(name, opset):
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    wrapper, args, input_names, axes = build(name)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            wrapper, args, buf,
            training=torch.onnx.TrainingMode.TRAINING,
            do_constant_folding=False,
            opset_version=opset,
            input_names=input_names,
            output_names=["loss"],
            dynamic_axes=axes,
            verbose=False)
    del wrapper
    model = onnx.load_from_string(buf.getvalue())
    # Determinism / hygiene: no doc strings (they may carry source paths).
    model.ClearField("doc_string")
    model.graph.ClearField("doc_string")
    for node in model.graph.node:
        node.ClearField("doc_string")
    onnx.checker.check_model(model)
    return model


def strip_weights(model, name):
    location = name + ".weights.bin"
    offset = 0
    stripped = 0
    for t in model.graph.initializer:
        if t.data_type not in FLOAT_TYPES:
            continue
        nbytes = int(np.prod(t.dims, dtype=np.int64)) * FLOAT_TYPES[t.data_type]
        if nbytes <= STRIP_THRESHOLD:
            continue
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.ClearField("double_data")
        t.ClearField("int32_data")  # float16/bfloat16 storage
        del t.external_data[:]
        t.data_location = onnx.TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", str(offset)),
                     ("length", str(nbytes))):
            e = t.external_data.add()
            e.key, e.value = k, v
        offset += nbytes
        stripped += 1
    return stripped, offset


def write_model(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = model.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def export_one(name, opset, out_dir, sample):
    model = export_proto(name, opset)
    if sample:
        path = os.path.join(out_dir, "samples", name + ".onnx")
        size = write_model(model, path)
        limit = SAMPLE_SIZE_LIMIT
        extra = "all weights inline"
    else:
        path = os.path.join(out_dir, "opset%d" % opset, name + ".onnx")
        n, nbytes = strip_weights(model, name)
        size = write_model(model, path)
        limit = SIZE_LIMIT
        extra = "%d initializers external (%.1f MB)" % (n, nbytes / 1e6)
    flag = "" if size < limit else "  !! OVER %d BYTES" % limit
    print("%-44s %9d bytes  %5d nodes  %s%s" % (
        os.path.relpath(path, out_dir), size, len(model.graph.node), extra, flag),
        flush=True)
    return path


# ----------------------------------------------------------------------------
# Verification, README, SHA256SUMS
# ----------------------------------------------------------------------------

def model_files(out_dir):
    files = []
    for root, _, names in os.walk(out_dir):
        for n in names:
            if n.endswith(".onnx"):
                files.append(os.path.relpath(os.path.join(root, n), out_dir))
    return sorted(files)


def sha256sums(out_dir):
    lines = []
    for rel in model_files(out_dir):
        with open(os.path.join(out_dir, rel), "rb") as f:
            lines.append("%s  %s\n" % (hashlib.sha256(f.read()).hexdigest(), rel))
    return "".join(lines)


def summarize(out_dir):
    """{group: {model: (nodes, optypes, size, opset, inputs)}}"""
    groups = {}
    for rel in model_files(out_dir):
        path = os.path.join(out_dir, rel)
        m = onnx.load(path, load_external_data=False)
        group = os.path.dirname(rel)
        ops = sorted({(n.domain or "") + ("." if n.domain else "") + n.op_type
                      for n in m.graph.node})
        opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
        inputs = []
        for i in m.graph.input:
            tt = i.type.tensor_type
            dims = [d.dim_param if d.HasField("dim_param") else str(d.dim_value)
                    for d in tt.shape.dim]
            inputs.append("%s %s[%s]" % (
                i.name, onnx.TensorProto.DataType.Name(tt.elem_type).lower(),
                ",".join(dims)))
        ext = sum(1 for t in m.graph.initializer
                  if t.data_location == onnx.TensorProto.EXTERNAL)
        groups.setdefault(group, {})[os.path.splitext(os.path.basename(rel))[0]] = dict(
            nodes=len(m.graph.node), ops=ops, size=os.path.getsize(path), opset=opset,
            inputs=inputs, inits=len(m.graph.initializer), ext=ext)
    return groups


MODEL_DOC = {
    "resnet18": ("ResNet-18 (He et al. 2015), 1000 classes", "torchvision.models.resnet18",
                 "cnn"),
    "resnet50": ("ResNet-50 (bottleneck v1.5), 1000 classes", "torchvision.models.resnet50",
                 "cnn"),
    "mobilenet_v2": ("MobileNetV2, width 1.0, 1000 classes",
                     "torchvision.models.mobilenet_v2", "cnn"),
    "vgg16": ("VGG-16 (no BN), classifier Dropout p=0.5 kept, 1000 classes",
              "torchvision.models.vgg16", "cnn"),
    "unet": ("U-Net: 4 down / 4 up, widths 64-1024, double 3x3 conv + BatchNorm + ReLU, "
             "MaxPool down, ConvTranspose 2x2 up, skip Concat, 1x1 head, 2 classes, "
             "per-pixel cross entropy", "written here (tools/export_corpus.py: UNet)",
             "unet"),
    "vit_b_16": ("ViT-B/16: 12 layers, d=768, 12 heads, MLP 3072, patch 16, 224x224, "
                 "1000 classes (no stochastic depth in this torchvision version)",
                 "torchvision.models.vit_b_16", "cnn"),
    "gpt2": ("GPT-2 small: 12 layers, d=768, 12 heads, vocab 50257, 1024 learned "
             "positions, pre-LN, tanh GELU, dropout 0.1, tied input/output embedding, "
             "causal mask from tril(ones(seq,seq)) and positions from arange(seq) at run "
             "time", "written here (GPT2)", "lm"),
    "bert": ("BERT-base MLM: 12 layers, d=768, 12 heads, FF 3072, vocab 30522, 512 learned "
             "positions + token-type embedding (all type 0), post-LN (eps 1e-12), erf GELU, "
             "dropout 0.1, MLM head (dense+GELU+LN, decoder tied to word embeddings + "
             "bias), loss over all tokens; no pooler (unused by the MLM loss)",
             "written here (BertMLM)", "lm"),
    "t5": ("T5 v1.1 small: d_model 512, 8 encoder + 8 decoder layers, 6 heads, d_kv 64, "
           "d_ff 1024, vocab 32128, RMSNorm, relative position bias (32 buckets, max "
           "distance 128; bidirectional in the encoder, causal in the decoder) computed at "
           "run time from arange(seq), gated tanh-GELU FF, shared input embedding, untied "
           "LM head, no biases, dropout 0.1", "written here (T5)", "t5"),
    "tiny_cnn": ("4x (Conv3x3+BatchNorm+ReLU), 2 MaxPool, GlobalAveragePool, Gemm, 10 "
                 "classes; all weights inline", "written here (TinyCNN)", "tiny_cnn"),
    "tiny_transformer": ("pre-LN causal decoder: 2 layers, d=64, 4 heads, MLP 256, vocab "
                         "256, context 64, LayerNorm, erf GELU, dropout 0.1, tied head; "
                         "all weights inline (about 510 KB: at these dims the fp32 weights "
                         "alone are about 490 KB, above the 200 KB sample target)", "written here (TinyTransformer)", "lm"),
}

BINDINGS = {
    "resnet18": ("batch=2", "batch=32"), "resnet50": ("batch=2", "batch=32"),
    "mobilenet_v2": ("batch=2", "batch=32"), "vgg16": ("batch=2", "batch=32"),
    "vit_b_16": ("batch=2", "batch=32"), "unet": ("batch=2", "batch=32"),
    "gpt2": ("batch=2 seq=64", "batch=8 seq=1024"),
    "bert": ("batch=2 seq=64", "batch=8 seq=512"),
    "t5": ("batch=2 seq=64", "batch=8 seq=512"),
    "tiny_cnn": ("batch=2", "batch=32"),
    "tiny_transformer": ("batch=2 seq=64", "batch=8 seq=64"),
}


def write_readme(out_dir, groups):
    L = []
    w = L.append
    w("# memplan real-model corpus\n\n")
    w("Generated by `tools/export_corpus.py` (this file too). Do not edit by hand.\n\n")
    w("Training-mode graphs (`torch.onnx.export(..., training=TrainingMode.TRAINING, "
      "do_constant_folding=False)`) with the loss inside the graph: every model has the "
      "model inputs plus integer `labels` as graph inputs and one output, the scalar "
      "`loss` (F.cross_entropy exported as SoftmaxCrossEntropyLoss, mean reduction, "
      "ignore_index=-100). Transformer logits are reshaped to `[batch*seq, vocab]` "
      "before the loss. BatchNormalization has training_mode=1; Dropout keeps its ratio "
      "with training_mode=true.\n\n")
    w("Exported with torch %s, torchvision %s, onnx %s (Debian 12 packages), weights "
      "randomly initialised with seed %d.\n\n" % (
          torch.__version__, torchvision.__version__, onnx.__version__, SEED))
    w("## Symbolic dims\n\n")
    w("The batch dimension is named `batch` on every input; the sequence dimension is "
      "named `seq` on every token input (`input_ids`, `decoder_input_ids`, `labels`), so "
      "`memplan --dim batch=8 --dim seq=512` binds every model the same way. Dynamic "
      "exports carry Shape/Gather/Unsqueeze/Concat chains, Range (positions) and Trilu "
      "(causal masks) that constant folding resolves once the dims are bound.\n\n")
    w("## Weights\n\n")
    w("In `opset14/` and `opset17/` every floating-point initializer larger than %d bytes "
      "has no data: `data_location = EXTERNAL`, `external_data = {location: "
      "NAME.weights.bin, offset, length}` with offsets as if the tensors were laid out "
      "back to back in initializer order. **The .weights.bin files are not shipped**; "
      "load with `onnx.load(path, load_external_data=False)`. Names, dims and dtypes of "
      "all initializers are kept. Integer initializers and float initializers up to %d "
      "bytes are inline (constant folding needs them). `samples/` holds two tiny models "
      "(opset %d) with all weights inline, meant to be executed.\n\n" % (
          STRIP_THRESHOLD, STRIP_THRESHOLD, SAMPLE_OPSET))
    w("## Regenerate / verify\n\n")
    w("```sh\n/usr/bin/python3 tools/export_corpus.py                # all models, "
      "README.md and SHA256SUMS\n"
      "/usr/bin/python3 tools/export_corpus.py --only gpt2    # one model (both opsets)\n"
      "/usr/bin/python3 tools/export_corpus.py --check        # regenerate into a temp dir, "
      "compare with SHA256SUMS\n"
      "cd test/models && sha256sum -c SHA256SUMS             # integrity of the checked-in "
      "files\n```\n\n")
    w("Use Debian's `/usr/bin/python3` (the pyenv `python3` on PATH does not see the Debian "
      "torch packages). Exports are deterministic: a second run reproduces SHA256SUMS "
      "byte for byte.\n\n")
    v18 = os.path.join(out_dir, "opset18plus", "VERSIONS.txt")
    if os.path.exists(v18):
        with open(v18) as f:
            w("## opset18plus/\n\nWritten by `tools/export_opset18plus.py` (see its "
              "docstring for the venv), not by this tool: %s\nOnly models without "
              "BatchNormalization: that exporter writes BatchNormalization without "
              "training_mode (inference semantics) even in train mode. Regenerate with "
              "`/tmp/venv-new/bin/python tools/export_opset18plus.py && /usr/bin/python3 "
              "tools/export_corpus.py --index-only`.\n\n" % f.read().strip())
    w("## Models\n\n")
    names = MODELS + SAMPLES
    for name in names:
        desc, src, kind = MODEL_DOC[name]
        small, real = BINDINGS[name]
        w("### %s\n\n" % name)
        w("- Architecture: %s\n" % desc)
        w("- Source: %s\n" % src)
        infos = [(g, groups[g][name]) for g in sorted(groups) if name in groups[g]]
        if infos:
            w("- Inputs: %s\n" % ", ".join("`%s`" % s for s in infos[0][1]["inputs"]))
        w("- Output: `loss float[]` (scalar)\n")
        w("- Symbolic dims: %s\n" % ("`batch`, `seq`" if "seq" in small else "`batch`"))
        w("- Small binding: `%s`; realistic binding: `%s`\n" % (
            " ".join("--dim " + b for b in small.split()),
            " ".join("--dim " + b for b in real.split())))
        for g, info in infos:
            w("- `%s/%s.onnx`: opset %d, %d nodes, %d initializers (%d external), %d bytes\n"
              % (g, name, info["opset"], info["nodes"], info["inits"], info["ext"],
                 info["size"]))
        w("- Regenerate: `/usr/bin/python3 tools/export_corpus.py --only %s`\n\n" % name)
    w("## Op types used (the C++ importer must cover all of them)\n\n")
    for g in sorted(groups):
        union = sorted(set().union(*(set(i["ops"]) for i in groups[g].values())))
        w("### %s (%d op types)\n\n" % (g, len(union)))
        w(", ".join(union) + "\n\n")
        w("| model | nodes | op types |\n|---|---|---|\n")
        for name in names:
            if name in groups[g]:
                i = groups[g][name]
                w("| %s | %d | %s |\n" % (name, i["nodes"], " ".join(i["ops"])))
        w("\n")
    allops = sorted(set().union(*(set(i["ops"]) for g in groups.values()
                                  for i in g.values())))
    w("### union over all files (%d op types)\n\n%s\n" % (len(allops), ", ".join(allops)))
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("".join(L))


def finish(out_dir):
    groups = summarize(out_dir)
    for g in sorted(groups):
        union = sorted(set().union(*(set(i["ops"]) for i in groups[g].values())))
        print("%s op types (%d): %s" % (g, len(union), " ".join(union)))
    write_readme(out_dir, groups)
    with open(os.path.join(out_dir, "SHA256SUMS"), "w") as f:
        f.write(sha256sums(out_dir))


def run_exports(out_dir, only):
    todo = [n for n in MODELS + SAMPLES if only is None or n in only]
    if only:
        unknown = set(only) - set(MODELS + SAMPLES)
        if unknown:
            sys.exit("unknown model(s): %s" % ", ".join(sorted(unknown)))
    for name in todo:
        if name in SAMPLES:
            export_one(name, SAMPLE_OPSET, out_dir, sample=True)
        else:
            for opset in OPSETS:
                export_one(name, opset, out_dir, sample=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out-dir", default=os.path.join(here, "..", "test", "models"))
    ap.add_argument("--only", action="append",
                    help="export only this model (repeatable): " + ", ".join(MODELS + SAMPLES))
    ap.add_argument("--check", action="store_true",
                    help="regenerate everything into a temporary directory and compare "
                         "with OUT_DIR/SHA256SUMS")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--index-only", action="store_true",
                    help="only rewrite README.md and SHA256SUMS from the files present "
                         "(e.g. after tools/export_opset18plus.py)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out_dir = os.path.normpath(a.out_dir)

    if a.check:
        with open(os.path.join(out_dir, "SHA256SUMS")) as f:
            want = f.read()
        tmp = tempfile.mkdtemp(prefix="memplan-corpus-")
        try:
            run_exports(tmp, a.only)
            got = sha256sums(tmp)
        finally:
            shutil.rmtree(tmp)
        want_d = {l.split()[1]: l.split()[0] for l in want.splitlines()}
        got_d = {l.split()[1]: l.split()[0] for l in got.splitlines()}
        bad = [p for p in got_d if want_d.get(p) != got_d[p]]
        if not a.only:
            bad += [p for p in want_d if p not in got_d
                    and not p.startswith("opset18plus/")]
        # opset18plus/ comes from tools/export_opset18plus.py (another torch):
        # only verify the checked-in files against their recorded hashes.
        have = dict(l.split()[::-1] for l in sha256sums(out_dir).splitlines())
        bad += [p for p in want_d if p.startswith("opset18plus/")
                and have.get(p) != want_d[p]]
        for p in sorted(set(bad)):
            print("MISMATCH %s" % p)
        print("check: %d files regenerated, %d mismatches" % (len(got_d), len(set(bad))))
        sys.exit(1 if bad else 0)

    if not a.index_only:
        run_exports(out_dir, a.only)
    finish(out_dir)


if __name__ == "__main__":
    main()
