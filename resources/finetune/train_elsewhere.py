"""Train the LoRA adapter of an Ember fine-tune job on another machine (a bigger GPU box).

Written by Ember's "export job". This folder holds everything it needs:
    config.json     the settings Ember planned (rank, alpha, learning rate, steps, sequence length ...)
    train.jsonl     the training examples; held_out.jsonl the held-out ones
    train_elsewhere.py   this script

Run it with transformers, peft and accelerate installed (and bitsandbytes for 4-bit on NVIDIA):
    accelerate launch train_elsewhere.py --base BASE [--qlora] [--out adapter]
BASE is the model's Hugging Face repository or a local folder of it (safetensors), the same model as
the GGUF in Ember. Bring the `adapter` folder back with `ember finetune import adapter --model MODEL.gguf`:
Ember writes the GGUF adapter and tests it before you use it.

The examples are used as Ember uses them: chat examples through the model's chat template with the
loss on the assistant's turns only, text examples whole with an end-of-sequence token.
"""

import argparse
import json
import math
import random
from pathlib import Path

import torch
from accelerate import Accelerator
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = Path(__file__).resolve().parent
IGNORE = -100


def read_jsonl(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def render(tokenizer, messages, prompt=False):
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=prompt)


def encode(tokenizer, example, seq_len):
    """(input ids, labels) of one example; None when its answer lies beyond seq_len."""
    if example["kind"] == "text":
        ids = tokenizer(example["text"], add_special_tokens=True)["input_ids"]
        if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
            ids.append(tokenizer.eos_token_id)
        labels = list(ids)
    else:
        messages = example["messages"]
        full = render(tokenizer, messages)
        spans = []
        for i, message in enumerate(messages):
            if message["role"] == "assistant":
                before, through = render(tokenizer, messages[:i], True), render(tokenizer, messages[: i + 1])
                if full.startswith(before) and full.startswith(through):
                    spans.append((len(before), len(through)))
        encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids = encoded["input_ids"]
        labels = [t if any(s < e2 and e > s2 for s2, e2 in spans) else IGNORE
                  for t, (s, e) in zip(ids, encoded["offset_mapping"], strict=True)]
    ids, labels = ids[:seq_len], labels[:seq_len]
    return (ids, labels) if any(label != IGNORE for label in labels) else None


def collate(items, pad_id):
    width = max(len(ids) for ids, _ in items)
    ids = torch.full((len(items), width), pad_id)
    labels = torch.full((len(items), width), IGNORE)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, (item_ids, item_labels) in enumerate(items):
        ids[row, : len(item_ids)] = torch.tensor(item_ids)
        labels[row, : len(item_labels)] = torch.tensor(item_labels)
        mask[row, : len(item_ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the base model: a Hugging Face repository or folder")
    parser.add_argument("--qlora", action="store_true", help="load the base in 4-bit NF4 (NVIDIA, bitsandbytes)")
    parser.add_argument("--out", default=str(HERE / "adapter"), help="where the peft adapter goes")
    parser.add_argument("--steps", type=int, default=None, help="override the number of optimizer steps")
    args = parser.parse_args()
    config = json.loads((HERE / "config.json").read_text(encoding="utf-8"))
    s = config["settings"]
    accelerator = Accelerator(gradient_accumulation_steps=s["grad_accumulation"])
    torch.manual_seed(s["seed"])
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    train = [t for t in (encode(tokenizer, e, s["seq_len"]) for e in read_jsonl(HERE / "train.jsonl")) if t]
    held_out = [t for t in (encode(tokenizer, e, s["seq_len"]) for e in read_jsonl(HERE / "held_out.jsonl")) if t]
    load = {}
    if args.qlora:
        from transformers import BitsAndBytesConfig

        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        load = {"quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                          bnb_4bit_compute_dtype=dtype,
                                                          bnb_4bit_use_double_quant=True),
                "device_map": {"": accelerator.local_process_index}}
    model = AutoModelForCausalLM.from_pretrained(args.base, **load)
    if args.qlora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model.config.use_cache = False
    targets = s.get("target_modules") or "all-linear"  # attention and MLP projections, never the head
    model = get_peft_model(model, LoraConfig(r=s["rank"], lora_alpha=s["alpha"], lora_dropout=s["dropout"],
                                             target_modules=targets, bias="none", task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    if args.qlora:
        import bitsandbytes

        optimizer = bitsandbytes.optim.PagedAdamW8bit(params, lr=s["learning_rate"], weight_decay=s["weight_decay"])
    else:
        optimizer = torch.optim.AdamW(params, lr=s["learning_rate"], weight_decay=s["weight_decay"])
    per_step = s["batch_size"] * s["grad_accumulation"]
    total = args.steps or s.get("max_steps") or max(1, math.ceil(s["epochs"] * len(train) / per_step))
    warmup = s["warmup_steps"]

    def factor(step):
        if warmup and step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    rng = random.Random(s["seed"])
    order = []
    for step in range(1, total + 1):
        for _ in range(s["grad_accumulation"]):
            batch = []
            while len(batch) < s["batch_size"]:
                if not order:
                    order = list(range(len(train)))
                    rng.shuffle(order)
                batch.append(train[order.pop()])
            inputs = {k: v.to(accelerator.device) for k, v in collate(batch, tokenizer.pad_token_id).items()}
            with accelerator.accumulate(model):
                loss = model(**inputs).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
        accelerator.print(json.dumps({"step": step, "total": total, "loss": float(loss)}))
    if held_out:
        model.eval()
        with torch.no_grad():
            losses = [float(model(**{k: v.to(accelerator.device) for k, v in collate([t], tokenizer.pad_token_id)
                                      .items()}).loss) for t in held_out]
        accelerator.print(json.dumps({"eval_loss": sum(losses) / len(losses)}))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(args.out)
        accelerator.print(json.dumps({"adapter": args.out}))


if __name__ == "__main__":
    main()
