"""Lane decoding (probability maps -> polylines) and benchmark prediction writers.

Public API: :func:`decode`, :class:`DecodeProfile`, :func:`get_profile`, :func:`list_profiles`, and the
writers :func:`write_culane_lines`, :func:`write_culane_tree`, :func:`write_llamas_tree`,
:func:`write_tusimple_json`, :func:`lanes_to_h_samples`. Importing this package does not import torch.
"""

from lanekd.decode.decoder import decode
from lanekd.decode.profiles import PROFILES, TUSIMPLE_H_SAMPLES, DecodeProfile, get_profile, list_profiles
from lanekd.decode.writers import (
    culane_lines_path,
    format_culane_lines,
    lanes_to_h_samples,
    llamas_lines_path,
    write_culane_lines,
    write_culane_tree,
    write_llamas_tree,
    write_tusimple_json,
)

__all__ = [
    "PROFILES",
    "TUSIMPLE_H_SAMPLES",
    "DecodeProfile",
    "culane_lines_path",
    "decode",
    "format_culane_lines",
    "get_profile",
    "lanes_to_h_samples",
    "list_profiles",
    "llamas_lines_path",
    "write_culane_lines",
    "write_culane_tree",
    "write_llamas_tree",
    "write_tusimple_json",
]
