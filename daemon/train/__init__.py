"""Optional training code (needs ``pip install 'emobridge[train]'``); the runtime never imports it."""
