#include "q35.h"
#include "fp16.h"

float q35_fp16_to_fp32(uint16_t h) { return q35_h2f(h); }
uint16_t q35_fp32_to_fp16(float f) { return q35_f2h(f); }
float q35_bf16_to_fp32(uint16_t h) { return q35_bf2f(h); }
uint16_t q35_fp32_to_bf16(float f) { return q35_f2bf(f); }
