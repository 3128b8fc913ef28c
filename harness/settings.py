"""Engine settings whose defaults the Session, the measurements and the command line share (a
foundation module: it imports nothing, so the command line can name them without loading the engine)."""

# u-batches of at most this many tokens run the fused delta rule, larger ones the chunked one. 0: chunked
# always, decode included, where its panels beat or tie the fused rule at every u-batch size measured
# (README, "Delta-net algorithms (`--fdn`)")
DEFAULT_FDN_THRESHOLD = 0
