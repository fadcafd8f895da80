"""Sessions of a programme as they are held (meetings) and who attended them."""
