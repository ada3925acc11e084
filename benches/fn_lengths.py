#!/usr/bin/env python3
"""Lengths of the Rust functions under a folder, longest first: from the line
of `fn` to its closing brace (braces in strings, chars and comments skipped).

    python3 benches/fn_lengths.py compiler 100    # those of 100 lines or more
"""
import os, re, sys
root = sys.argv[1]
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 0
fn_re = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"C"\s+)?fn\s+(\w+)')
def strip(line, state):
    # Remove strings, chars and comments so braces can be counted.
    out, i, n = [], 0, len(line)
    while i < n:
        c = line[i]
        if state['str']:
            if c == '\\': i += 2; continue
            if c == '"': state['str'] = False
            i += 1; continue
        if state['raw']:
            end = '"' + '#' * state['raw_hashes']
            j = line.find(end, i)
            if j < 0: return ''.join(out)
            state['raw'] = False; i = j + len(end); continue
        if line.startswith('//', i): break
        m = re.match(r'r(#*)"', line[i:])
        if m and (i == 0 or not (line[i-1].isalnum() or line[i-1] == '_')):
            state['raw'] = True; state['raw_hashes'] = len(m.group(1)); i += len(m.group(0)); continue
        if c == '"': state['str'] = True; i += 1; continue
        if c == "'":
            m = re.match(r"'(\\.|[^\\'])'", line[i:])
            if m: i += len(m.group(0)); continue
        out.append(c); i += 1
    return ''.join(out)
res = []
for dp, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p = os.path.join(dp, f)
        lines = open(p).read().split('\n')
        state = {'str': False, 'raw': False, 'raw_hashes': 0}
        stack = []  # (name, start, depth_at_open)
        depth = 0
        pending = None
        for ln, line in enumerate(lines, 1):
            m = fn_re.match(line) if not state['str'] and not state['raw'] else None
            if m: pending = (m.group(7), ln)
            s = strip(line, state)
            for c in s:
                if c == '{':
                    if pending:
                        stack.append((pending[0], pending[1], depth)); pending = None
                    depth += 1
                elif c == '}':
                    depth -= 1
                    if stack and stack[-1][2] == depth:
                        name, start, _ = stack.pop()
                        res.append((ln - start + 1, os.path.relpath(p, root), start, name))
                elif c == ';' and pending:
                    pending = None  # a declaration without a body
for n, p, l, name in sorted(res, reverse=True):
    if n >= limit: print(f"{n:5} {p}:{l} {name}")
