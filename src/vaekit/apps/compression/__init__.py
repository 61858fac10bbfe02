"""Lossless compression with a trained VAE: bits-back ANS coding (``codec``), the ``.vkz`` file format
(``format``) and the ``vaekit compress``/``decompress`` commands (``cli``)."""
