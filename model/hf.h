/* hf.h — Hugging Face GPT-2 checkpoints (config.json + model.safetensors) to and from a gpt2.
 *
 * Why: pretrained GPT-2 weights come from the Hub, and a trained policy should open in transformers
 * (GPT2LMHeadModel.from_pretrained) unchanged. Our parameter block already uses HF's Conv1D
 * orientation ([in, out]), so loading and saving are copies (with F16/BF16/F64 converted on load),
 * never transposes.
 *
 * Tensor names (with or without the "transformer." prefix; all tensors of one file use the same):
 *   wte.weight (V,C)  wpe.weight (n_positions,C)  ln_f.weight|bias (C)
 *   h.{i}.ln_1.weight|bias (C)  h.{i}.attn.c_attn.weight (C,3C) .bias (3C)
 *   h.{i}.attn.c_proj.weight (C,C) .bias (C)  h.{i}.ln_2.weight|bias (C)
 *   h.{i}.mlp.c_fc.weight (C,4C) .bias (4C)  h.{i}.mlp.c_proj.weight (4C,C) .bias (C)
 * The causal-mask buffers h.{i}.attn.bias / h.{i}.attn.masked_bias are ignored; lm_head.weight is
 * accepted only when it equals wte.weight (tied). Anything else is an error naming the tensor.
 * Errors: 0 / -1 and one line in err, as everywhere in the library.
 */
#ifndef RLHF_HF_H
#define RLHF_HF_H

#include "gpt2.h"

#include <stddef.h>

/* config.json: n_layer, n_head, n_embd, vocab_size, n_positions (else n_ctx), layer_norm_epsilon
 * (default 1e-5). Rejects model_type other than "gpt2", activation_function other than gelu_new /
 * gelu_pytorch_tanh, and options this model does not implement (n_inner != 4*n_embd,
 * scale_attn_weights false, scale_attn_by_inverse_layer_idx true). */
int hf_read_config(const char *path, gpt2_config *cfg, char *err, size_t errlen);
/* The same from the text of a config.json (len bytes; path names it in messages). */
int hf_parse_config(const char *text, size_t len, const char *path, gpt2_config *cfg, char *err, size_t errlen);

/* dir/config.json + dir/model.safetensors -> a new gpt2 (caller frees with gpt2_free). dir may be
 * any path ckpt_resolve (checkpoint.h) accepts: a run's output folder, its latest pointer. */
int hf_load_gpt2(const char *dir, gpt2 **out, char *err, size_t errlen);

/* Create dir (and parents) and write dir/model.safetensors (F32, "transformer."-prefixed names, no
 * lm_head: tied; metadata {"format": "pt"}) and dir/config.json (a complete GPT2Config), each
 * atomically. */
int hf_save_gpt2(const gpt2 *m, const char *dir, char *err, size_t errlen);

/* ---- sequence classifier (the reward model's folder) ------------------------------------------
 * What transformers' GPT2ForSequenceClassification (num_labels 1) saves: the trunk under the same
 * "transformer."-prefixed names, plus "score.weight" [1, C] (a Linear without bias), and a config
 * with architectures ["GPT2ForSequenceClassification"], num_labels 1 (id2label/label2id) and
 * pad_token_id. transformers scores a sequence at its rightmost token that is not pad_token_id. */
#define HF_SCORE_NAME "score.weight"

/* Write such a folder (files atomically, like hf_save_gpt2). score_w: C floats; pad_token_id < 0
 * writes null. */
int hf_save_gpt2_score(const gpt2 *m, const float *score_w, int pad_token_id, const char *dir, char *err,
                       size_t errlen);
/* Read one: a new gpt2, *score_w a fresh array of C floats (caller frees), *pad_token_id (-1 when
 * null or absent). "score.weight" missing or mis-shaped, or more than one label, is an error. */
int hf_load_gpt2_score(const char *dir, gpt2 **out, float **score_w, int *pad_token_id, char *err, size_t errlen);

/* The Hugging Face name of parameter tensor `tensor` (GPT2_WTE...) of layer `layer` (ignored for
 * tensors outside the blocks), with or without the "transformer." prefix. */
void hf_tensor_name(char *buf, size_t n, int tensor, int layer, int prefixed);

#endif
