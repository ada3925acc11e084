#!/usr/bin/env python3
"""Build corpus/tabler/icons.jsonl from the @tabler/icons npm package (MIT).

Usage (no node_modules is kept; only the tarball is unpacked in a temp dir):

    cd "$(mktemp -d)" && npm pack @tabler/icons@3.52.0 && tar xzf tabler-icons-3.52.0.tgz
    python3 /path/to/irc/corpus/tabler/make.py package /path/to/irc/corpus/tabler
    cp package/LICENSE /path/to/irc/corpus/tabler/LICENSE

Every outline icon that has a category is read from package/icons/outline/
with its metadata from package/icons.json. Per icon:
  * the SVG is put on one line; the `class` attribute (CSS hook, no effect on
    rendering) and the invisible bounding-box path
    `<path stroke="none" d="M0 0h24v24H0z" fill="none"/>` are removed;
  * the prompt is tags: the category, then the parts of the icon name, e.g.
    arrow-left (category Arrows) -> [arrows][arrow][left].
Icons whose one-line SVG is longer than MAX_LEN bytes are skipped, then LIMIT
icons are taken evenly spaced over the name-sorted list (deterministic).
"""
import json, os, re, sys

LIMIT = 2000
MAX_LEN = 1200

def compact(svg: str) -> str:
    s = re.sub(r"\s+", " ", svg).strip()
    s = re.sub(r'\s+class="[^"]*"', "", s)
    s = s.replace('<path stroke="none" d="M0 0h24v24H0z" fill="none" />', "")
    s = re.sub(r"\s*>\s*<", "><", s)
    s = s.replace(" />", "/>").replace(" >", ">")
    return s

def tag(s: str) -> str:
    return "[" + re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") + "]"

def main(pkg: str, out: str) -> None:
    meta = json.load(open(os.path.join(pkg, "icons.json")))
    rows = []
    for name in sorted(meta):
        m = meta[name]
        cat = (m.get("category") or "").strip()
        path = os.path.join(pkg, "icons", "outline", name + ".svg")
        if not cat or not os.path.exists(path):
            continue
        svg = compact(open(path, encoding="utf-8").read())
        if len(svg) > MAX_LEN or not svg.isascii():
            continue
        prompt = tag(cat) + "".join(tag(p) for p in name.split("-") if p)
        rows.append({"prompt": prompt, "text": svg})
    step = max(1, len(rows) / LIMIT)
    picked = [rows[int(i * step)] for i in range(min(LIMIT, len(rows)))]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "icons.jsonl"), "w") as f:
        for r in picked:
            f.write(json.dumps(r, separators=(", ", ": ")) + "\n")
    print(f"{len(picked)} of {len(rows)} icons -> {out}/icons.jsonl")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
