"""The MLX backend (mlx-audio): loading, the frame loop and its speed-ups. Imported only to load it."""
