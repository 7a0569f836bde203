"""lmscope: look inside language models, edit them, and use them as parts of larger systems."""

__version__ = "0.1.0"
