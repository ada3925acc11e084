"""A test icon set in another style than the bundled Tabler icons: filled
paths on a 16x16 viewBox, written compactly with relative arcs and
three-decimal numbers (`a.5.5 0 0 1-.5.5`), file names as tags. Seeded, so
the committed files are reproducible: python3 make.py writes *.svg here."""
import math, os, random

R = random.Random(16)
HEAD = '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" fill="currentColor" class="ti ti-{name}" viewBox="0 0 16 16">\n'


def n(x):
    s = f"{x:.3f}".rstrip("0").rstrip(".")
    if s.startswith("0."):
        s = s[1:]
    if s.startswith("-0."):
        s = "-" + s[2:]
    return "0" if s in ("", "-0", "-") else s


def j(*xs):
    # Compact: no separator before a sign or a leading point.
    out = ""
    for x in xs:
        t = n(x)
        if out and not (t.startswith("-") or (t.startswith(".") and "." in out.split(" ")[-1])):
            out += " "
        out += t
    return out


def rounded(x, y, w, h, r):
    return (f"M{j(x + r, y)}h{j(w - 2 * r)}a{j(r, r)} 0 0 1{j(r, r)}v{j(h - 2 * r)}"
            f"a{j(r, r)} 0 0 1{j(-r, r)}h{j(-(w - 2 * r))}a{j(r, r)} 0 0 1{j(-r, -r)}"
            f"v{j(-(h - 2 * r))}a{j(r, r)} 0 0 1{j(r, -r)}z")


def circle(cx, cy, r):
    return f"M{j(cx, cy - r)}a{j(r, r)} 0 1 0 0 {j(2 * r)}A{j(r, r)} 0 0 0 {j(cx, cy - r)}"


def plus(cx, cy, s, t):
    return (f"M{j(cx, cy - s)}a{j(t, t)} 0 0 1{j(t, t)}v{j(s - t)}h{j(s - t)}a{j(t, t)} 0 0 1 0 {j(2 * t)}"
            f"h{j(-(s - t))}v{j(s - t)}a{j(t, t)} 0 0 1{j(-2 * t)} 0v{j(-(s - t))}h{j(-(s - t))}"
            f"a{j(t, t)} 0 0 1 0{j(-2 * t)}h{j(s - t)}v{j(-(s - t))}a{j(t, t)} 0 0 1{j(t, -t)}")


def arrow(cx, cy, l, ang):
    c, s = math.cos(ang), math.sin(ang)
    pts = [(-l, -.5), (l - 2.5, -.5), (l - 2.5, -2.354), (l, 0), (l - 2.5, 2.354), (l - 2.5, .5), (-l, .5)]
    p = [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]
    d = f"M{j(*p[0])}"
    for (x0, y0), (x1, y1) in zip(p, p[1:]):
        d += f"l{j(x1 - x0, y1 - y0)}"
    return d + "z"


def star(cx, cy, r):
    p = []
    for k in range(10):
        a = -math.pi / 2 + k * math.pi / 5
        rr = r if k % 2 == 0 else r * .42
        p.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return f"M{j(*p[0])}" + "".join(f"L{j(x, y)}" for x, y in p[1:]) + "z"


SHAPES = {
    "square": lambda: rounded(1 + R.choice([0, .5, 1]), 1 + R.choice([0, .5, 1]), 13, 13, R.choice([1.5, 2, 2.5])),
    "circle": lambda: circle(8, 8, R.choice([7, 6.5, 6])),
    "star": lambda: star(8, 8.2, R.choice([7, 6.5])),
    "card": lambda: rounded(0, 3 + R.choice([0, .5]), 16, 10, R.choice([1, 1.5, 2])),
}
MARKS = {
    "plus": lambda: plus(8, 8, R.choice([3.5, 3]), .5),
    "arrow-right": lambda: arrow(8, 8, 4, 0),
    "arrow-left": lambda: arrow(8, 8, 4, math.pi),
    "arrow-up": lambda: arrow(8, 8, 4, -math.pi / 2),
    "arrow-down": lambda: arrow(8, 8, 4, math.pi / 2),
    "arrow-up-right": lambda: arrow(8, 8, 4, -math.pi / 4),
    "dot": lambda: circle(8, 8, R.choice([1.5, 2, 2.5])),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for f in os.listdir(here):
        if f.endswith(".svg"):
            os.remove(os.path.join(here, f))
    made = 0
    for shape, make in SHAPES.items():
        for mark, mk in MARKS.items():
            for style in ("", "fill", "ring"):
                name = "-".join(p for p in (shape, mark, style) if p)
                outer = make()
                if style == "ring":
                    body = f'  <path fill-rule="evenodd" d="{outer}{SHAPES[shape]().replace("M", "M", 1) if False else ""}{inner_ring(shape)}"/>\n  <path d="{mk()}"/>\n'
                elif style == "fill":
                    body = f'  <path d="{outer}"/>\n  <path fill="#fff" d="{mk()}"/>\n'
                else:
                    body = f'  <path d="{mk()}"/>\n  <path fill-opacity=".3" d="{outer}"/>\n'
                open(os.path.join(here, name + ".svg"), "w").write(HEAD.format(name=name) + body + "</svg>\n")
                made += 1
    print(made, "icons")


def inner_ring(shape):
    if shape == "circle":
        return circle(8, 8, 5)
    if shape == "star":
        return star(8, 8.2, 4.5)
    if shape == "card":
        return rounded(1.5, 4.5, 13, 7, .5)
    return rounded(2.5, 2.5, 11, 11, 1)


main()
