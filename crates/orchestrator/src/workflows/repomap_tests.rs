//! Tests of the repository map.

use super::*;

fn entries(list: &[(&str, u64)]) -> Vec<RepoEntry> {
    list.iter()
        .map(|(p, s)| RepoEntry {
            path: (*p).to_string(),
            size: *s,
        })
        .collect()
}

/// Adds up what the map accounts for: file lines, collapsed directory lines and `… K more`
/// lines. Every file of the input must be accounted for exactly once.
fn accounted_files(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut total = 0;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let count = |s: &str| -> usize {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no count in {l:?}"))
        };
        if let Some(rest) = t.strip_prefix("… ") {
            total += count(rest);
        } else if let Some(pos) = t.find("/ (") {
            let opened = lines.get(i + 1).is_some_and(|n| indent(n) > indent(l));
            if !opened {
                total += count(&t[pos + 3..]);
            }
        } else {
            total += 1;
        }
    }
    total
}

#[test]
fn a_small_repository_is_shown_whole_with_chains_merged() {
    let list = entries(&[
        ("Cargo.toml", 512),
        ("README.md", 2048),
        ("crates/core/src/lib.rs", 1024),
        ("crates/core/src/types.rs", 10_240),
        ("crates/cli/src/main.rs", 4096),
        ("crates/cli/Cargo.toml", 300),
        ("docs/ARCHITECTURE.md", 3000),
    ]);
    let map = repo_map(&list, false, RepoMapLimits::default());
    assert_eq!(
        map.text,
        "7 files, 20.7 KiB\n\
         crates/ (4 files, 15.3 KiB)\n\
         \x20 cli/ (2 files, 4.3 KiB)\n\
         \x20   src/ (1 file, 4.0 KiB)\n\
         \x20     main.rs (4.0 KiB)\n\
         \x20   Cargo.toml (300 B)\n\
         \x20 core/src/ (2 files, 11.0 KiB)\n\
         \x20   lib.rs (1.0 KiB)\n\
         \x20   types.rs (10.0 KiB)\n\
         docs/ (1 file, 2.9 KiB)\n\
         \x20 ARCHITECTURE.md (2.9 KiB)\n\
         Cargo.toml (512 B)\n\
         README.md (2.0 KiB)\n"
    );
    assert_eq!((map.files, map.shown_files, map.skipped), (7, 7, 0));
    assert_eq!(map.bytes, 21_220);
    assert_eq!(accounted_files(&map.text), 7);
}

/// A generated tree: `n_top` top-level directories, each with `per_dir` files and a nested
/// chain of subdirectories with files.
fn big_repo(n_top: usize, per_dir: usize) -> Vec<RepoEntry> {
    let mut out = Vec::new();
    for t in 0..n_top {
        for f in 0..per_dir {
            out.push(RepoEntry {
                path: format!("pkg{t:02}/file{f:03}.rs"),
                size: 1000 + f as u64,
            });
            out.push(RepoEntry {
                path: format!("pkg{t:02}/sub/deep{}/more/file{f:03}.ts", f % 4),
                size: 500,
            });
        }
    }
    out.push(RepoEntry {
        path: "README.md".into(),
        size: 10,
    });
    out
}

#[test]
fn a_large_repository_stays_within_the_bounds_and_accounts_for_every_file() {
    let list = big_repo(40, 200);
    let limits = RepoMapLimits {
        max_lines: 120,
        max_bytes: 6000,
        max_per_dir: 25,
    };
    let map = repo_map(&list, false, limits);
    assert!(
        map.text.lines().count() <= 120,
        "{} lines",
        map.text.lines().count()
    );
    assert!(map.text.len() <= 6000, "{} bytes", map.text.len());
    assert_eq!(map.files, 40 * 200 * 2 + 1);
    assert!(map.text.starts_with("16001 files, "));
    assert_eq!(accounted_files(&map.text), map.files, "{}", map.text);
    assert!(map.text.contains("… "), "{}", map.text);
    assert!(map.shown_files < map.files);
}

#[test]
fn the_top_level_comes_before_any_deep_directory() {
    let list = big_repo(12, 30);
    let limits = RepoMapLimits {
        max_lines: 20,
        max_bytes: 8192,
        max_per_dir: 30,
    };
    let map = repo_map(&list, false, limits);
    let top: Vec<&str> = map
        .text
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert_eq!(
        top.len(),
        13,
        "every top-level entry has its line:\n{}",
        map.text
    );
    assert!(top[0].starts_with("pkg00/ (60 files, "));
    assert!(top[12].starts_with("README.md"));
    assert!(
        map.text.lines().skip(1).any(|l| l.starts_with("  ")),
        "what room is left opens the first directories:\n{}",
        map.text
    );
    assert_eq!(accounted_files(&map.text), map.files);
}

#[test]
fn a_crowded_directory_shows_its_first_entries_and_a_marker() {
    let list: Vec<RepoEntry> = (0..100)
        .map(|i| RepoEntry {
            path: format!("assets/img{i:03}.png"),
            size: 2048,
        })
        .collect();
    let map = repo_map(
        &list,
        false,
        RepoMapLimits {
            max_per_dir: 10,
            ..RepoMapLimits::default()
        },
    );
    let lines: Vec<&str> = map.text.lines().collect();
    assert_eq!(lines[1], "assets/ (100 files, 200.0 KiB)");
    assert_eq!(lines[2], "  img000.png (2.0 KiB)");
    assert_eq!(lines[11], "  img009.png (2.0 KiB)");
    assert_eq!(lines[12], "  … 90 more files (180.0 KiB)");
    assert_eq!(lines.len(), 13);
    assert_eq!(map.shown_files, 10);
}

#[test]
fn the_root_itself_may_be_cut() {
    let list: Vec<RepoEntry> = (0..50)
        .map(|i| RepoEntry {
            path: format!("f{i:02}.txt"),
            size: 1,
        })
        .collect();
    let map = repo_map(
        &list,
        true,
        RepoMapLimits {
            max_lines: 6,
            ..RepoMapLimits::default()
        },
    );
    assert_eq!(
        map.text,
        "50 files, 50 B (the listing stopped at its limit: more files exist)\n\
         f00.txt (1 B)\nf01.txt (1 B)\nf02.txt (1 B)\nf03.txt (1 B)\n… 46 more files (46 B)\n"
    );
    let only_header = repo_map(
        &list,
        false,
        RepoMapLimits {
            max_lines: 1,
            ..RepoMapLimits::default()
        },
    );
    assert_eq!(only_header.text, "50 files, 50 B\n");
}

#[test]
fn names_cannot_forge_lines_and_bad_paths_are_skipped() {
    let list = entries(&[
        ("src/evil\nname.rs", 1),
        ("src/\x1b[31mred.rs", 1),
        ("", 1),
        ("/etc/passwd", 1),
        ("../outside.rs", 1),
        ("a/../../b.rs", 1),
        ("C:\\win.rs", 1),
        ("./src/ok.rs", 1),
        ("src//ok.rs", 1),
        ("win\\style\\path.rs", 1),
    ]);
    let map = repo_map(&list, false, RepoMapLimits::default());
    assert_eq!(map.skipped, 5);
    assert_eq!(map.files, 4, "`./src/ok.rs` and `src//ok.rs` are one file");
    assert_eq!(
        map.text,
        "4 files, 4 B\nsrc/ (3 files, 3 B)\n  ?[31mred.rs (1 B)\n  evil?name.rs (1 B)\n  ok.rs (1 B)\nwin/style/ (1 file, 1 B)\n  path.rs (1 B)\n"
    );
    let long = "n".repeat(300);
    let map = repo_map(&entries(&[(&long, 1)]), false, RepoMapLimits::default());
    assert_eq!(
        map.text.lines().nth(1).unwrap().chars().count(),
        100 + 1 + 6
    );
}

#[test]
fn fs_list_output_is_read() {
    let output = serde_json::json!({
        "entries": [
            {"path": "src/main.rs", "kind": "file", "size": 120},
            {"path": "link", "kind": "symlink", "size": 11},
            {"path": "odd", "kind": "socket", "size": 0}
        ],
        "truncated": true
    });
    let (list, truncated) = entries_from_fs_list(&output).unwrap();
    assert!(truncated);
    assert_eq!(list, entries(&[("src/main.rs", 120), ("link", 11)]));
    assert!(
        entries_from_fs_list(&serde_json::json!({"files": []}))
            .unwrap_err()
            .contains("no `entries`")
    );
    assert!(
        entries_from_fs_list(&serde_json::json!({"entries": [{"size": 1}]}))
            .unwrap_err()
            .contains("entry 0 has no `path`")
    );
}

#[test]
fn sizes_read_like_a_person_writes_them() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(1023), "1023 B");
    assert_eq!(human_size(1024), "1.0 KiB");
    assert_eq!(human_size(1536), "1.5 KiB");
    assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    assert_eq!(human_size(u64::MAX), "16777216.0 TiB");
}

#[test]
fn a_path_that_is_both_a_file_and_a_directory_counts_once() {
    let map = repo_map(
        &entries(&[
            ("a", 5),
            ("a/b.rs", 7),
            ("c/d.rs", 1),
            ("c", 2),
            ("c/d.rs", 1),
        ]),
        false,
        RepoMapLimits::default(),
    );
    assert_eq!(map.files, 2);
    assert_eq!(
        map.text,
        "2 files, 6 B\nc/ (1 file, 1 B)\n  d.rs (1 B)\na (5 B)\n"
    );
}
