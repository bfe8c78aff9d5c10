"""The offload tier beyond one process (issue 16): `sandseg serve --ray` (the same app as a Ray
Serve deployment, one model per replica) and `--cache redis://` (the embedding cache shared by
every replica). Ray and the redis client are imported only here, and only when asked for (the
`scale` extra)."""
