#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, fuzz/corpus/<kind>/ (safetensors' seeds are older and kept as
they are). Standard library only; run from anywhere: python3 fuzz/make_corpus.py. Each seed is small: a valid
file of the kind, or one edge case the reader must refuse with draft::Error."""
import gzip
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def put(kind, name, data):
    folder = os.path.join(HERE, "corpus", kind)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


# --- IDX: magic 0 0 0x08 ndim, big-endian uint32 dimensions, then the bytes ---------------------------------
def idx(shape, payload, type_code=0x08):
    return bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape) + payload


def idx_seeds():
    labels = idx([10], bytes(range(10)))
    images = idx([2, 4, 4], bytes((i * 17) % 256 for i in range(32)))
    put("idx", "labels_plain", labels)
    put("idx", "images_plain", images)
    put("idx", "labels_gz", gzip.compress(labels, mtime=0))
    put("idx", "images_gz", gzip.compress(images, mtime=0))
    put("idx", "zero_dim", idx([0, 28, 28], b""))
    put("idx", "eight_dims", idx([1, 1, 1, 1, 1, 1, 1, 2], b"ab"))
    put("idx", "truncated", idx([3, 3], b"abc"))
    put("idx", "float_type", idx([1], b"\0\0\0\0", type_code=0x0D))
    put("idx", "huge_declared", idx([60000, 28, 28], b"x"))


# --- PNG: signature, chunks with CRCs; scanlines zlib-compressed ---------------------------------------------
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width, height, bit_depth, color_type, rows, interlace=0, extra=b"", filters=None):
    raw = b""
    for i, row in enumerate(rows):
        raw += bytes([filters[i % len(filters)] if filters else 0]) + row
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw, 9)) +
            chunk(b"IEND", b""))


def png_seeds():
    put("png", "gray8_3x2", png(3, 2, 8, 0, [b"\x00\x80\xff", b"\x10\x20\x30"]))
    put("png", "rgb8_2x2", png(2, 2, 8, 2, [b"\xff\x00\x00\x00\xff\x00", b"\x00\x00\xff\xff\xff\xff"]))
    put("png", "rgba8_2x1", png(2, 1, 8, 6, [b"\xff\x00\x00\x80\x00\xff\x00\xff"]))
    put("png", "gray_alpha8_1x2", png(1, 2, 8, 4, [b"\x40\xff", b"\xc0\x00"]))
    put("png", "gray16_2x2", png(2, 2, 16, 0, [b"\x00\x00\xff\xff", b"\x12\x34\x80\x00"]))
    put("png", "rgb16_1x1", png(1, 1, 16, 2, [b"\xff\xff\x00\x00\x80\x00"]))
    put("png", "gray1_8x2", png(8, 2, 1, 0, [b"\xaa", b"\x55"]))
    put("png", "gray4_4x1", png(4, 1, 4, 0, [b"\x0f\xf0"]))
    plte = chunk(b"PLTE", b"\x00\x00\x00\xff\x00\x00\x00\xff\x00\x00\x00\xff")
    trns = chunk(b"tRNS", b"\xff\x80")
    put("png", "palette2_4x1", png(4, 1, 2, 3, [b"\x1b"], extra=plte + trns))
    put("png", "palette8_2x2", png(2, 2, 8, 3, [b"\x00\x01", b"\x02\x03"], extra=plte))
    # Adam7 interlacing, 3x3 gray: passes 1, 6 (x=1), 7 (row 1) -> the reference scanline layout.
    passes = [b"\x00\x10", b"\x00\x20", b"\x00\x30\x40\x50", b"\x00\x60\x70\x80", b"\x00\x90"]
    put("png", "interlaced_gray8_3x3",
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 3, 8, 0, 0, 0, 1)) +
        chunk(b"IDAT", zlib.compress(b"".join(passes))) + chunk(b"IEND", b""))
    rows = [bytes([(x * 40 + y * 20) % 256 for x in range(4) for _ in range(3)]) for y in range(4)]
    put("png", "rgb8_filters_4x4", png(4, 4, 8, 2, rows, filters=[1, 2, 3, 4]))
    gama = chunk(b"gAMA", struct.pack(">I", 45455))
    put("png", "gray8_gamma", png(2, 1, 8, 0, [b"\x00\xff"], extra=gama))
    put("png", "huge_declared", png(100000, 100000, 8, 2, [b""]))
    put("png", "truncated", png(2, 2, 8, 0, [b"\x00\x00", b"\x00\x00"])[:40])
    # fuzz_png's out-of-memory finding: a tEXt chunk that declares 0x69545874 bytes in a 46-byte file.
    put("png", "oversized_text_chunk", png(3, 3, 8, 0, [b""])[:8 + 25] + b"iTXttEXtIDAT`")


# --- prompt files ----------------------------------------------------------------------------------------------
def prompt_seeds():
    put("prompt_file", "fashion", read("configs/fashion-prompts.txt"))
    put("prompt_file", "animals", read("configs/animal-prompts.txt"))
    put("prompt_file", "crlf_and_blank", "a cat\r\n\r\n\n  \na dog\r\n")
    put("prompt_file", "blank_only", "\n\r\n\n")
    put("prompt_file", "invalid_utf8", b"a photo of a \xff\xfe cat\n\xc3\x28\n\xed\xa0\x80 surrogate\n")
    put("prompt_file", "special_tokens", "<|startoftext|>a cat<|endoftext|>\n<|ENDOFTEXT|> it's you'll\n")
    put("prompt_file", "unicode", "Ünïcödé ΣΑΣ İstanbul 東京 ﬁ\u200d\u00ad 🐱 café\u0301\n\t tabs\u3000and\u2028lines\n")
    put("prompt_file", "long_line", " ".join(["a photograph of an astronaut riding a horse"] * 40) + "\n")
    put("prompt_file", "no_newline", "a single prompt without a newline")


# --- tokenizer folders: four files joined by lines "--8<--" -------------------------------------------------
SEP = b"\n--8<--\n"


def tokenizer_input(vocab, merges, config=None, special=None):
    parts = [vocab, merges] + ([config] if config is not None or special is not None else [])
    if special is not None:
        parts.append(special)
    return SEP.join(p if isinstance(p, bytes) else p.encode("utf-8") for p in parts)


def tokenizer_seeds():
    folder = "models/fashion-sd/tokenizer/"
    put("tokenizer", "fashion_sd", tokenizer_input(read(folder + "vocab.json"), read(folder + "merges.txt"),
                                                   read(folder + "tokenizer_config.json"),
                                                   read(folder + "special_tokens_map.json")))
    vocab = {"a</w>": 0, "c": 1, "a": 2, "t</w>": 3, "ca": 4, "cat</w>": 5, "!": 6, "<|startoftext|>": 7,
             "<|endoftext|>": 8}
    merges = "#version: 0.2\nc a\nca t</w>\n"
    put("tokenizer", "tiny_required_only", tokenizer_input(json.dumps(vocab), merges))
    sd2_config = {"model_max_length": 8, "clean_up_tokenization_spaces": False, "errors": "replace",
                  "added_tokens_decoder": {"7": {"content": "<|startoftext|>", "special": True},
                                           "8": {"content": "<|endoftext|>", "special": True, "lstrip": True,
                                                 "rstrip": True}},
                  "additional_special_tokens": ["ca"]}
    sd2_map = {"pad_token": "!", "bos_token": {"content": "<|startoftext|>"}, "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>"}
    put("tokenizer", "tiny_sd2_pad", tokenizer_input(json.dumps(vocab), merges, json.dumps(sd2_config),
                                                     json.dumps(sd2_map)))
    put("tokenizer", "bad_max_length", tokenizer_input(json.dumps(vocab), merges, '{"model_max_length": 1e30}'))
    put("tokenizer", "bad_merge_line", tokenizer_input(json.dumps(vocab), "#version: 0.2\nc a t\n"))
    put("tokenizer", "typed_fields", tokenizer_input(
        json.dumps(vocab), merges, '{"errors": 1, "added_tokens_decoder": {"9x": {"content": "z", "special": 1}}}'))


# --- config files ----------------------------------------------------------------------------------------------
def config_seeds():
    for name in ["fashion-draft-lv.json", "sd15-aesthetic-draft-lv.json", "sd15-hpsv2-draft-lv.json",
                 "bench-efficiency.json"]:
        put("config", name.replace(".json", ""), read("configs/" + name))
    put("config", "pretrain_classifier",
        json.dumps({"epochs": 2, "batch_size": 64, "lr": 1e-3, "out_dir": "runs/c", "limit": 100}))
    put("config", "pretrain_vae", json.dumps({"epochs": 1, "model": {"latent_channels": 4}, "out_dir": "runs/v"}))
    put("config", "pretrain_unet",
        json.dumps({"vae_dir": "runs/v/model", "max_length": 16, "unet": {"block_out_channels": [32, 64]},
                    "scheduler": {"num_train_timesteps": 1000}, "caption_templates": ["a {class}"]}))
    put("config", "wrong_types", json.dumps({"train": {"steps": "ten", "seed": -1}, "lora": {"rank": 2.5}}))
    put("config", "float_for_integer", json.dumps({"train": {"steps": 1e30}}))
    put("config", "not_an_object", "[1, 2, 3]")
    put("config", "nulls", json.dumps({"method": None, "optimizer": {"lr": None}}))
    put("config", "bench_quick", json.dumps({"out_dir": "x", "seeds": [0], "tasks": {"t": {"reward": "jpeg"}},
                                             "methods": {"m": {"config": {"optimizer": {"lr": 1e-3}}}},
                                             "quick": {"seeds": [1e30]}}))


# --- LoRA files (safetensors) for the tiny SD-1.x UNet (UNetConfig::tiny(): 32 and 64 channels) ---------------
def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(shape, value=0.01):
    n = 1
    for d in shape:
        n *= d
    return ("F32", shape, struct.pack("<%df" % n, *[value * ((i % 7) - 3) for i in range(n)]))


def f16(shape):
    n = 1
    for d in shape:
        n *= d
    return ("F16", shape, struct.pack("<%de" % n, *[0.01 * ((i % 5) - 2) for i in range(n)]))


def lora_seeds():
    q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    k2 = "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k"
    mid = "mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0"
    ff = "down_blocks.0.attentions.1.transformer_blocks.0.ff.net.0.proj"
    put("lora", "peft_rank1", safetensors(
        {f"unet.{q}.lora_A.weight": f32([1, 32]), f"unet.{q}.lora_B.weight": f32([32, 1]),
         f"unet.{k2}.lora_A.weight": f32([1, 32]), f"unet.{k2}.lora_B.weight": f32([32, 1])},
        {"format": "pt", "lora_adapter_metadata": json.dumps({"unet.r": 1, "unet.lora_alpha": 2})}))
    put("lora", "peft_draft_metadata", safetensors(
        {f"unet.{mid}.lora_A.weight": f32([2, 64]), f"unet.{mid}.lora_B.weight": f32([64, 2])},
        {"draft_lora_config": json.dumps({"rank": 2, "alpha": 2, "targets": ["to_out.0"]})}))
    put("lora", "kohya_alpha", safetensors(
        {"lora_unet_" + q.replace(".", "_") + ".alpha": ("F32", [], struct.pack("<f", 4.0)),
         "lora_unet_" + q.replace(".", "_") + ".lora_down.weight": f16([2, 32]),
         "lora_unet_" + q.replace(".", "_") + ".lora_up.weight": f16([32, 2])},
        {"ss_network_dim": "2", "ss_network_alpha": "4.0"}))
    ldm = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_v"
    put("lora", "kohya_ldm_names", safetensors(
        {ldm + ".lora_down.weight": f32([1, 32]), ldm + ".lora_up.weight": f32([32, 1]),
         ldm + ".alpha": ("BF16", [], b"\x80\x3f")}))
    old = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora"
    put("lora", "old_diffusers_processor", safetensors(
        {f"unet.{old}.down.weight": f32([1, 32]), f"unet.{old}.up.weight": f32([32, 1])}))
    put("lora", "feed_forward", safetensors(
        {f"{ff}.lora_A.weight": f32([1, 32]), f"{ff}.lora_B.weight": f32([256, 1])}))
    put("lora", "rank0_with_alpha", safetensors(
        {f"unet.{q}.lora_A.weight": ("F32", [0, 32], b""), f"unet.{q}.lora_B.weight": ("F32", [32, 0], b"")},
        {"lora_adapter_metadata": json.dumps({"unet.lora_alpha": 1})}))
    put("lora", "alpha_not_a_number", safetensors(
        {f"unet.{q}.lora_A.weight": f32([1, 32]), f"unet.{q}.lora_B.weight": f32([32, 1])},
        {"lora_adapter_metadata": json.dumps({"unet.lora_alpha": "high"})}))
    put("lora", "wrong_shape", safetensors(
        {f"unet.{q}.lora_A.weight": f32([1, 31]), f"unet.{q}.lora_B.weight": f32([32, 1])}))
    put("lora", "text_encoder_key", safetensors({"lora_te_text_model_x.lora_down.weight": f32([1, 4])}))


# --- reward specs ----------------------------------------------------------------------------------------------
def reward_seeds():
    specs = {
        "classifier": "classifier", "classifier_target": "classifier:target=coat",
        "classifier_index": "classifier:target=9", "weighted_sum": "classifier:1,jpeg-proxy:-0.1",
        "jpeg_quality": "jpeg:quality=50", "compressibility": "compressibility",
        "incompressibility_weight": "incompressibility:2", "detail": "detail:threshold=0.3",
        "jpeg_proxy": "jpeg-proxy:quality=80:0.5", "aesthetic": "aesthetic", "pickscore": "pickscore:dtype=float16",
        "hpsv2": "hpsv2:antialias=0", "clip_score": " clip-score : 2 ", "huge_number": "jpeg:quality=1e300",
        "digits_target": "classifier:target=99999999999999999999", "empty_term": "jpeg,,detail",
        "nan_weight": "detail:nan", "unknown": "no-such-reward:x=1",
    }
    for name, spec in specs.items():
        put("reward_spec", name, spec)


if __name__ == "__main__":
    idx_seeds()
    png_seeds()
    prompt_seeds()
    tokenizer_seeds()
    config_seeds()
    lora_seeds()
    reward_seeds()
