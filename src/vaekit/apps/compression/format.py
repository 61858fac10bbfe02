"""The ``.vkz`` file format of bits-back compressed data, and the fingerprints it checks.

Layout (little-endian)::

    magic      8 bytes   b"\\x89VKZ\\r\\n\\x1a\\n" (PNG-style: catches text-mode and 7-bit damage)
    version    u16       FORMAT_VERSION
    model      16 bytes  sha256 of the model's architecture, likelihood, prior and weights (truncated)
    data       16 bytes  sha256 of the original array (dtype, shape, bytes), checked after decoding
    container  u8        0 = numpy array, 1 = torch tensor
    bin_bits   u8        latent bins are 2**-bin_bits wide ...
    z_max      u8        ... on [-z_max, z_max]
    init_words u16       32-bit words of seeded random "initial bits" the stack starts with
    dtype      u8 n + n bytes, numpy dtype string (e.g. "|u1", "<f4")
    shape      u8 ndim + ndim * u64 (shape[0] is the number of examples)
    n_words    u64       payload length
    payload    n_words * u32, the ANS stack
    crc32      u32       of everything above

Anything that does not parse, or whose fingerprints differ, raises ``ValueError`` with one sentence.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

MAGIC = b"\x89VKZ\r\n\x1a\n"
FORMAT_VERSION = 1
CONTAINERS = ("numpy", "torch")


@dataclass(frozen=True)
class Header:
    version: int
    model_hash: bytes
    data_hash: bytes
    container: str  # "numpy" or "torch": what decompress returns
    bin_bits: int
    z_max: int
    initial_words: int
    dtype: str
    shape: tuple[int, ...]
    n_words: int
    header_bytes: int  # bytes before the payload

    @property
    def count(self) -> int:
        return self.shape[0]

    @property
    def n_dims(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64))

    @property
    def initial_bits(self) -> int:
        """The one-off cost of the seeded initial bits the first example borrows (BB-ANS, sec. 2.5)."""
        return 32 * self.initial_words


def model_hash(model: torch.nn.Module) -> bytes:
    """Fingerprint of everything decoding depends on: the module tree, the event shape, the encoder's
    input scale, the likelihood, the prior and every weight (as float64, so a float32 model and its
    float64 copy, which decode identically here, agree)."""
    h = hashlib.sha256()
    encoder = getattr(model, "encoder", None)
    describe = (repr(model), tuple(getattr(model, "event_shape", ())), getattr(model, "latent_dim", None),
                getattr(encoder, "input_scale", None), getattr(model.likelihood, "n_params", None))
    h.update(repr(describe).encode())
    for name, value in sorted(model.state_dict().items()):
        t = value.detach().cpu()
        t = t.double() if t.is_floating_point() else t
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.digest()[:16]


def data_hash(x: np.ndarray) -> bytes:
    x = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{x.dtype.str}|{x.shape}".encode())
    h.update(x.astype(x.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.digest()[:16]


def pack(header: Header, payload: np.ndarray) -> bytes:
    dtype = header.dtype.encode("ascii")
    parts = [
        MAGIC,
        struct.pack("<H", header.version),
        header.model_hash,
        header.data_hash,
        struct.pack("<BBBHB", CONTAINERS.index(header.container), header.bin_bits, header.z_max,
                    header.initial_words, len(dtype)),
        dtype,
        struct.pack(f"<B{len(header.shape)}Q", len(header.shape), *header.shape),
        struct.pack("<Q", len(payload)),
        np.asarray(payload, dtype="<u4").tobytes(),
    ]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


class Reader:
    """Reads fields in order; running past the end means the file is truncated."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"The compressed data is truncated ({len(self.data)} bytes, more expected); "
                             "use the complete .vkz file.")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def unpack(data: bytes) -> tuple[Header, np.ndarray]:
    """Parse and verify a ``.vkz`` byte string: magic, version, length and CRC."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decompress expects the bytes that compress returned, got {type(data).__name__}.")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise ValueError("This is not vaekit compressed data (wrong magic bytes); pass a .vkz file made "
                         "by vaekit compress.")
    r = Reader(data)
    r.take(len(MAGIC))
    (version,) = r.unpack("<H")
    if version > FORMAT_VERSION:
        raise ValueError(f"This .vkz file has format version {version}, newer than this vaekit reads "
                         f"({FORMAT_VERSION}); upgrade vaekit.")
    m_hash, d_hash = r.take(16), r.take(16)
    container, bin_bits, z_max, initial_words, n_dtype = r.unpack("<BBBHB")
    dtype = r.take(n_dtype).decode("ascii", errors="replace")
    (ndim,) = r.unpack("<B")
    shape = r.unpack(f"<{ndim}Q")
    (n_words,) = r.unpack("<Q")
    header_bytes = r.pos
    if len(data) < header_bytes + 4 * n_words + 4:
        raise ValueError(f"The compressed data is truncated ({len(data)} bytes, expected "
                         f"{header_bytes + 4 * n_words + 4}); use the complete .vkz file.")
    if len(data) > header_bytes + 4 * n_words + 4:
        raise ValueError(f"The compressed data has {len(data) - header_bytes - 4 * n_words - 4} unexpected "
                         "bytes after its end; the file is damaged.")
    payload = np.frombuffer(r.take(4 * n_words), dtype="<u4").astype(np.uint32)
    (crc,) = r.unpack("<I")
    if crc != zlib.crc32(data[:-4]):
        raise ValueError("The compressed data is corrupted (checksum mismatch); use an intact copy of the "
                         ".vkz file.")
    if container >= len(CONTAINERS) or ndim < 1:
        raise ValueError("The compressed data has an invalid header; the file is damaged.")
    header = Header(version, m_hash, d_hash, CONTAINERS[container], bin_bits, z_max, initial_words,
                    dtype, tuple(shape), n_words, header_bytes)
    return header, payload


def read_header(data: bytes) -> Header:
    """The verified header of a ``.vkz`` byte string (sizes, shape, dtype, overheads)."""
    return unpack(data)[0]
