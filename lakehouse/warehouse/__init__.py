"""The warehouse zone: atomic partition writes, partition reads and the analyst catalog."""
