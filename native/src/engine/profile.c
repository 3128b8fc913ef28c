/* The per-op profile (q35_session_profile, q35.h): wall time, calls and bytes
 * per (layer, op), booked by thread 0 between the barriers of a forward pass. */
#include <string.h>
#include <time.h>

#include "engine_impl.h"

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void q35_prof_start(q35_session *s, int ith) {
    if (ith == 0) s->t_mark = now_ns();
}

void q35_prof_mark(q35_session *s, int ith, int layer, int op, int64_t bytes) {
    if (!s->p.profile || ith != 0) return;
    const int64_t t = now_ns();
    q35_op_stats *r = &s->prof[(int64_t)layer * Q35_OP_COUNT + op];
    r->calls++;
    r->ns += t - s->t_mark;
    r->bytes += bytes;
    s->t_mark = t;
}

void q35_prof_macs(q35_session *s, int ith, int layer, int op, int64_t macs) {
    if (s->p.profile && ith == 0) s->prof[(int64_t)layer * Q35_OP_COUNT + op].macs += macs;
}

static const char *const op_names[Q35_OP_COUNT] = {
    "embed", "rmsnorm", "act_quant", "mm_attn_qkv", "mm_attn_out", "mm_ssm_in", "mm_ssm_out",
    "mm_ffn_gate_up", "mm_ffn_down", "mm_lm_head", "qk_norm_rope", "attention", "conv1d",
    "deltanet", "gated_norm", "swiglu", "residual",
    "moe_router", "mm_exp_gate_up", "mm_exp_down", "mm_shexp_gate_up", "mm_shexp_down", "lm_head_screen",
};

const char *q35_op_name(int op) { return op >= 0 && op < Q35_OP_COUNT ? op_names[op] : "unknown"; }

void q35_session_profile(const q35_session *s, q35_op_stats *out) {
    memcpy(out, s->prof, sizeof(q35_op_stats) * (size_t)(s->m->c.n_layer + 1) * Q35_OP_COUNT);
}

void q35_session_profile_reset(q35_session *s) {
    memset(s->prof, 0, sizeof(q35_op_stats) * (size_t)(s->m->c.n_layer + 1) * Q35_OP_COUNT);
    if (s->vs.cand) memset(s->vs.cand, 0, sizeof(int64_t) * (size_t)s->p.n_threads);
    s->vs.n_rows = 0;
}
