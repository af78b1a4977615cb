"""Training and evaluation of the tutor: plain Python, no Django import."""
