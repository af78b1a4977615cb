"""Talking to the tutor model: prompts, streaming, the vLLM launcher and model preparation.

Plain Python with no Django import, so a GPU box can run it as a worker.
"""
