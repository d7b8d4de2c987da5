"""Data quality: pandera schemas of the layer tables and their enforcement on written data."""
