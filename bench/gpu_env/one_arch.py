"""Zero every CUDA fat-binary entry of a shared library except one architecture's machine code (SASS),
in place: the file keeps its size and layout, but the zeros compress away, so that faiss-gpu's
~190 MB libfaiss.so travels as ~14 MB. The CUDA driver loads the entry made for the device's
architecture; the others are never read on it.

    python bench/gpu_env/one_arch.py libfaiss.so 90
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

FATBIN_MAGIC = b"\x50\xed\x55\xba"  # 0xBA55ED50, little-endian
SASS = 2  # entry kind: 1 = PTX, 2 = ELF (SASS)


def keep_one_arch(data: bytearray, arch: int) -> tuple[int, int]:
    """(entries kept, bytes zeroed)."""
    kept = zeroed = 0
    at = data.find(FATBIN_MAGIC)
    while at >= 0:
        _version, header_size, body_size = struct.unpack_from("<HHQ", data, at + 4)
        entry, end = at + header_size, at + header_size + body_size
        while entry < end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
            if entry_header == 0:
                break
            entry_arch = struct.unpack_from("<I", data, entry + 28)[0]
            start = entry + entry_header
            if kind == SASS and entry_arch == arch:
                kept += 1
            else:
                data[start : start + payload] = bytes(payload)
                zeroed += payload
            entry = start + payload
        at = data.find(FATBIN_MAGIC, at + 4)
    return kept, zeroed


def main() -> None:
    path, arch = Path(sys.argv[1]), int(sys.argv[2])
    data = bytearray(path.read_bytes())
    kept, zeroed = keep_one_arch(data, arch)
    if not kept:
        raise SystemExit(f"{path}: no sm_{arch} code in it")
    path.write_bytes(data)
    print(f"{path}: kept {kept} sm_{arch} entries, zeroed {zeroed / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
