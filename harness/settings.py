"""Engine settings whose defaults the Session, the measurements and the command line share (a
foundation module: it imports nothing, so the command line can name them without loading the engine)."""

# u-batches of at most this many tokens run the fused delta rule, larger ones the chunked one (one token:
# always fused). 0: chunked from two tokens up, where its panels beat the fused rule at every u-batch size
# measured (README, "Delta-net algorithms (`--fdn`)")
DEFAULT_FDN_THRESHOLD = 0
