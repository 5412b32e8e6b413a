//! probe-build speed: parse + resolve, and parse + resolve + generate, the largest IDL of the corpus (with its includes), in release.
//!
//! `cargo bench -p probe-build --bench frontend` prints the median and best of 50 runs, and, as the
//! baseline measured in the same run, the time to only read the same files from disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus() -> PathBuf {
    std::env::var_os("PROBE_IDL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/idl-corpus"))
}

/// The largest file the manifest marks as accepted, with its include roots.
fn largest(dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv in the IDL corpus");
    let mut best: Option<(u64, PathBuf, Vec<PathBuf>)> = None;
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split('\t').collect();
        if cells.len() < 11 || cells[6] != "true" {
            continue;
        }
        let size: u64 = cells[4].parse().unwrap_or(0);
        let repo = dir.join(cells[2].split('/').next().unwrap_or_default());
        let roots = cells[10].split(',').filter(|s| !s.is_empty()).map(|r| repo.join(r)).collect();
        if best.as_ref().is_none_or(|(s, _, _)| size > *s) {
            best = Some((size, dir.join(cells[2]), roots));
        }
    }
    let (_, path, roots) = best.expect("an accepted file in the manifest");
    (path, roots)
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[0])
}

fn main() {
    let (path, roots) = largest(&corpus());
    let builder = roots.iter().fold(probe_build::configure(), |b, r| b.include_dir(r));
    let checked = builder.check(std::slice::from_ref(&path)).expect("the largest corpus file checks");
    let files: Vec<PathBuf> =
        checked.program.files.iter().map(|f| checked.sources.file(f.id).path().to_owned()).collect();
    let bytes: usize = files.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len() as usize)).sum();

    let (read_median, _) =
        time(50, || files.iter().map(|f| std::fs::read_to_string(f).map_or(0, |s| s.len())).sum::<usize>());
    let (median, best) = time(50, || builder.check(std::slice::from_ref(&path)).is_ok());
    let (gen_median, gen_best) =
        time(20, || builder.generate(std::slice::from_ref(&path)).map_or(0, |f| f.len()));
    println!("frontend: {} ({} files, {} KiB)", path.display(), files.len(), bytes / 1024);
    println!("  parse+resolve: median {:.2} ms, best {:.2} ms", ms(median), ms(best));
    println!(
        "  parse+resolve+generate (quote + prettyplease): median {:.2} ms, best {:.2} ms",
        ms(gen_median),
        ms(gen_best)
    );
    println!(
        "  read files only (baseline): median {:.3} ms; parse+resolve = {:.1}x the read",
        ms(read_median),
        median.as_secs_f64() / read_median.as_secs_f64().max(1e-9)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
