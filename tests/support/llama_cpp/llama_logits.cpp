// llama.cpp's logits on a GGUF file for one token sequence, all positions in one batch (a prefill),
// through its public API with the context defaults (F16 KV cache, repacked weights where the CPU has
// kernels for them), 2 threads. Built by tests/support/llama_cpp/build.py against llama.cpp's libraries.
//
//   llama_logits MODEL.gguf TOKENS.txt OUT.f32      (tokens: whitespace-separated ids; out: n_tokens x n_vocab)
#include <cstdio>
#include <vector>

#include "llama.h"

static void quiet(ggml_log_level, const char *, void *) {}

int main(int argc, char **argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s MODEL TOKENS OUT\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    std::vector<llama_token> tokens;
    if (FILE *f = std::fopen(argv[2], "r")) {
        int id;
        while (std::fscanf(f, "%d", &id) == 1) tokens.push_back(id);
        std::fclose(f);
    }
    llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model || tokens.empty()) {
        std::fprintf(stderr, "cannot load %s, or no tokens in %s\n", argv[1], argv[2]);
        return 1;
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = (uint32_t)(tokens.size() < 128 ? 128 : tokens.size());
    cp.n_threads = cp.n_threads_batch = 2;
    llama_context *ctx = llama_init_from_model(model, cp);
    llama_batch batch = llama_batch_init((int32_t)tokens.size(), 0, 1);
    for (size_t i = 0; i < tokens.size(); i++) {
        batch.token[i] = tokens[i];
        batch.pos[i] = (llama_pos)i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = (int32_t)tokens.size();
    if (!ctx || llama_decode(ctx, batch) != 0) {
        std::fprintf(stderr, "llama_decode failed\n");
        return 1;
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    FILE *out = std::fopen(argv[3], "wb");
    for (size_t i = 0; i < tokens.size(); i++) std::fwrite(llama_get_logits_ith(ctx, (int32_t)i), sizeof(float), n_vocab, out);
    std::fclose(out);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
