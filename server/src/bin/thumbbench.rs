//! Thumbnail benchmark: our pipeline against plain `image` and, when installed, `vipsthumbnail`.
//!
//! Run it in release mode: `cargo run --release -p server --bin thumbbench [runs]`.
//! It writes a 12 MP photo-like JPEG (gradients plus noise, quality 90) to the temp directory, then
//! measures each in-process method in a child process of its own, so the peak RSS (VmHWM) of one
//! cannot hide another's. `vipsthumbnail` is timed as a whole process; for a fair comparison our
//! thumbnail is timed that way too (a child process per run, reading the file from disk).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, RgbImage, imageops::FilterType};
use server::photos::{ProcessingLimits, make_thumbnail, process_photo};

/// The server's own allocator, so that figures are the server binary's.
#[global_allocator]
static ALLOCATOR: server::Allocator = server::Allocator;

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
const EDGE: u32 = 320;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2..])
    } else {
        parent(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(15))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("thumbbench: {err}");
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error>;

fn parent(runs: usize) -> Result<(), BoxError> {
    // Heavy sensor noise (entropy decoding dominates) and a cleaner shot (closer to a phone photo
    // of a factory wall in daylight), since DCT scaling only saves the IDCT and colour work.
    for (name, noise) in [("noisy", 20), ("clean", 3)] {
        let path = std::env::temp_dir().join(format!("thumbbench-12mp-{name}.jpg"));
        std::fs::write(&path, photo_like_jpeg(noise))?;
        table(&path, name, runs)?;
        println!();
    }
    Ok(())
}

fn table(path: &Path, name: &str, runs: usize) -> Result<(), BoxError> {
    let jpeg = std::fs::read(path)?;
    let exe = std::env::current_exe()?;
    println!(
        "input ({name}): {WIDTH}x{HEIGHT} JPEG q90, {:.1} MiB at {}; {runs} runs each; edge {EDGE} px",
        jpeg.len() as f64 / (1024.0 * 1024.0),
        path.display()
    );
    println!(
        "{:<44} {:>9} {:>9} {:>14}",
        "method", "median ms", "p90 ms", "peak RSS +MiB"
    );
    let mut medians = Vec::new();
    for method in [
        "ours",
        "image-resize-lanczos3",
        "image-thumbnail",
        "ours-full-pipeline",
        "decode-quarter",
        "decode-eighth",
        "decode-full-zune",
        "decode-full-jpeg-decoder",
    ] {
        let out = Command::new(&exe)
            .args([
                "--child",
                method,
                &path.to_string_lossy(),
                &runs.to_string(),
            ])
            .output()?;
        if !out.status.success() {
            return Err(format!("{method}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let text = String::from_utf8(out.stdout)?;
        let fields: Vec<f64> = text
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let [median, p90, rss_kib] = fields[..] else {
            return Err(format!("{method}: unexpected child output {text:?}").into());
        };
        println!(
            "{:<44} {median:>9.1} {p90:>9.1} {:>14.1}",
            label(method),
            rss_kib / 1024.0
        );
        medians.push((method, median));
    }
    let ours = medians.first().map_or(f64::NAN, |m| m.1);
    for (method, median) in &medians[1..3] {
        println!("  {} / ours = {:.2}x", label(method), median / ours);
    }

    // Whole-process timings: ours vs vipsthumbnail, both starting a process and reading the file.
    let ours_proc = time_runs(runs, || {
        let status = Command::new(&exe)
            .args(["--child", "ours", &path.to_string_lossy(), "1"])
            .output()?
            .status;
        if status.success() {
            Ok(())
        } else {
            Err("child failed".into())
        }
    })?;
    println!(
        "{:<44} {:>9.1} {:>9.1}",
        "ours, one process per thumbnail (wall)",
        ms(median(&ours_proc)),
        ms(p90(&ours_proc))
    );
    let vips_out = std::env::temp_dir().join(format!("thumbbench-vips-{name}.jpg"));
    let vips_target = format!("{}[Q=80,strip]", vips_out.display());
    let vips_available = Command::new("vipsthumbnail")
        .arg("--version")
        .output()
        .is_ok();
    if vips_available {
        let vips = time_runs(runs, || {
            let status = Command::new("vipsthumbnail")
                .arg(path)
                .args(["--size", &EDGE.to_string(), "-o", &vips_target])
                .output()?
                .status;
            if status.success() {
                Ok(())
            } else {
                Err("vipsthumbnail failed".into())
            }
        })?;
        println!(
            "{:<44} {:>9.1} {:>9.1}",
            "vipsthumbnail --size 320 (wall)",
            ms(median(&vips)),
            ms(p90(&vips))
        );
        println!(
            "  vipsthumbnail / ours (both whole processes) = {:.2}x",
            median(&vips).as_secs_f64() / median(&ours_proc).as_secs_f64()
        );
    } else {
        println!("vipsthumbnail not on PATH: skipped");
    }
    Ok(())
}

fn label(method: &str) -> &'static str {
    match method {
        "ours" => "ours: DCT-scaled decode + fir Lanczos3",
        "image-resize-lanczos3" => "baseline: image decode + resize(Lanczos3)",
        "image-thumbnail" => "baseline: image decode + thumbnail()",
        "ours-full-pipeline" => "ours: full process_photo (display + thumb)",
        "decode-quarter" => "decode only: jpeg-decoder 1/4",
        "decode-eighth" => "decode only: jpeg-decoder 1/8",
        "decode-full-zune" => "decode only: image (zune-jpeg) full",
        "decode-full-jpeg-decoder" => "decode only: jpeg-decoder full",
        _ => "?",
    }
}

/// Runs `runs` thumbnails of one method and prints `median_ms p90_ms vmhwm_delta_kib`.
fn child(args: &[String]) -> Result<(), BoxError> {
    let [method, path, runs] = args else {
        return Err("usage: --child METHOD FILE RUNS".into());
    };
    let runs: usize = runs.parse()?;
    let bytes = std::fs::read(Path::new(path))?;
    let limits = ProcessingLimits::default();
    let before = vm_hwm_kib()?;
    let times = time_runs(runs, || {
        let jpeg = match method.as_str() {
            "ours" => make_thumbnail(&bytes, &limits)?.bytes,
            "ours-full-pipeline" => process_photo(&bytes, &limits)?.thumbnail.bytes,
            "image-resize-lanczos3" | "image-thumbnail" => {
                let img = image::load_from_memory(&bytes)?;
                let small = if method == "image-thumbnail" {
                    img.thumbnail(EDGE, EDGE)
                } else {
                    img.resize(EDGE, EDGE, FilterType::Lanczos3)
                };
                let mut out = Vec::new();
                small
                    .to_rgb8()
                    .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 80))?;
                out
            }
            "decode-quarter" | "decode-eighth" => {
                let mut d = jpeg_decoder::Decoder::new(bytes.as_slice());
                d.read_info()?;
                if method == "decode-quarter" {
                    d.scale(1000, 750)?;
                } else {
                    d.scale(500, 375)?;
                }
                d.decode()?
            }
            "decode-full-jpeg-decoder" => jpeg_decoder::Decoder::new(bytes.as_slice()).decode()?,
            "decode-full-zune" => image::load_from_memory(&bytes)?.into_bytes(),
            other => return Err(format!("unknown method {other}").into()),
        };
        std::hint::black_box(jpeg);
        Ok(())
    })?;
    let after = vm_hwm_kib()?;
    println!(
        "{:.2} {:.2} {}",
        ms(median(&times)),
        ms(p90(&times)),
        after.saturating_sub(before)
    );
    Ok(())
}

fn time_runs(
    runs: usize,
    mut f: impl FnMut() -> Result<(), BoxError>,
) -> Result<Vec<Duration>, BoxError> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times)
}

fn median(sorted: &[Duration]) -> Duration {
    sorted[sorted.len() / 2]
}

fn p90(sorted: &[Duration]) -> Duration {
    sorted[((sorted.len() * 9).div_ceil(10)).saturating_sub(1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn vm_hwm_kib() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("malformed VmHWM")?
        .parse()?)
}

/// Smooth gradients with sensor-like noise: compresses like a real photo, not like a flat test card.
fn photo_like_jpeg(amplitude: u64) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % (2 * amplitude + 1)) as i32 - amplitude as i32
    };
    let img = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (x as f32 / WIDTH as f32, y as f32 / HEIGHT as f32);
        let base = [
            255.0 * fx,
            255.0 * fy,
            128.0 + 100.0 * ((fx * 12.0).sin() * (fy * 9.0).cos()),
        ];
        image::Rgb(base.map(|c| (c as i32 + noise()).clamp(0, 255) as u8))
    });
    let mut out = Vec::new();
    // Encoding an in-memory image cannot fail.
    let _ = JpegEncoder::new_with_quality(&mut out, 90).encode(
        img.as_raw(),
        WIDTH,
        HEIGHT,
        ExtendedColorType::Rgb8,
    );
    out
}
