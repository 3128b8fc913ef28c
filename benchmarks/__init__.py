"""The asv suite of qwen35-harness (see asv.conf.json at the repository top).

Runtime axes (quant type, fdn threshold, vocab strategy, ISA variant) are asv `params`; one build
covers every ISA because the variant is picked at run time. Timings are times, so asv's
"larger is worse" reads them the right way round (tokens/s belong in our own reports).
"""
