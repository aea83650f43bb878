"""Cost models of candidate blocks and networks: MAC/parameter counts, measured latency, lookup tables."""
