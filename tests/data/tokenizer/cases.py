"""The texts the tokenizer is checked on against llama-tokenize (tests/model/test_tokenizer.py):
prose, code, CJK, emoji, digit and whitespace runs, special tokens, escapes. Each is written to a
file and tokenized from it, as `llama-tokenize -f` and `harness tokenize -f` read files."""

CASES = {
    "prose": "The quick brown fox jumps over the lazy dog. It's 4 o'clock; they'd've left. "
             "Performance engineers measure before they claim anything.",
    "contractions": "I'LL DON'T it's we'Ve THEY'RE she'd you'm O'Brien's 'quoted' rock'n'roll",
    "code": 'def f(x):\n    return {"a": [1, 2, 3], \'b\': x ** 2}  # comment\n\n'
            "for (int i = 0; i < n; ++i) { y[i] += a * x[i]; }\n#include <stdio.h>\n",
    "escapes": "a literal backslash-n: \\n, a tab: \\t, a byte: \\x41, a path C:\\\\dir\\\\file, \\q stays",
    "cjk": "我能吞下玻璃而不伤身体。今天天气很好！日本語のテキスト、カタカナ。한국어 문장입니다.",
    "emoji": "😀 😃😄 🚀🚀🚀 👍🏽 👨\u200d👩\u200d👧\u200d👦 🇩🇪🇫🇷 ❤️ ✨🤖 end 🙂.",
    "digits": "0 1 12 123 1234 12345 123456789012 3.14159 2,718,281 1e-5 0xDEADBEEF 2026-12-05",
    "whitespace": "a    b\t\tc\n\n\nd   \n  e \r\n\r\n f\u00a0g\u3000h      \n\t\n",
    "marks": "e\u0301 cafe\u0301 n\u0303o क्षत्रिय हिन्दी ภาษาไทย a\u0308\u0301\u0323",
    "specials": "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
                "<|im_start|>assistant\n<think>\nok\n</think>\n\nHello<|im_end|><|endoftext|>",
    "specials_glued": "x<|im_end|>y<think>z</think><|endoftext|><|im_start|><|im_start|>",
    "mixed": "Qwen3.5-0.8B: 24 layers × 1024 dims, ≈0.8e9 params → tg128 ≈ 38.2 t/s (±2%) — “quoted”, «guillemets».",
    "leading_space": "   leading spaces and trailing   ",
    "newline_end": "one line\n",
}
