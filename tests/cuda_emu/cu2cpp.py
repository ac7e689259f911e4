#!/usr/bin/env python3
"""cu2cpp.py - translate a CUDA .cu file into C++ for the CPU emulator.

Usage: cu2cpp.py IN.cu OUT.cc

Each launch `name<<<grid, block[, shmem[, stream]]>>>(args)` (name may carry
template arguments; the configuration may contain parentheses, commas and
?:) becomes `::qc_emu::launch(name, "name", __FILE__, __LINE__, grid, block)
(args)`: only the `<<<...>>>` part is replaced, so the arguments are left as
they are and line numbers do not move (newlines inside a configuration are
kept).  Quoted includes that exist next to the .cu become absolute paths, so
the output compiles from any directory, and a `#line 1` directive names the
.cu, so diagnostics and __FILE__ point into it.  Comments, string and
character literals are skipped.  An output that would not change is not
rewritten.  The output is compiled with `-include emu_kernel.h` (see README).
"""

import os
import re
import sys


def fail(path, line, msg):
    sys.stderr.write("%s:%d: cu2cpp: %s\n" % (path, line, msg))
    sys.exit(1)


def code_mask(src):
    """A list of booleans: True where src[i] is code (not comment/string/char)."""
    mask = [True] * len(src)
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            i += 1
            continue
        for k in range(i, j):
            mask[k] = False
        i = j
    return mask


def kernel_name_start(src, mask, end):
    """Start index of the kernel expression ending just before src[end] (the `<<<`)."""
    i = end
    while i > 0 and src[i - 1] in " \t":
        i -= 1
    if i > 0 and src[i - 1] == ">":          # template arguments: balance the angles
        depth = 0
        while i > 0:
            i -= 1
            if not mask[i]:
                continue
            if src[i] == ">":
                depth += 1
            elif src[i] == "<":
                depth -= 1
                if depth == 0:
                    break
        while i > 0 and src[i - 1] in " \t":
            i -= 1
    while i > 0 and (src[i - 1].isalnum() or src[i - 1] in "_:"):
        i -= 1
    return i


def split_top(text):
    """Split on commas outside (), [] and {}."""
    parts, depth, cur = [], 0, []
    for c in text:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def translate(path, src):
    mask = code_mask(src)
    out, pos = [], 0
    for m in re.finditer(r"<<<", src):
        start = m.start()
        if not mask[start] or start < pos:
            continue
        line = src.count("\n", 0, start) + 1
        name_at = kernel_name_start(src, mask, start)
        name = src[name_at:start].strip()
        if not re.match(r"^[A-Za-z_:][\w:]*\s*(<.*>)?$", name, re.S):
            fail(path, line, "cannot find the kernel name before <<<")
        # the configuration: up to the >>> at bracket depth 0
        i, depth = start + 3, 0
        while i < len(src):
            if mask[i]:
                c = src[i]
                if c in "([{":
                    depth += 1
                elif c in ")]}":
                    depth -= 1
                elif depth == 0 and src.startswith(">>>", i):
                    break
            i += 1
        else:
            fail(path, line, "unterminated <<<")
        cfg = src[start + 3:i]
        args = [a.strip() for a in split_top(cfg)]
        if len(args) < 2 or len(args) > 4 or any(not a for a in args):
            fail(path, line, "a launch needs <<<grid, block[, shmem[, stream]]>>>")
        j = i + 3
        while j < len(src) and src[j] in " \t\n":
            j += 1
        if j >= len(src) or src[j] != "(":
            fail(path, line, "expected the kernel arguments after >>>")
        bare = re.sub(r"\s+", " ", name)
        call = "::qc_emu::launch(%s, \"%s\", __FILE__, __LINE__, %s)" % (
            name, bare.replace("\\", "\\\\").replace('"', '\\"'),
            ", ".join(re.sub(r"\s+", " ", a) for a in args))
        # keep the line structure: the newlines of the replaced text follow the call
        call += "\n" * src.count("\n", name_at, i + 3)
        out.append(src[pos:name_at])
        out.append(call)
        pos = i + 3
    out.append(src[pos:])
    return "".join(out)


def absolute_includes(path, text):
    here = os.path.dirname(os.path.abspath(path))

    def repl(m):
        target = os.path.join(here, m.group(2))
        if os.path.exists(target):
            return '%s"%s"' % (m.group(1), os.path.normpath(target))
        return m.group(0)
    return re.sub(r'^(\s*#\s*include\s*)"([^"]+)"', repl, text, flags=re.M)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: cu2cpp.py IN.cu OUT.cc\n")
        return 2
    src_path, out_path = argv[1], argv[2]
    try:
        with open(src_path, encoding="utf-8") as f:
            src = f.read()
    except OSError as e:
        sys.stderr.write("cu2cpp: %s: %s\n" % (src_path, e.strerror))
        return 1
    text = absolute_includes(src_path, translate(src_path, src))
    header = "/* generated by cu2cpp.py from %s: do not edit */\n#line 1 \"%s\"\n" % (
        src_path, src_path.replace("\\", "\\\\").replace('"', '\\"'))
    try:
        with open(out_path, encoding="utf-8") as f:
            if f.read() == header + text:
                return 0          # unchanged: keep the timestamp (no rebuild)
    except OSError:
        pass
    tmp = out_path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(header + text)
        os.replace(tmp, out_path)
    except OSError as e:
        sys.stderr.write("cu2cpp: %s: %s\n" % (out_path, e.strerror))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
