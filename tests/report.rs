//! The HTML run report (`irc::report`): structure, sanitizing, PNG
//! rendering, the "what to look at" rules, and a headless-Chromium check.

mod common;

use irc::data::synth;
use irc::eval::visual::score_sample;
use irc::eval::{evaluate, EvalResult, Generation, Training};
use irc::report::gallery::{base64, png_data_uri, render_png, sanitize_svg};
use irc::report::{diagnose, write_report, GallerySample, MetricsLog, Status};
use std::path::{Path, PathBuf};

const NS: &str = "xmlns=\"http://www.w3.org/2000/svg\"";

/// A plausible `metrics.jsonl`: warmup + cosine LR, falling loss, val every
/// 25 steps, one bad line.
fn metrics_text(steps: usize) -> String {
    let mut s = String::new();
    for step in 1..=steps {
        let t = step as f64 / steps as f64;
        let lr = if step < 20 {
            3e-4 * step as f64 / 20.0
        } else {
            3e-4 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        };
        let loss = 1.0 + 4.5 * (-6.0 * t).exp() + 0.05 * ((step * 7) % 5) as f64 / 5.0;
        let mut line = format!(
            "{{\"step\":{step},\"epoch\":{},\"train_loss\":{loss},\"lr\":{lr},\"grad_norm\":{},\"tokens_per_s\":{}}}",
            step * 3 / steps,
            1.0 + 2.0 * (-5.0 * t).exp(),
            9000 + (step * 13) % 500
        );
        if step % 25 == 0 {
            line.insert_str(line.len() - 1, &format!(",\"val_loss\":{}", loss + 0.08));
        }
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str("not json\n");
    s
}

fn samples() -> Vec<GallerySample> {
    let rows = synth::generate(3, 21);
    let mut v: Vec<GallerySample> = rows
        .iter()
        .map(|r| GallerySample {
            prompt: r.prompt.clone().unwrap(),
            generated: r.text.clone(),
            reference: Some(r.text.clone()),
            ..GallerySample::default()
        })
        .collect();
    v.push(GallerySample {
        prompt: "[icon][red][circle]".into(),
        generated: format!(
            "<svg {NS} xmlns:xlink=\"http://www.w3.org/1999/xlink\" viewBox=\"0 0 64 64\" onload=\"alert(1)\"><script>alert(2)</script><style>body{{display:none}}</style><defs><linearGradient id=\"g\"><stop offset=\"0\" stop-color=\"#f00\"/></linearGradient></defs><circle id=\"c\" cx=\"32\" cy=\"32\" r=\"20\" fill=\"url(#g)\" onclick=\"x()\"/><use xlink:href=\"#c\"/><image href=\"http://evil.example/x.png\" width=\"9\" height=\"9\"/><rect width=\"5\" height=\"5\" fill=\"url(http://evil.example/p)\"/><foreignObject><div xmlns=\"http://www.w3.org/1999/xhtml\">hi</div></foreignObject></svg>"
        ),
        reference: None,
        ..GallerySample::default()
    });
    v.push(GallerySample {
        prompt: "[circle][blue][2][top][small]".into(),
        generated: "<svg xmlns=\"http://www.w3.org/2000/svg\"><circle cx=\"20\" cy=\"16\" r=\"5\" fill=\"#1e88e5\"/><circ".into(),
        reference: None,
        ..GallerySample::default()
    });
    v
}

fn make_report(dir: &Path) -> (PathBuf, String, EvalResult) {
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("metrics.jsonl"), metrics_text(300)).unwrap();
    let s = samples();
    let gens: Vec<Generation> = s
        .iter()
        .map(|g| Generation {
            prompt: g.prompt.clone(),
            text: g.generated.clone(),
            reference: g.reference.clone(),
        })
        .collect();
    let mut e = evaluate(&gens);
    e.gen_tokens_per_s = Some(812.0);
    let out = dir.join("out/report.html");
    write_report(&run, Some(&e), &s, &out).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    (out, html, e)
}

/// Every `<svg ...>...</svg>` block at top level of the HTML.
fn svg_blocks(html: &str) -> Vec<&str> {
    let mut v = Vec::new();
    let mut rest = html;
    while let Some(p) = rest.find("<svg") {
        let Some(e) = rest[p..].find("</svg>") else {
            break;
        };
        // Inline SVGs are not nested, so the first `</svg>` closes it.
        v.push(&rest[p..p + e + 6]);
        rest = &rest[p + e + 6..];
    }
    v
}

#[test]
fn report_has_charts_tables_gallery_and_is_sanitized() {
    let dir = tempfile::tempdir().unwrap();
    let (_out, html, e) = make_report(dir.path());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert_eq!(html.matches("<body>").count(), 1);
    for id in [
        "chart-loss",
        "chart-lr",
        "chart-grad-norm",
        "chart-tokens-per-s",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("data-name=\"train\"") && html.contains("data-name=\"val\""));
    assert!(html.contains("unreadable metrics lines</th><td>1 (lines "));
    // Eval table and "what to look at".
    assert!(html.contains("<table class=\"eval\">"));
    assert!(html.contains("valid SVG"));
    assert!(html.contains("What to look at"));
    for stage in [
        "tokenizer",
        "data prep / inference",
        "forward",
        "loss / schedule",
    ] {
        assert!(html.contains(stage), "{stage}");
    }
    // Gallery: 5 cards; PNGs for the 3 synthetic generations, their 3
    // references and the sanitized icon; the truncated one is text.
    assert_eq!(html.matches("class=\"card\"").count(), 5);
    assert_eq!(
        html.matches("<img class=\"gallery-png\"").count(),
        7,
        "eval: {}",
        e.to_table()
    );
    assert!(html.contains("src=\"data:image/png;base64,iVBORw0KGgo"));
    assert_eq!(html.matches("<pre class=\"raw\">").count(), 1);
    // Nothing active survived in the markup (the escaped source is inert).
    let markup: String = html
        .split("<details>")
        .map(|c| c.split("</details>").last().unwrap_or(""))
        .collect();
    for bad in [
        "<script",
        "onload=",
        "onclick=",
        "evil.example",
        "<foreignObject",
        "display:none",
    ] {
        assert!(!markup.contains(bad), "{bad} left in the report");
    }
    assert!(html.contains("&lt;script&gt;"), "source shown escaped");
    // Every inline SVG (charts and gallery) is well-formed XML.
    let blocks = svg_blocks(&markup);
    assert!(blocks.len() >= 4 + 7, "{}", blocks.len());
    for b in blocks {
        roxmltree::Document::parse(b).unwrap_or_else(|err| panic!("{err}: {b}"));
    }
    // Ids are prefixed per sample.
    assert!(html.contains("id=\"s3-g\"") && html.contains("url(#s3-g)"));
    assert!(html.contains("href=\"#s3-c\""));
    // No network: no external URL in the markup but XML namespaces.
    let stripped = markup
        .replace("http://www.w3.org/2000/svg", "")
        .replace("http://www.w3.org/1999/xlink", "")
        .replace("http://www.w3.org/1999/xhtml", "");
    assert!(!stripped.contains("http://") && !stripped.contains("https://"));
}

#[test]
fn report_without_metrics_or_eval_still_renders() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.html");
    write_report(&dir.path().join("missing-run"), None, &[], &out).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("No metrics in"));
    assert!(html.contains("No eval results."));
    assert!(html.contains("no data"));
    assert!(html.contains("0 samples"));
}

/// The gallery shows the scores `irc eval` computed (not its own) with the
/// retrieval baseline's icon and the nearest training icon beside each
/// generation.
#[test]
fn gallery_shows_the_baseline_beside_each_sample() {
    let rows = synth::generate(4, 5);
    let (a, b) = (&rows[0], &rows[1]);
    let training = Training::new([(b.prompt.as_deref().unwrap(), b.text.as_str())]);
    let visual = score_sample(
        a.prompt.as_deref().unwrap(),
        &a.text,
        Some(&a.text),
        Some(&training),
    )
    .unwrap();
    assert_eq!(visual.score, Some(1.0));
    let base = visual.baseline.unwrap();
    let sample = GallerySample {
        prompt: a.prompt.clone().unwrap(),
        generated: a.text.clone(),
        reference: Some(a.text.clone()),
        baseline: Some(b.text.clone()),
        nearest: Some(b.text.clone()),
        visual: Some(visual.clone()),
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.html");
    write_report(&dir.path().join("run"), None, &[sample], &out).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        html.contains(&format!("retrieval baseline, score {base:.3}")),
        "baseline figure"
    );
    assert!(html.contains(&format!(
        "visual score 1.000 vs baseline {base:.3} ({})",
        b.prompt.as_deref().unwrap()
    )));
    assert!(html.contains(&format!(
        "nearest training icon, {:.3}",
        visual.nearest.unwrap()
    )));
    // The baseline's SVG is drawn inline with its own id prefix.
    assert!(html.contains("id=\"b0-") || html.matches("<svg").count() >= 3);
}

#[test]
fn sanitizer_keeps_shapes_and_drops_active_content() {
    let s = sanitize_svg(
        "<svg xmlns='http://www.w3.org/2000/svg' width='32' height='16'><a href='javascript:x'><rect width='4' height='4' style='fill:url(http://x/y)' ONMOUSEOVER='y'/></a><animate attributeName='href' to='javascript:z'/><set attributeName='x'/><circle r='3' fill='red'/><!-- c --></svg>",
        "p-",
        100,
    )
    .unwrap();
    assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"100\" class=\"gen\" viewBox=\"0 0 32 16\""));
    assert!(s.contains("<circle r=\"3\" fill=\"red\"/>"));
    for bad in [
        "javascript",
        "animate",
        "<set",
        "style=",
        "ONMOUSEOVER",
        "<!--",
        "http://x",
    ] {
        assert!(!s.contains(bad), "{bad}: {s}");
    }
    roxmltree::Document::parse(&s).unwrap();
    assert!(sanitize_svg("<svg><g>", "p", 10).is_none());
    assert!(sanitize_svg("<html/>", "p", 10).is_none());
    assert!(sanitize_svg("", "p", 10).is_none());
}

#[test]
fn png_rendering_and_base64() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    let svg = format!(
        "<svg {NS} viewBox=\"0 0 64 32\"><rect width=\"64\" height=\"32\" fill=\"#f00\"/></svg>"
    );
    let png = render_png(&svg, 128).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // 2:1 aspect kept: IHDR width 128, height 64.
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 128);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 64);
    assert!(png_data_uri(&svg, 64)
        .unwrap()
        .starts_with("data:image/png;base64,iVBORw0KGgo"));
    assert!(render_png("<svg><circ", 64).is_none());
    assert!(render_png(&svg, 0).is_none());
    // External images are never fetched or read.
    let ext = format!("<svg {NS} viewBox=\"0 0 8 8\"><image href=\"/etc/passwd\" width=\"8\" height=\"8\"/></svg>");
    assert!(render_png(&ext, 16).is_some());
}

#[test]
fn what_to_look_at_maps_metrics_to_stages() {
    // Flat loss, val far above train, glitches, loops, non-ASCII, slow.
    let mut t = String::new();
    for step in 1..=40 {
        t.push_str(&format!(
            "{{\"step\":{step},\"train_loss\":2.0,\"lr\":1e-4,\"grad_norm\":1.0{}}}\n",
            if step % 10 == 0 {
                ",\"val_loss\":3.0"
            } else {
                ""
            }
        ));
    }
    let m = MetricsLog::parse(&t);
    assert_eq!((m.rows.len(), m.skipped.len()), (40, 0));
    let gens = vec![
        Generation {
            prompt: "x".into(),
            text: "é<svg></svg>tail".into(),
            reference: Some(format!("<svg {NS}><circle r=\"2\"/></svg>")),
        },
        Generation {
            prompt: "y".into(),
            text: "L1 1".repeat(50),
            reference: Some(format!("<svg {NS}><rect width=\"2\" height=\"3\"/></svg>")),
        },
    ];
    let mut e = evaluate(&gens);
    e.gen_tokens_per_s = Some(3.0);
    let f = diagnose(&m, Some(&e));
    let status = |stage: &str| {
        f.iter()
            .find(|x| x.stage == stage)
            .unwrap_or_else(|| panic!("{stage}"))
            .status
    };
    assert_eq!(status("tokenizer"), Status::Look);
    assert_eq!(status("model init / backward / LR"), Status::Look);
    assert_eq!(status("data"), Status::Look);
    assert_eq!(status("data prep / inference"), Status::Look);
    assert_eq!(status("loss / schedule"), Status::Look);
    assert_eq!(status("data / data prep"), Status::Look);
    assert_eq!(status("forward"), Status::Look);

    // A healthy run: everything ok or no data.
    let m = MetricsLog::parse(&metrics_text(300));
    assert_eq!(m.skipped.len(), 1);
    let e = common::perfect_eval(4, 3);
    for x in diagnose(&m, Some(&e)) {
        assert_eq!(x.status, Status::Ok, "{x:?}");
    }
    for x in diagnose(&MetricsLog::default(), None) {
        assert_eq!(x.status, Status::NoData, "{x:?}");
    }
}

#[test]
fn headless_chromium_renders_the_report() {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        println!("SKIP headless_chromium_renders_the_report: /usr/bin/chromium not found (apt-get install chromium)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, _html, _) = make_report(dir.path());
    let profile = dir.path().join("profile");
    let shot = dir.path().join("shot.png");
    let base = |extra: &[String]| {
        let mut c = std::process::Command::new(chromium);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", out.display()));
        c.output().expect("run chromium")
    };
    let o = base(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1200,2000".into(),
    ]);
    let png = std::fs::read(&shot).unwrap_or_else(|_| {
        panic!(
            "no screenshot; chromium said: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 20_000, "screenshot only {} bytes", png.len());
    if let Ok(keep) = std::env::var("IRC_REPORT_SHOT") {
        std::fs::copy(&shot, keep).unwrap();
        std::fs::copy(
            &out,
            format!("{}.html", std::env::var("IRC_REPORT_SHOT").unwrap()),
        )
        .unwrap();
    }
    let o = base(&["--dump-dom".into()]);
    let dom = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        dom.matches("<img class=\"gallery-png\"").count(),
        7,
        "{dom}"
    );
    assert!(dom.contains("id=\"chart-loss\""));
    assert!(!dom.contains("<script"));
}

#[test]
fn memorizing_uses_the_eval_measure_and_warmup_spikes_are_normal() {
    // A healthy log, except a gradient spike in the first tenth of steps
    // (warmup) and a logged val loss well above the train loss.
    let mut t = String::new();
    for step in 1..=100 {
        let loss = 3.0 - step as f64 * 0.02;
        let grad = if step == 3 { 40.0 } else { 1.0 };
        let val = if step % 25 == 0 {
            format!(",\"val_loss\":{}", loss + 0.6)
        } else {
            String::new()
        };
        t.push_str(&format!(
            "{{\"step\":{step},\"train_loss\":{loss},\"grad_norm\":{grad}{val}}}\n"
        ));
    }
    let m = MetricsLog::parse(&t);
    let find = |f: &[irc::report::Finding], stage: &str| {
        f.iter().find(|x| x.stage == stage).unwrap().clone()
    };
    let f = diagnose(&m, None);
    assert_eq!(find(&f, "model init / backward / LR").status, Status::Ok);
    assert_eq!(find(&f, "data / data prep").status, Status::Look);

    // The eval's losses are the same measure: they decide.
    let mut e = evaluate(&[]);
    e.val_loss = Some(1.05);
    e.train_loss = Some(1.0);
    let x = find(&diagnose(&m, Some(&e)), "data / data prep");
    assert_eq!(x.status, Status::Ok, "{x:?}");
    assert!(x.evidence.contains("same measure"), "{x:?}");
    e.val_loss = Some(1.6);
    assert_eq!(
        find(&diagnose(&m, Some(&e)), "data / data prep").status,
        Status::Look
    );

    // A spike after warmup is still one.
    let late = t.replace(
        "\"step\":80,\"train_loss\":1.4,\"grad_norm\":1",
        "\"step\":80,\"train_loss\":1.4,\"grad_norm\":40",
    );
    assert_ne!(late, t);
    let f = diagnose(&MetricsLog::parse(&late), None);
    assert_eq!(find(&f, "model init / backward / LR").status, Status::Look);
}
