//! The deterministic inputs of the built-in workflows at sizes users hit: a 50 MB error log
//! through the location parser, a 20 MB diff through the splitter, a 100 000-file listing
//! through the repository map. Run: `cargo bench -p ao-orchestrator --bench workflow_inputs`
//! (figures in docs/benchmarks.md).

use ao_orchestrator::workflows::diffsplit::{DiffLimits, split_diff};
use ao_orchestrator::workflows::logparse::parse_log;
use ao_orchestrator::workflows::repomap::{RepoEntry, RepoMapLimits, repo_map};
use std::fmt::Write;

fn main() {
    divan::main();
}

/// About `mb` MB of mixed build and test output (rustc, tsc, jest, pytest, go, noise), every
/// location distinct, so the cap is reached early and the rest is dropped.
fn mixed_log(mb: usize) -> String {
    let mut out = String::with_capacity(mb * 1_100_000);
    let mut i = 0u64;
    while out.len() < mb * 1_000_000 {
        i += 1;
        let _ = write!(
            out,
            "   Compiling crate{i} v0.1.0\n\
             warning: unused variable: `x{i}`\n  --> src/m{}.rs:{i}:9\n   |\n{i} |     let x = 5;\n   |         ^\n\n\
             src/web/a{}.ts({i},5): error TS2322: Type 'string' is not assignable to type 'number'.\n\
             \x1b[31m  ● suite › case {i}\x1b[0m\n\n    expect(received).toBe(expected)\n\n      at Object.<anonymous> (src/t{}.test.js:{i}:3)\n\
             tests/test_{}.py:{i}: AssertionError\n\
             ./pkg/p{}.go:{i}:2: undefined: v{i}\n\
             [2024-05-01T12:00:00Z INFO  server] request {i} handled in 12 ms\n",
            i % 97,
            i % 89,
            i % 83,
            i % 79,
            i % 73,
        );
    }
    out
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn parse_log_50_mb(bencher: divan::Bencher) {
    let log = mixed_log(50);
    bencher.bench_local(|| {
        let parsed = parse_log(divan::black_box(&log));
        assert_eq!(parsed.locations.len(), 200);
    });
}

fn big_diff(mb: usize) -> String {
    let mut out = String::with_capacity(mb * 1_100_000);
    let mut f = 0;
    while out.len() < mb * 1_000_000 {
        f += 1;
        let _ = write!(
            out,
            "diff --git a/src/f{f}.rs b/src/f{f}.rs\nindex 1111111..2222222 100644\n--- a/src/f{f}.rs\n+++ b/src/f{f}.rs\n"
        );
        for h in 0..20 {
            let start = h * 50 + 1;
            let _ = writeln!(out, "@@ -{start},27 +{start},27 @@ fn f{h}() {{");
            for k in 0..30 {
                let _ = match k % 10 {
                    4 => writeln!(out, "-    let old{k} = compute({k}, {h});"),
                    5 => writeln!(out, "+    let new{k} = compute({k}, {h}) + 1;"),
                    _ => writeln!(out, "     context line {k} of hunk {h} in file {f}"),
                };
            }
        }
    }
    out
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn split_diff_20_mb(bencher: divan::Bencher) {
    let diff = big_diff(20);
    bencher.bench_local(|| {
        let split = split_diff(divan::black_box(&diff), DiffLimits::default()).expect("a diff");
        assert_eq!(split.chunks.len(), 64);
    });
}

#[divan::bench(sample_count = 10)]
fn repo_map_100k_files(bencher: divan::Bencher) {
    let entries: Vec<RepoEntry> = (0..100_000)
        .map(|i| RepoEntry {
            path: format!("pkg{}/mod{}/sub{}/file{i}.rs", i % 50, i % 13, i % 7),
            size: 1000 + i as u64,
        })
        .collect();
    bencher.bench_local(|| {
        let map = repo_map(divan::black_box(&entries), false, RepoMapLimits::default());
        assert!(map.text.len() <= 8 * 1024);
    });
}
