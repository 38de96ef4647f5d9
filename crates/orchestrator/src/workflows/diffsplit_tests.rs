//! Tests of the diff splitter: each shape `git diff` prints, and the bounds.

use super::*;

fn split(text: &str) -> DiffSplit {
    split_diff(text, DiffLimits::default()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn r(start: u64, end: u64) -> LineRange {
    LineRange { start, end }
}

/// Every chunk fits the bound and is itself a diff whose hunks' counts match their lines.
fn assert_well_formed(s: &DiffSplit, max: usize) {
    for c in &s.chunks {
        assert!(
            c.text.len() <= max,
            "{} part {}: {} bytes > {max}",
            c.path,
            c.part,
            c.text.len()
        );
        let again = split_diff(
            &c.text,
            DiffLimits {
                max_chunk_bytes: usize::MAX,
                max_chunks: 1,
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "{} part {} is not a valid diff: {e}\n{}",
                c.path, c.part, c.text
            )
        });
        assert_eq!(again.chunks.len(), 1, "{}", c.text);
        assert_eq!(again.chunks[0].path, c.path);
        assert_eq!(again.chunks[0].new_ranges, c.new_ranges, "{}", c.text);
    }
}

const TWO_FILES: &str = "\
diff --git a/src/lib.rs b/src/lib.rs
index 3b18e51..a8c7d2f 100644
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1,4 +1,5 @@
 use std::fmt;
+use std::io;
 
 pub struct Config {
     pub name: String,
@@ -20,6 +21,6 @@ impl Config {
     pub fn load(path: &str) -> Self {
         let text = std::fs::read_to_string(path).unwrap();
-        Self::parse(&text)
+        Self::parse(&text).expect(\"valid config\")
     }
 
     fn parse(text: &str) -> Option<Self> {
diff --git a/README.md b/README.md
index 1111111..2222222 100644
--- a/README.md
+++ b/README.md
@@ -3 +3 @@
-Old line
+New line
";

#[test]
fn modified_files_keep_their_header_hunks_and_ranges() {
    let s = split(TWO_FILES);
    assert_eq!(s.files, 2);
    assert_eq!(s.chunks.len(), 2);
    let lib = &s.chunks[0];
    assert_eq!(lib.path, "src/lib.rs");
    assert_eq!(lib.change, FileChange::Modified);
    assert_eq!(lib.old_path, None);
    assert!(!lib.binary && !lib.cut);
    assert_eq!((lib.part, lib.parts), (1, 1));
    assert_eq!(lib.new_ranges, vec![r(1, 5), r(21, 26)]);
    assert!(lib.text.starts_with("diff --git a/src/lib.rs b/src/lib.rs\nindex 3b18e51..a8c7d2f 100644\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,4 +1,5 @@\n use std::fmt;\n+use std::io;\n"));
    assert!(lib.text.contains("@@ -20,6 +21,6 @@ impl Config {\n"));
    assert!(
        lib.text
            .contains("+        Self::parse(&text).expect(\"valid config\")\n")
    );
    assert!(!lib.text.contains("README"), "one file per chunk");
    let readme = &s.chunks[1];
    assert_eq!(readme.path, "README.md");
    assert_eq!(
        readme.new_ranges,
        vec![r(3, 3)],
        "`@@ -3 +3 @@` means one line"
    );
    assert!(
        readme
            .text
            .contains("@@ -3,1 +3,1 @@\n-Old line\n+New line\n")
    );
    assert_well_formed(&s, DiffLimits::default().max_chunk_bytes);
}

#[test]
fn new_deleted_renamed_copied_and_mode_changes() {
    let text = "\
diff --git a/src/new.rs b/src/new.rs
new file mode 100644
index 0000000..e69de29
--- /dev/null
+++ b/src/new.rs
@@ -0,0 +1,3 @@
+pub fn new() -> u32 {
+    1
+}
diff --git a/src/old.rs b/src/old.rs
deleted file mode 100644
index e69de29..0000000
--- a/src/old.rs
+++ /dev/null
@@ -1,2 +0,0 @@
-pub fn old() {}
-pub fn older() {}
diff --git a/src/util.rs b/src/helpers/util.rs
similarity index 100%
rename from src/util.rs
rename to src/helpers/util.rs
diff --git a/src/a.rs b/src/b.rs
similarity index 88%
rename from src/a.rs
rename to src/b.rs
index 1234567..89abcde 100644
--- a/src/a.rs
+++ b/src/b.rs
@@ -10,3 +10,3 @@ fn a() {
 let x = 1;
-let y = 2;
+let y = 3;
 let z = 4;
diff --git a/LICENSE b/COPYING
similarity index 100%
copy from LICENSE
copy to COPYING
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
";
    let s = split(text);
    let got: Vec<(&str, Option<&str>, FileChange, Vec<LineRange>)> = s
        .chunks
        .iter()
        .map(|c| {
            (
                c.path.as_str(),
                c.old_path.as_deref(),
                c.change,
                c.new_ranges.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("src/new.rs", None, FileChange::Added, vec![r(1, 3)]),
            ("src/old.rs", None, FileChange::Deleted, vec![]),
            (
                "src/helpers/util.rs",
                Some("src/util.rs"),
                FileChange::Renamed,
                vec![]
            ),
            (
                "src/b.rs",
                Some("src/a.rs"),
                FileChange::Renamed,
                vec![r(10, 12)]
            ),
            ("COPYING", Some("LICENSE"), FileChange::Copied, vec![]),
            ("run.sh", None, FileChange::Modified, vec![]),
        ]
    );
    assert!(
        s.chunks[2]
            .text
            .ends_with("rename to src/helpers/util.rs\n"),
        "header only"
    );
    assert!(s.chunks[5].text.contains("new mode 100755\n"));
    assert_well_formed(&s, DiffLimits::default().max_chunk_bytes);
}

#[test]
fn binary_files_with_and_without_patch_data() {
    let text = "\
diff --git a/img/logo.png b/img/logo.png
index 0f1e2d3..4c5b6a7 100644
Binary files a/img/logo.png and b/img/logo.png differ
diff --git a/img/new.png b/img/new.png
new file mode 100644
index 0000000..9a8b7c6
Binary files /dev/null and b/img/new.png differ
diff --git a/font.woff b/font.woff
index 1a2b3c4..5d6e7f8 100644
GIT binary patch
literal 1024
zcmV-q1D^bdP)<h;3K|Lk000e1NJLTq000mO000mW1^@s6AM^iV00004XF*Lt006O%
z3;baP0000WV@Og>004R=004l4008;_004mL004C`008P>0026e000+ooVrmw00006

literal 512
zcmV-q0D^bdP)<h;3K|Lk000e1NJLTq000mO000mW1^@s6AM^iV00004XF*Lt006O%

diff --git a/src/a.rs b/src/a.rs
--- a/src/a.rs
+++ b/src/a.rs
@@ -1 +1 @@
-a
+b
";
    let s = split(text);
    let got: Vec<(&str, FileChange, bool)> = s
        .chunks
        .iter()
        .map(|c| (c.path.as_str(), c.change, c.binary))
        .collect();
    assert_eq!(
        got,
        vec![
            ("img/logo.png", FileChange::Modified, true),
            ("img/new.png", FileChange::Added, true),
            ("font.woff", FileChange::Modified, true),
            ("src/a.rs", FileChange::Modified, false),
        ]
    );
    let woff = &s.chunks[2].text;
    assert!(
        woff.contains("GIT binary patch\n[ao: binary patch data omitted, 7 lines]\n"),
        "{woff}"
    );
    assert!(
        !woff.contains("zcmV"),
        "the base85 data is not sent to a model"
    );
    assert!(
        s.chunks[0]
            .text
            .contains("Binary files a/img/logo.png and b/img/logo.png differ")
    );
    assert!(s.chunks.iter().take(3).all(|c| c.new_ranges.is_empty()));
}

#[test]
fn no_newline_at_end_of_file_markers_stay_with_their_lines() {
    let text = "\
diff --git a/notes.txt b/notes.txt
index 1..2 100644
--- a/notes.txt
+++ b/notes.txt
@@ -1,2 +1,2 @@
 first
-second
\\ No newline at end of file
+second, amended
\\ No newline at end of file
diff --git a/b.txt b/b.txt
--- a/b.txt
+++ b/b.txt
@@ -1 +1,2 @@
 x
+y
";
    let s = split(text);
    assert_eq!(s.chunks.len(), 2);
    assert!(s.chunks[0].text.ends_with(
        "@@ -1,2 +1,2 @@\n first\n-second\n\\ No newline at end of file\n+second, amended\n\\ No newline at end of file\n"
    ));
    assert_eq!(s.chunks[1].new_ranges, vec![r(1, 2)]);
    assert_well_formed(&s, DiffLimits::default().max_chunk_bytes);
}

#[test]
fn quoted_spaced_and_prefixless_paths() {
    let text = "\
diff --git \"a/docs/t\\303\\251st file.txt\" \"b/docs/t\\303\\251st file.txt\"
index 1..2 100644
--- \"a/docs/t\\303\\251st file.txt\"
+++ \"b/docs/t\\303\\251st file.txt\"
@@ -1 +1 @@
-a
+b
diff --git a/my notes/to do.md b/my notes/to do.md
index 1..2 100644
--- a/my notes/to do.md\t
+++ b/my notes/to do.md\t
@@ -1 +1 @@
-a
+b
diff --git \"a/tab\\there.txt\" \"b/tab\\there.txt\"
new file mode 100644
--- /dev/null
+++ \"b/tab\\there.txt\"
@@ -0,0 +1 @@
+x
diff --git src/main.rs src/main.rs
index 1..2 100644
--- src/main.rs
+++ src/main.rs
@@ -1 +1 @@
-a
+b
diff --git i/src/lib.rs w/src/lib.rs
index 1..2 100644
--- i/src/lib.rs
+++ w/src/lib.rs
@@ -1 +1 @@
-a
+b
diff --git a/old name.txt b/new name.txt
similarity index 90%
rename from old name.txt
rename to new name.txt
";
    let s = split(text);
    let paths: Vec<(&str, Option<&str>)> = s
        .chunks
        .iter()
        .map(|c| (c.path.as_str(), c.old_path.as_deref()))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("docs/tést file.txt", None),
            ("my notes/to do.md", None),
            ("tab\there.txt", None),
            ("src/main.rs", None),
            ("src/lib.rs", None),
            ("new name.txt", Some("old name.txt")),
        ]
    );
    assert_eq!(s.chunks[2].change, FileChange::Added);
}

#[test]
fn plain_diff_u_and_git_log_p_output() {
    let plain = "\
diff -ru a/config.ini b/config.ini
--- a/config.ini\t2024-05-01 12:00:00.000000000 +0200
+++ b/config.ini\t2024-05-01 12:01:00.000000000 +0200
@@ -1,3 +1,3 @@
 [server]
-port = 80
+port = 8080
 host = localhost
Only in b: extra.txt
Binary files a/logo.png and b/logo.png differ
--- notes.txt\t2024-05-01 12:00:00
+++ notes.txt\t2024-05-01 12:01:00
@@ -2,0 +3 @@
+appended
";
    let s = split(plain);
    let got: Vec<(&str, bool, Vec<LineRange>)> = s
        .chunks
        .iter()
        .map(|c| (c.path.as_str(), c.binary, c.new_ranges.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("config.ini", false, vec![r(1, 3)]),
            ("logo.png", true, vec![]),
            ("notes.txt", false, vec![r(3, 3)]),
        ]
    );

    let log_p = "\
From 5d1e0c2a Mon Sep 17 00:00:00 2001
From: Dev <dev@example.invalid>
Subject: [PATCH] Fix the port

---
 config.ini | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/config.ini b/config.ini
index 1..2 100644
--- a/config.ini
+++ b/config.ini
@@ -1,2 +1,2 @@
 [server]
-port = 80
+port = 8080
-- 
2.43.0

";
    let s = split(log_p);
    assert_eq!(s.chunks.len(), 1);
    assert!(
        s.chunks[0].text.ends_with("+port = 8080\n"),
        "the signature is not part of the hunk"
    );
}

#[test]
fn crlf_content_is_kept_and_counted() {
    let text = "diff --git a/w.bat b/w.bat\r\nindex 1..2 100644\r\n--- a/w.bat\r\n+++ b/w.bat\r\n@@ -1,2 +1,2 @@\r\n @echo off\r\n-echo a\r\n+echo b\r\n";
    let s = split(text);
    assert_eq!(s.chunks[0].path, "w.bat");
    assert_eq!(s.chunks[0].new_ranges, vec![r(1, 2)]);
    assert!(s.chunks[0].text.contains("+echo b\r\n"));
}

#[test]
fn a_context_line_whose_space_an_editor_stripped_still_counts() {
    let text = "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n\n-b\n+c\n";
    let s = split(text);
    assert_eq!(s.chunks[0].new_ranges, vec![r(1, 3)]);
}

#[test]
fn errors_say_what_is_wrong_and_on_which_line() {
    let cases: Vec<(&str, &str)> = vec![
        ("just some text\nthat is no diff\n", "not a unified diff"),
        (
            "diff --cc src/a.rs\nindex 1,2..3\n@@@ -1,1 -1,1 +1,1 @@@\n",
            "line 1 of the diff: combined diffs",
        ),
        (
            "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@ bad\n a\n",
            "line 4 of the diff: the hunk ends early: 1 old and 1 new lines",
        ),
        (
            "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n*b\n",
            "line 6 of the diff: a hunk line must start with",
        ),
        (
            "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n-b\n+c\n",
            "line 6 of the diff: the hunk has more old lines than its header (line 4) says",
        ),
        (
            "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -one +1 @@\n",
            "line 4 of the diff: a hunk header must read",
        ),
        (
            "@@ -1 +1 @@\n-a\n+b\n",
            "line 1 of the diff: a hunk (`@@`) with no file header",
        ),
    ];
    for (text, want) in cases {
        let err = split_diff(text, DiffLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{text:?}: {err}");
    }
    assert_eq!(
        split_diff("", DiffLimits::default()),
        Ok(DiffSplit::default())
    );
    assert_eq!(
        split_diff("\n  \n", DiffLimits::default()),
        Ok(DiffSplit::default())
    );
}

/// A file whose hunks together exceed the bound: split at hunk boundaries.
#[test]
fn a_large_file_is_split_at_hunk_boundaries() {
    let mut text = String::from(
        "diff --git a/big.rs b/big.rs\nindex 1..2 100644\n--- a/big.rs\n+++ b/big.rs\n",
    );
    for h in 0..40u64 {
        let start = h * 100 + 1;
        text.push_str(&format!("@@ -{start},6 +{start},6 @@ fn f{h}() {{\n"));
        for k in 0..3 {
            text.push_str(&format!(
                " context line {k} of hunk {h} {}\n",
                "x".repeat(40)
            ));
        }
        text.push_str(&format!("-old {h}\n+new {h}\n"));
        for k in 0..2 {
            text.push_str(&format!(" tail {k} {}\n", "y".repeat(40)));
        }
    }
    let max = 2048;
    let s = split_diff(
        &text,
        DiffLimits {
            max_chunk_bytes: max,
            max_chunks: 64,
        },
    )
    .unwrap();
    assert!(s.chunks.len() > 1);
    let parts = s.chunks.len();
    for (k, c) in s.chunks.iter().enumerate() {
        assert_eq!((c.part, c.parts), (k + 1, parts));
        assert!(c.text.starts_with(
            "diff --git a/big.rs b/big.rs\nindex 1..2 100644\n--- a/big.rs\n+++ b/big.rs\n@@ "
        ));
        assert!(!c.cut, "no hunk needed cutting");
    }
    let all: Vec<LineRange> = s.chunks.iter().flat_map(|c| c.new_ranges.clone()).collect();
    let want: Vec<LineRange> = (0..40u64).map(|h| r(h * 100 + 1, h * 100 + 6)).collect();
    assert_eq!(all, want, "every hunk in exactly one chunk, in order");
    assert_well_formed(&s, max);
}

/// One hunk larger than the bound: cut into consecutive hunks with correct headers.
#[test]
fn a_huge_hunk_is_cut_into_valid_pieces_with_markers() {
    let text = String::from(
        "diff --git a/gen.rs b/gen.rs\n--- a/gen.rs\n+++ b/gen.rs\n@@ -10,1500 +10,1600 @@ mod gen {\n",
    );
    let mut body = Vec::new();
    for k in 0..1500 {
        body.push(format!("-old line {k}"));
        if k % 3 == 0 {
            body.push(format!("+new line {k}"));
        }
        body.push(format!("+added line {k} a bit longer"));
    }
    // 1500 removed; 500 + 1500 = 2000 added, minus 400 that stay as context below.
    let body: Vec<String> = body
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            if i % 10 == 0 && l.starts_with('+') {
                format!(" {}", &l[1..])
            } else {
                l
            }
        })
        .collect();
    let old = body.iter().filter(|l| !l.starts_with('+')).count() as u64;
    let new = body.iter().filter(|l| !l.starts_with('-')).count() as u64;
    let text = text.replace(
        "@@ -10,1500 +10,1600 @@",
        &format!("@@ -10,{old} +10,{new} @@"),
    );
    let mut text = text;
    for l in &body {
        text.push_str(l);
        text.push('\n');
    }
    let max = 4096;
    let s = split_diff(
        &text,
        DiffLimits {
            max_chunk_bytes: max,
            max_chunks: 1000,
        },
    )
    .unwrap();
    assert!(s.chunks.len() > 5, "{} chunks", s.chunks.len());
    assert!(s.chunks.iter().all(|c| c.cut));
    let n = s.chunks.len();
    assert!(
        s.chunks[0]
            .text
            .contains(&format!(" @@ [ao: hunk cut, part 1 of {n}] mod gen {{\n"))
    );
    assert!(
        s.chunks[n - 1]
            .text
            .contains(&format!("[ao: hunk cut, part {n} of {n}]"))
    );
    // The pieces' bodies, in order, are the hunk's body; their new ranges tile the hunk's.
    let mut pieces_body = Vec::new();
    for c in &s.chunks {
        let at = c.text.find("\n@@ ").unwrap() + 1;
        let hunk = &c.text[at..];
        pieces_body.extend(
            hunk.lines()
                .filter(|l| !l.starts_with("@@ "))
                .map(str::to_string),
        );
    }
    assert_eq!(pieces_body, body);
    let mut ranges: Vec<LineRange> = s.chunks.iter().flat_map(|c| c.new_ranges.clone()).collect();
    for w in ranges.windows(2) {
        assert_eq!(w[1].start, w[0].end + 1, "pieces are consecutive");
    }
    ranges.dedup();
    assert_eq!(
        (ranges[0].start, ranges.last().unwrap().end),
        (10, 10 + new - 1)
    );
    assert_well_formed(&s, max);
}

#[test]
fn a_piece_of_only_removed_lines_gets_a_valid_header() {
    let mut text = String::from("--- a/x\n+++ b/x\n@@ -1,600 +1,1 @@\n");
    for k in 0..600 {
        text.push_str(&format!(
            "-removed line number {k:04} with some padding text\n"
        ));
    }
    text.push_str("+replacement\n");
    let s = split_diff(
        &text,
        DiffLimits {
            max_chunk_bytes: 2048,
            max_chunks: 1000,
        },
    )
    .unwrap();
    assert!(s.chunks.len() > 2);
    assert!(s.chunks[0].text.contains("@@ -1,"));
    assert!(
        s.chunks[0].text.contains(" +0,0 @@"),
        "{}",
        &s.chunks[0].text[..200]
    );
    assert!(s.chunks[0].new_ranges.is_empty());
    assert_eq!(s.chunks.last().unwrap().new_ranges, vec![r(1, 1)]);
    assert_well_formed(&s, 2048);
}

#[test]
fn a_huge_line_is_shortened_with_a_marker() {
    let long = "x".repeat(100_000);
    let text =
        format!("--- a/bundle.min.js\n+++ b/bundle.min.js\n@@ -1 +1 @@\n-{long}\n+{long}y\n");
    let s = split_diff(
        &text,
        DiffLimits {
            max_chunk_bytes: 4096,
            max_chunks: 10,
        },
    )
    .unwrap();
    assert_eq!(s.chunks.len(), 2);
    assert!(s.chunks.iter().all(|c| c.cut && c.text.len() <= 4096));
    assert!(s.chunks[1].text.contains("[ao: line cut, "));
    assert!(s.chunks[1].text.contains("bytes omitted]\n"));
    assert_well_formed(&s, 4096);
}

#[test]
fn the_chunk_limit_omits_whole_files_and_lists_them() {
    let mut text = String::new();
    for f in 0..5 {
        text.push_str(&format!(
            "--- a/f{f}.txt\n+++ b/f{f}.txt\n@@ -1 +1 @@\n-a\n+b\n"
        ));
    }
    // f5 needs several chunks.
    text.push_str("--- a/big.txt\n+++ b/big.txt\n@@ -1,400 +1,400 @@\n");
    for k in 0..400 {
        text.push_str(&format!(" line {k} {}\n", "z".repeat(60)));
    }
    text.push_str("--- a/last.txt\n+++ b/last.txt\n@@ -1 +1 @@\n-a\n+b\n");
    let s = split_diff(
        &text,
        DiffLimits {
            max_chunk_bytes: 4096,
            max_chunks: 6,
        },
    )
    .unwrap();
    assert_eq!(s.files, 7);
    let paths: Vec<&str> = s.chunks.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt", "last.txt"]
    );
    assert_eq!(s.omitted_files, ["big.txt"]);
    assert_eq!(s.omitted_count, 1);
}

#[test]
fn a_tiny_bound_is_raised_to_the_minimum() {
    let s = split_diff(
        TWO_FILES,
        DiffLimits {
            max_chunk_bytes: 10,
            max_chunks: 0,
        },
    )
    .unwrap();
    assert_eq!(s.chunks.len(), 1, "max_chunks 0 is raised to 1");
    assert!(s.chunks[0].text.len() <= 1024);
    assert_eq!(s.omitted_files, ["README.md"]);
}

#[test]
fn chunks_serialize_with_their_wire_names() {
    let s = split("diff --git a/a b/b\nsimilarity index 100%\nrename from a\nrename to b\n");
    let v = serde_json::to_value(&s.chunks[0]).unwrap();
    assert_eq!(v["change"], "renamed");
    assert_eq!(v["old_path"], "a");
    assert_eq!(v["new_ranges"], serde_json::json!([]));
}

#[test]
fn coloured_git_output_is_read_without_its_colours() {
    let text = "\x1b[1mdiff --git a/src/a.rs b/src/a.rs\x1b[m\n\x1b[1mindex 1..2 100644\x1b[m\n\
                \x1b[1m--- a/src/a.rs\x1b[m\n\x1b[1m+++ b/src/a.rs\x1b[m\n\
                \x1b[36m@@ -1,2 +1,2 @@\x1b[m fn main() {\n ctx\n\x1b[31m-old\x1b[m\n\x1b[32m+new\x1b[m\n";
    let s = split(text);
    assert_eq!(s.chunks[0].path, "src/a.rs");
    assert_eq!(s.chunks[0].new_ranges, vec![r(1, 2)]);
    assert!(
        s.chunks[0]
            .text
            .contains("@@ -1,2 +1,2 @@ fn main() {\n ctx\n-old\n+new\n")
    );
    assert!(!s.chunks[0].text.contains('\x1b'));
}
