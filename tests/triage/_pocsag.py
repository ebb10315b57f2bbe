"""A POCSAG transmission synthesised bit-exactly (test helper): preamble, sync codeword, address and
alphanumeric message codewords with their BCH(31,21) check bits and even parity, idle fill;
2-FSK with "1" on the lower tone. Source: ITU-R M.584-2, "Codes and formats for radio paging".
"""

from __future__ import annotations

import numpy as np

SYNC = 0x7CD215D8  # the sync codeword
IDLE = 0x7A89C197  # the idle codeword


def bch(data21):
    """21 data bits (bit 20 first) → the 32-bit codeword: BCH(31,21) check bits, then even parity."""
    g = 0x769  # x^10+x^9+x^8+x^6+x^5+x^3+1
    r = data21 << 10
    for i in range(30, 9, -1):
        if r & (1 << i):
            r ^= g << (i - 10)
    cw = (data21 << 10) | r
    parity = bin(cw).count("1") & 1
    return (cw << 1) | parity


def address_cw(addr, func):
    return bch(((addr >> 3) << 2) | func)


def alpha_cws(text):
    bits = []
    for ch in text:
        c = ord(ch)
        bits += [(c >> i) & 1 for i in range(7)]  # LSB first
    while len(bits) % 20:
        bits.append(0)
    out = []
    for i in range(0, len(bits), 20):
        v = 0
        for b in bits[i:i + 20]:
            v = (v << 1) | b
        out.append(bch((1 << 20) | v))
    return out


def pocsag_bits(addr, func, text):
    frame = addr & 7
    cws = [IDLE] * (2 * frame) + [address_cw(addr, func)] + alpha_cws(text)
    while len(cws) % 16:
        cws.append(IDLE)
    bits = [1, 0] * 288
    for b in range(0, len(cws), 16):
        for cw in [SYNC] + cws[b:b + 16]:
            bits += [(cw >> (31 - i)) & 1 for i in range(32)]
    return np.array(bits)


def pocsag_iq(addr=1234567, func=3, text="ANSWER B", baud=1200, fs=250e3, dev=4500.0, invert=False):
    bits = pocsag_bits(addr, func, text)
    sym = np.where(bits == 1, -1.0, 1.0)  # POCSAG: 1 = lower frequency
    if invert:
        sym = -sym
    n = int(len(bits) / baud * fs)
    t = np.arange(n) / fs
    f = dev * sym[np.minimum((t * baud).astype(int), len(bits) - 1)]
    return np.exp(2j * np.pi * np.cumsum(f) / fs)
