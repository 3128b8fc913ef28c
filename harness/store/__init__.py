"""The results store: the row schema (test names, configuration ids, key columns, summaries),
results directories, llama-bench files read as rows, and baselines. Depends on the model room and
the foundation."""
