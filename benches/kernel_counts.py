#!/usr/bin/env python3
"""Kernel functions of an emitted model.c: how many it defines, and for each
program (run_forward, run_train, ...) the distinct kernels it calls / its calls.

    irc build models/tiny-gpt2.toml -o /tmp/b && python3 benches/kernel_counts.py /tmp/b/model.c
"""
import re, sys
src = open(sys.argv[1]).read()
defs = set(re.findall(r'^static void (\w+)\((?!irc_ctx \*ctx\)\n)', src, re.M))
progs = {}
for m in re.finditer(r'^static void (run_\w+)\(irc_ctx \*ctx\)\n\{\n(.*?)^\}', src, re.M | re.S):
    called = re.findall(r'\b(\w+)\((?:ctx, )?', m.group(2))
    ks = [c for c in called if c in defs]
    progs[m.group(1)] = (len(set(ks)), len(ks))
defs -= set(progs)
# The frame's own functions, not kernels.
helpers = {'fail', 'irc_guard_acts', 'stage_step', 'copy_logits', 'stage_inputs'}
kern = defs - helpers
print(len(kern), ' '.join(f"{p}={d}/{n}" for p, (d, n) in progs.items()))
