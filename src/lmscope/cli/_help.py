"""Help texts that several commands share."""

MODEL_HELP = ("a bundled name (smollm2-135m, minilm-l6, qwen2.5-coder-0.5b), a Hugging Face directory, a .gguf "
              "file, or a LoRA adapter dir")
TASK_HELP = "a bundled evaluation set (factual_recall, true_false) or a JSONL file"
