#!/usr/bin/env python3
"""Embed a Lua script (or any text file: the OpenAPI document) in C: writes a .c file defining
the text as a NUL-terminated char array, its length, and its SHA1 as Redis names it (lowercase
hex), so the aggregator can SCRIPT LOAD the text once and EVALSHA the digest.

Usage: embed_lua.py INPUT.lua OUTPUT.c SYMBOL
  defines SYMBOL[] (text), SYMBOL_LEN (bytes, without the NUL), SYMBOL_SHA1[] (40 hex + NUL).
An array initialiser rather than a string literal: ISO C caps literals at 4095 characters.
"""
import hashlib
import os
import sys

src, out, symbol = sys.argv[1], sys.argv[2], sys.argv[3]
with open(src, "rb") as f:
    text = f.read()
if b"\0" in text:
    sys.exit(f"{src}: a NUL byte cannot be embedded")
sha1 = hashlib.sha1(text).hexdigest()
lines = [f"/* Generated from {os.path.basename(src)} by embed_lua.py at build time: do not edit. */",
         "#include <stddef.h>", "",
         f"const char {symbol}[] = {{"]
data = list(text) + [0]
for i in range(0, len(data), 16):
    lines.append("    " + ", ".join(f"'\\{b:03o}'" for b in data[i:i + 16]) + ",")
lines += ["};", f"const size_t {symbol}_LEN = {len(text)};",
          f"const char {symbol}_SHA1[] = \"{sha1}\";", ""]
tmp = out + ".tmp"
with open(tmp, "w") as f:
    f.write("\n".join(lines))
os.replace(tmp, out)
