//! Table tests of the log parser: output as each tool prints it.

use super::*;

fn log(lines: &[&str]) -> String {
    lines.join("\n")
}

/// What a test expects of one location: file, line, column, severity, toolchain, and a piece
/// of the message ("" for none).
type Want = (
    &'static str,
    u64,
    Option<u64>,
    Severity,
    Toolchain,
    &'static str,
);

use Severity::{Error as E, Note as N, Warning as W};
use Toolchain::{Eslint, Go, Jest, Other, Pytest, Rust, Tsc};

fn check(name: &str, text: &str, want: &[Want]) {
    let parsed = parse_log(text);
    let got: Vec<String> = parsed
        .locations
        .iter()
        .map(|l| format!("{l} {:?} {:?} {:?}", l.severity, l.toolchain, l.message))
        .collect();
    assert_eq!(
        parsed.locations.len(),
        want.len(),
        "{name}: got\n{}",
        got.join("\n")
    );
    for (i, (l, w)) in parsed.locations.iter().zip(want).enumerate() {
        let ctx = format!("{name} #{i}: got {}", got[i]);
        assert_eq!(l.file, w.0, "{ctx}");
        assert_eq!(l.line, w.1, "{ctx}");
        assert_eq!(l.column, w.2, "{ctx}");
        assert_eq!(l.severity, w.3, "{ctx}");
        assert_eq!(l.toolchain, w.4, "{ctx}");
        assert!(l.message.contains(w.5), "{ctx}: message lacks {:?}", w.5);
    }
}

#[test]
fn rustc_and_cargo() {
    let cases: Vec<(&str, String, Vec<Want>)> = vec![
        (
            "cargo build: a warning, then an error with a code frame",
            log(&[
                "   Compiling demo v0.1.0 (/home/dev/demo)",
                "warning: unused variable: `y`",
                "  --> src/lib.rs:10:9",
                "   |",
                "10 |     let y = 5;",
                "   |         ^ help: if this is intentional, prefix it with an underscore: `_y`",
                "   |",
                "   = note: `#[warn(unused_variables)]` on by default",
                "",
                "error[E0308]: mismatched types",
                " --> src/main.rs:4:18",
                "  |",
                "4 |     let x: i32 = \"hello\";",
                "  |            ---   ^^^^^^^ expected `i32`, found `&str`",
                "  |            |",
                "  |            expected due to this",
                "",
                "For more information about this error, try `rustc --explain E0308`.",
                "warning: `demo` (bin \"demo\") generated 1 warning",
                "error: could not compile `demo` (bin \"demo\") due to 1 previous error; 1 warning emitted",
            ]),
            vec![
                ("src/lib.rs", 10, Some(9), W, Rust, "unused variable: `y`"),
                ("src/main.rs", 4, Some(18), E, Rust, "mismatched types"),
            ],
        ),
        (
            "an error with a note in another file and help without a place",
            log(&[
                "error[E0061]: this function takes 2 arguments but 1 argument was supplied",
                "  --> src/main.rs:8:5",
                "   |",
                "8  |     add(1);",
                "   |     ^^^--- argument #2 of type `i32` is missing",
                "   |",
                "note: function defined here",
                "  --> src/math.rs:1:8",
                "   |",
                "1  | pub fn add(a: i32, b: i32) -> i32 {",
                "   |        ^^^         ------",
                "help: provide the argument",
                "   |",
                "8  |     add(1, /* i32 */);",
                "   |        ~~~~~~~~~~~~~~",
            ]),
            vec![
                ("src/main.rs", 8, Some(5), E, Rust, "takes 2 arguments"),
                ("src/math.rs", 1, Some(8), N, Rust, "function defined here"),
            ],
        ),
        (
            "secondary spans (:::) and a note inside a dependency",
            log(&[
                "error[E0277]: the trait bound `Order: Serialize` is not satisfied",
                "    --> src/api.rs:12:35",
                "     |",
                "12   |     let body = serde_json::to_string(&order)?;",
                "     |                ---------------------  ^^^^^^ the trait `Serialize` is not implemented for `Order`",
                "     |",
                "    ::: /home/dev/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde_json-1.0.108/src/ser.rs:2209:17",
                "     |",
                "2209 |     T: ?Sized + Serialize,",
                "     |                 --------- required by this bound in `to_string`",
            ]),
            vec![
                ("src/api.rs", 12, Some(35), E, Rust, "`Order: Serialize`"),
                (
                    "/home/dev/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde_json-1.0.108/src/ser.rs",
                    2209,
                    Some(17),
                    N,
                    Rust,
                    "Serialize",
                ),
            ],
        ),
        (
            "cargo test panics: the current format (with a thread id) and the old one",
            log(&[
                "running 2 tests",
                "test tests::adds ... FAILED",
                "",
                "failures:",
                "",
                "---- tests::adds stdout ----",
                "",
                "thread 'tests::adds' (48213) panicked at src/lib.rs:12:9:",
                "assertion `left == right` failed",
                "  left: 4",
                " right: 5",
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
                "",
                "thread 'main' panicked at 'called `Option::unwrap()` on a `None` value', src/main.rs:3:37",
                "thread 'tests::parses' panicked at src/parse.rs:40:5:",
                "explicit panic",
            ]),
            vec![
                (
                    "src/lib.rs",
                    12,
                    Some(9),
                    E,
                    Rust,
                    "assertion `left == right` failed",
                ),
                (
                    "src/main.rs",
                    3,
                    Some(37),
                    E,
                    Rust,
                    "called `Option::unwrap()` on a `None` value",
                ),
                ("src/parse.rs", 40, Some(5), E, Rust, "explicit panic"),
            ],
        ),
        (
            "colours, a path with spaces, a Windows path",
            log(&[
                "\x1b[0m\x1b[1m\x1b[38;5;9merror[E0425]\x1b[0m\x1b[0m\x1b[1m: cannot find value `z` in this scope\x1b[0m",
                "\x1b[0m \x1b[0m\x1b[0m\x1b[1m\x1b[38;5;12m--> \x1b[0m\x1b[0m/home/dev/my project/src/main.rs:3:13\x1b[0m",
                "",
                "warning: unused import: `std::io`",
                " --> src\\net\\client.rs:1:5",
            ]),
            vec![
                (
                    "/home/dev/my project/src/main.rs",
                    3,
                    Some(13),
                    E,
                    Rust,
                    "cannot find value `z`",
                ),
                ("src\\net\\client.rs", 1, Some(5), W, Rust, "unused import"),
            ],
        ),
        (
            "--message-format short and clippy",
            log(&[
                "src/main.rs:4:18: error[E0308]: mismatched types: expected `i32`, found `&str`",
                "src/lib.rs:10:9: warning: unused variable: `y`",
                "warning: this `if` has identical blocks",
                "  --> src/rules.rs:22:20",
                "   |",
                "   = help: for further information visit https://rust-lang.github.io/rust-clippy/master/index.html#if_same_then_else",
            ]),
            vec![
                ("src/main.rs", 4, Some(18), E, Rust, "mismatched types"),
                ("src/lib.rs", 10, Some(9), W, Rust, "unused variable"),
                ("src/rules.rs", 22, Some(20), W, Rust, "identical blocks"),
            ],
        ),
    ];
    for (name, text, want) in cases {
        check(name, &text, &want);
    }
    let parsed = parse_log(&log(&[
        "error[E0308]: mismatched types",
        " --> src/main.rs:4:18",
    ]));
    assert_eq!(parsed.locations[0].code.as_deref(), Some("E0308"));
}

#[test]
fn tsc() {
    let cases: Vec<(&str, String, Vec<Want>)> = vec![
        (
            "plain (non-TTY) output, several errors",
            log(&[
                "src/index.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.",
                "src/utils/format.ts(14,22): error TS2345: Argument of type 'number' is not assignable to parameter of type 'string'.",
            ]),
            vec![
                (
                    "src/index.ts",
                    3,
                    Some(7),
                    E,
                    Tsc,
                    "Type 'string' is not assignable",
                ),
                (
                    "src/utils/format.ts",
                    14,
                    Some(22),
                    E,
                    Tsc,
                    "Argument of type 'number'",
                ),
            ],
        ),
        (
            "--pretty with colours and the summary",
            log(&[
                "\x1b[96msrc/index.ts\x1b[0m:\x1b[93m3\x1b[0m:\x1b[93m7\x1b[0m - \x1b[91merror\x1b[0m\x1b[90m TS2322: \x1b[0mType 'string' is not assignable to type 'number'.",
                "",
                "\x1b[7m3\x1b[0m const count: number = \"three\";",
                "\x1b[7m \x1b[0m \x1b[91m      ~~~~~\x1b[0m",
                "",
                "",
                "Found 1 error in src/index.ts\x1b[90m:3\x1b[0m",
            ]),
            vec![("src/index.ts", 3, Some(7), E, Tsc, "Type 'string'")],
        ),
        (
            "Windows path with a space; a chained message keeps its first line",
            log(&[
                "C:\\Users\\dev\\web app\\src\\a.ts(3,5): error TS2322: Type 'string' is not assignable to type 'number'.",
                "src/api.ts(10,7): error TS2322: Type '{ id: number; nme: string; }' is not assignable to type 'User'.",
                "  Object literal may only specify known properties, but 'nme' does not exist in type 'User'. Did you mean to write 'name'?",
            ]),
            vec![
                (
                    "C:\\Users\\dev\\web app\\src\\a.ts",
                    3,
                    Some(5),
                    E,
                    Tsc,
                    "not assignable",
                ),
                (
                    "src/api.ts",
                    10,
                    Some(7),
                    E,
                    Tsc,
                    "is not assignable to type 'User'",
                ),
            ],
        ),
        (
            "a route-group path with parentheses",
            log(&[
                "app/(shop)/cart/page.tsx(8,3): error TS2741: Property 'id' is missing in type '{}' but required in type 'Props'.",
            ]),
            vec![(
                "app/(shop)/cart/page.tsx",
                8,
                Some(3),
                E,
                Tsc,
                "Property 'id' is missing",
            )],
        ),
    ];
    for (name, text, want) in cases {
        check(name, &text, &want);
    }
    let parsed = parse_log("src/index.ts(3,7): error TS2322: Type 'string'.");
    assert_eq!(parsed.locations[0].code.as_deref(), Some("TS2322"));
}

#[test]
fn eslint() {
    let cases: Vec<(&str, String, Vec<Want>)> = vec![
        (
            "stylish: files with spaces, errors and warnings, a parsing error",
            log(&[
                "",
                "/home/dev/web app/src/App.jsx",
                "   3:10  error    'useEffect' is defined but never used  no-unused-vars",
                "  12:5   warning  Unexpected console statement           no-console",
                "",
                "/home/dev/web app/src/api/client.js",
                "  1:1  error  Parsing error: Unexpected token import",
                "",
                "✖ 3 problems (2 errors, 1 warning)",
                "  0 errors and 1 warning potentially fixable with the `--fix` option.",
            ]),
            vec![
                (
                    "/home/dev/web app/src/App.jsx",
                    3,
                    Some(10),
                    E,
                    Eslint,
                    "'useEffect' is defined but never used",
                ),
                (
                    "/home/dev/web app/src/App.jsx",
                    12,
                    Some(5),
                    W,
                    Eslint,
                    "Unexpected console statement",
                ),
                (
                    "/home/dev/web app/src/api/client.js",
                    1,
                    Some(1),
                    E,
                    Eslint,
                    "Parsing error: Unexpected token import",
                ),
            ],
        ),
        (
            "stylish with colours and a Windows path",
            log(&[
                "\x1b[4mC:\\dev\\web\\src\\App.tsx\x1b[24m",
                "  \x1b[2m7:3\x1b[22m  \x1b[31merror\x1b[39m  React Hook useEffect has a missing dependency: 'id'  \x1b[2mreact-hooks/exhaustive-deps\x1b[22m",
            ]),
            vec![(
                "C:\\dev\\web\\src\\App.tsx",
                7,
                Some(3),
                E,
                Eslint,
                "missing dependency: 'id'",
            )],
        ),
        (
            "unix format",
            log(&[
                "/home/dev/web/src/App.jsx:3:10: 'useEffect' is defined but never used. [Error/no-unused-vars]",
                "/home/dev/web/src/App.jsx:12:5: Unexpected console statement. [Warning/no-console]",
                "",
                "2 problems",
            ]),
            vec![
                (
                    "/home/dev/web/src/App.jsx",
                    3,
                    Some(10),
                    E,
                    Eslint,
                    "never used",
                ),
                (
                    "/home/dev/web/src/App.jsx",
                    12,
                    Some(5),
                    W,
                    Eslint,
                    "console",
                ),
            ],
        ),
        (
            "compact format",
            log(&[
                "/home/dev/web/src/App.jsx: line 3, col 10, Error - 'useEffect' is defined but never used. (no-unused-vars)",
                "/home/dev/web/src/util.js: line 8, col 1, Warning - Unexpected var, use let or const instead. (no-var)",
                "",
                "2 problems",
            ]),
            vec![
                (
                    "/home/dev/web/src/App.jsx",
                    3,
                    Some(10),
                    E,
                    Eslint,
                    "never used.",
                ),
                (
                    "/home/dev/web/src/util.js",
                    8,
                    Some(1),
                    W,
                    Eslint,
                    "Unexpected var",
                ),
            ],
        ),
    ];
    for (name, text, want) in cases {
        check(name, &text, &want);
    }
    let rules: Vec<Option<String>> = parse_log(&log(&[
        "/w/src/App.jsx",
        "   3:10  error    'x' is defined but never used  @typescript-eslint/no-unused-vars",
        "  1:1  error  Parsing error: Unexpected token import",
        "",
        "/w/src/a.js: line 8, col 1, Warning - Unexpected var. (no-var)",
        "/w/src/a.js:9:1: Unexpected var. [Warning/no-var]",
    ]))
    .locations
    .into_iter()
    .map(|l| l.code)
    .collect();
    assert_eq!(
        rules,
        vec![
            Some("@typescript-eslint/no-unused-vars".to_string()),
            None,
            Some("no-var".to_string()),
            Some("no-var".to_string())
        ]
    );
}

#[test]
fn stylish_lines_without_a_file_heading_are_not_locations() {
    let parsed = parse_log(&log(&[
        "Some tool output",
        "",
        "   3:10  error    'x' is defined but never used  no-unused-vars",
    ]));
    assert!(parsed.locations.is_empty(), "{:?}", parsed.locations);
}

#[test]
fn pytest_and_python_tracebacks() {
    let cases: Vec<(&str, String, Vec<Want>)> = vec![
        (
            "default (long) traceback of an assertion",
            log(&[
                "============================= test session starts ==============================",
                "platform linux -- Python 3.12.1, pytest-8.0.0, pluggy-1.4.0",
                "rootdir: /home/dev/calc",
                "collected 3 items",
                "",
                "tests/test_calc.py .F.                                                   [100%]",
                "",
                "=================================== FAILURES ===================================",
                "___________________________________ test_add ___________________________________",
                "",
                "    def test_add():",
                ">       assert add(2, 2) == 5",
                "E       assert 4 == 5",
                "E        +  where 4 = add(2, 2)",
                "",
                "tests/test_calc.py:8: AssertionError",
                "=========================== short test summary info ============================",
                "FAILED tests/test_calc.py::test_add - assert 4 == 5",
                "========================= 1 failed, 2 passed in 0.05s ==========================",
            ]),
            vec![(
                "tests/test_calc.py",
                8,
                None,
                E,
                Pytest,
                "AssertionError: assert 4 == 5",
            )],
        ),
        (
            "long traceback through two files",
            log(&[
                "________________________________ test_divide ___________________________________",
                "",
                "    def test_divide():",
                ">       assert divide(1, 0) == 0",
                "",
                "tests/test_calc.py:12: ",
                "_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ ",
                "",
                "a = 1, b = 0",
                "",
                "    def divide(a, b):",
                ">       return a / b",
                "E       ZeroDivisionError: division by zero",
                "",
                "calc/ops.py:4: ZeroDivisionError",
            ]),
            vec![
                (
                    "tests/test_calc.py",
                    12,
                    None,
                    E,
                    Pytest,
                    "ZeroDivisionError: division by zero",
                ),
                (
                    "calc/ops.py",
                    4,
                    None,
                    E,
                    Pytest,
                    "ZeroDivisionError: division by zero",
                ),
            ],
        ),
        (
            "--tb=short",
            log(&[
                "___________________________________ test_add ___________________________________",
                "tests/test_calc.py:8: in test_add",
                "    assert add(2, 2) == 5",
                "E   assert 4 == 5",
                "E    +  where 4 = add(2, 2)",
                "___________________________________ test_sub ___________________________________",
                "tests/test_calc.py:15: in test_sub",
                "    assert sub(3, 1) == 1",
                "calc/ops.py:9: in sub",
                "    raise NotImplementedError(\"sub\")",
                "E   NotImplementedError: sub",
            ]),
            vec![
                (
                    "tests/test_calc.py",
                    8,
                    None,
                    E,
                    Pytest,
                    "assert 4 == 5 (in test_add)",
                ),
                (
                    "tests/test_calc.py",
                    15,
                    None,
                    E,
                    Pytest,
                    "NotImplementedError: sub (in test_sub)",
                ),
                (
                    "calc/ops.py",
                    9,
                    None,
                    E,
                    Pytest,
                    "NotImplementedError: sub (in sub)",
                ),
            ],
        ),
        (
            "a plain Python traceback: a path with spaces and a standard-library frame",
            log(&[
                "Traceback (most recent call last):",
                "  File \"/home/dev/my app/main.py\", line 10, in <module>",
                "    main()",
                "  File \"/home/dev/my app/main.py\", line 6, in main",
                "    data = json.loads(raw)",
                "           ^^^^^^^^^^^^^^^",
                "  File \"/usr/lib/python3.12/json/__init__.py\", line 346, in loads",
                "    return _default_decoder.decode(s)",
                "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
            ]),
            vec![
                (
                    "/home/dev/my app/main.py",
                    10,
                    None,
                    E,
                    Pytest,
                    "JSONDecodeError: Expecting value",
                ),
                ("/home/dev/my app/main.py", 6, None, E, Pytest, "(in main)"),
                (
                    "/usr/lib/python3.12/json/__init__.py",
                    346,
                    None,
                    N,
                    Pytest,
                    "JSONDecodeError",
                ),
            ],
        ),
        (
            "Windows traceback and a custom exception",
            log(&[
                "Traceback (most recent call last):",
                "  File \"C:\\proj\\app\\cli.py\", line 22, in run",
                "    raise ConfigMissing(path)",
                "app.errors.ConfigMissing: settings.toml",
            ]),
            vec![(
                "C:\\proj\\app\\cli.py",
                22,
                None,
                E,
                Pytest,
                "ConfigMissing: settings.toml (in run)",
            )],
        ),
        (
            "warnings summary",
            log(&[
                "=============================== warnings summary ===============================",
                "tests/test_dates.py::test_now",
                "  /home/dev/calc/calc/dates.py:5: DeprecationWarning: datetime.datetime.utcnow() is deprecated and scheduled for removal in a future version.",
                "    return datetime.utcnow()",
                "",
                "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html",
            ]),
            vec![(
                "/home/dev/calc/calc/dates.py",
                5,
                None,
                W,
                Pytest,
                "DeprecationWarning: datetime",
            )],
        ),
        (
            "a syntax error while collecting, through a site-packages frame",
            log(&[
                "_____________________ ERROR collecting tests/test_parse.py _____________________",
                "/home/dev/calc/.venv/lib/python3.12/site-packages/_pytest/python.py:520: in importtestmodule",
                "    mod = import_path(",
                "E     File \"/home/dev/calc/calc/parse.py\", line 3",
                "E       def parse(text:",
                "E                     ^",
                "E   SyntaxError: '(' was never closed",
            ]),
            vec![
                (
                    "/home/dev/calc/.venv/lib/python3.12/site-packages/_pytest/python.py",
                    520,
                    None,
                    N,
                    Pytest,
                    "SyntaxError: '(' was never closed (in importtestmodule)",
                ),
                (
                    "/home/dev/calc/calc/parse.py",
                    3,
                    None,
                    E,
                    Pytest,
                    "SyntaxError: '(' was never closed",
                ),
            ],
        ),
    ];
    for (name, text, want) in cases {
        check(name, &text, &want);
    }
}

#[test]
fn jest_and_node() {
    let cases: Vec<(&str, String, Vec<Want>)> = vec![
        (
            "an assertion failure with its heading and code frame",
            log(&[
                " FAIL  src/sum.test.js",
                "  ● sum › adds 1 + 2 to equal 3",
                "",
                "    expect(received).toBe(expected) // Object.is equality",
                "",
                "    Expected: 4",
                "    Received: 3",
                "",
                "      3 | test('adds 1 + 2 to equal 3', () => {",
                "    > 4 |   expect(sum(1, 2)).toBe(4);",
                "        |                     ^",
                "      5 | });",
                "",
                "      at Object.toBe (src/sum.test.js:4:21)",
                "",
                "Test Suites: 1 failed, 1 total",
                "Tests:       1 failed, 1 total",
            ]),
            vec![(
                "src/sum.test.js",
                4,
                Some(21),
                E,
                Jest,
                "sum › adds 1 + 2 to equal 3: expect(received).toBe(expected)",
            )],
        ),
        (
            "a TypeError: frames in the code and in node_modules, console output",
            log(&[
                "  console.log",
                "    fetching user 42",
                "",
                "      at log (src/services/user.js:12:13)",
                "",
                "  ● UserService › loads the profile",
                "",
                "    TypeError: Cannot read properties of undefined (reading 'name')",
                "",
                "      12 |   async load(id) {",
                "      13 |     const user = await this.repo.find(id);",
                "    > 14 |     return user.profile.name;",
                "         |                         ^",
                "      15 |   }",
                "",
                "      at UserService.name [as load] (src/services/user.js:14:25)",
                "      at Object.<anonymous> (src/services/user.test.js:20:18)",
                "      at Promise.then.completed (node_modules/jest-circus/build/utils.js:298:28)",
                "      at new Promise (<anonymous>)",
                "      at processTicksAndRejections (node:internal/process/task_queues:95:5)",
            ]),
            vec![
                (
                    "src/services/user.js",
                    12,
                    Some(13),
                    N,
                    Jest,
                    "console output",
                ),
                (
                    "src/services/user.js",
                    14,
                    Some(25),
                    E,
                    Jest,
                    "TypeError: Cannot read properties of undefined",
                ),
                (
                    "src/services/user.test.js",
                    20,
                    Some(18),
                    E,
                    Jest,
                    "loads the profile",
                ),
                (
                    "node_modules/jest-circus/build/utils.js",
                    298,
                    Some(28),
                    N,
                    Jest,
                    "",
                ),
            ],
        ),
        (
            "a suite that fails to run: a Babel syntax error",
            log(&[
                " FAIL  src/broken.test.js",
                "  ● Test suite failed to run",
                "",
                "    SyntaxError: /home/dev/web/src/broken.js: Unexpected token (3:10)",
                "",
                "      1 | export function broken() {",
                "      2 |   return {",
                "    > 3 |     a: 1,,",
                "        |          ^",
            ]),
            vec![(
                "/home/dev/web/src/broken.js",
                3,
                Some(10),
                E,
                Jest,
                "SyntaxError: Unexpected token",
            )],
        ),
        (
            "Windows frames, an anonymous frame with a space in the path, an ESM file URL",
            log(&[
                "  ● cart › totals",
                "",
                "    Error: boom",
                "",
                "      at Object.<anonymous> (C:\\Users\\dev\\web\\src\\cart.test.js:9:11)",
                "      at /home/dev/my web/src/cart.js:30:7",
                "      at file:///home/dev/web/src/esm.mjs:3:5",
            ]),
            vec![
                (
                    "C:\\Users\\dev\\web\\src\\cart.test.js",
                    9,
                    Some(11),
                    E,
                    Jest,
                    "cart › totals: Error: boom",
                ),
                ("/home/dev/my web/src/cart.js", 30, Some(7), E, Jest, "boom"),
                ("/home/dev/web/src/esm.mjs", 3, Some(5), E, Jest, "boom"),
            ],
        ),
        (
            "a Node crash outside jest takes the error line as message",
            log(&[
                "/home/dev/api/server.js:14",
                "    throw new Error('PORT is not set');",
                "    ^",
                "",
                "Error: PORT is not set",
                "    at Object.<anonymous> (/home/dev/api/server.js:14:11)",
                "    at Module._compile (node:internal/modules/cjs/loader:1256:14)",
            ]),
            vec![(
                "/home/dev/api/server.js",
                14,
                Some(11),
                E,
                Jest,
                "Error: PORT is not set",
            )],
        ),
    ];
    for (name, text, want) in cases {
        check(name, &text, &want);
    }
}

#[test]
fn go() {
    let cases: Vec<(&str, String, Vec<Want>)> = vec![
        (
            "go build",
            log(&[
                "# example.com/shop/cart",
                "cart/cart.go:5:2: \"strings\" imported and not used",
                "cart/cart.go:17:9: undefined: Totl",
            ]),
            vec![
                (
                    "cart/cart.go",
                    5,
                    Some(2),
                    E,
                    Go,
                    "\"strings\" imported and not used",
                ),
                ("cart/cart.go", 17, Some(9), E, Go, "undefined: Totl"),
            ],
        ),
        (
            "go vet, a ./ path and a Windows one",
            log(&[
                "# example.com/shop",
                "# [example.com/shop]",
                "./main.go:14:2: fmt.Printf format %d has arg name of wrong type string",
                "vet: .\\cmd\\tool.go:3:2: \"os\" imported and not used",
            ]),
            vec![
                ("main.go", 14, Some(2), E, Go, "fmt.Printf format %d"),
                ("cmd\\tool.go", 3, Some(2), E, Go, "imported and not used"),
            ],
        ),
        (
            "go test failures, subtests and testify",
            log(&[
                "--- FAIL: TestTotal (0.00s)",
                "    cart_test.go:21: Total() = 30, want 35",
                "--- FAIL: TestDiscount (0.00s)",
                "    --- FAIL: TestDiscount/negative (0.00s)",
                "        cart_test.go:40: Discount(-1) did not return an error",
                "--- FAIL: TestAdd (0.00s)",
                "    calc_test.go:15: ",
                "        \tError Trace:\t/home/dev/calc/calc_test.go:15",
                "        \tError:      \tNot equal: ",
                "        \t            \texpected: 4",
                "        \t            \tactual  : 5",
                "        \tTest:       \tTestAdd",
                "FAIL",
                "FAIL\texample.com/shop/cart\t0.004s",
                "FAIL",
            ]),
            vec![
                ("cart_test.go", 21, None, E, Go, "Total() = 30, want 35"),
                ("cart_test.go", 40, None, E, Go, "did not return an error"),
                ("calc_test.go", 15, None, E, Go, "Not equal"),
            ],
        ),
        (
            "a panic in a test: frames in the code, the toolchain's frames as notes",
            log(&[
                "--- FAIL: TestParse (0.00s)",
                "panic: runtime error: index out of range [3] with length 3 [recovered]",
                "\tpanic: runtime error: index out of range [3] with length 3",
                "",
                "goroutine 7 [running]:",
                "testing.tRunner.func1.2({0x5169a0, 0xc000018150})",
                "\t/usr/local/go/src/testing/testing.go:1631 +0x24a",
                "panic({0x5169a0?, 0xc000018150?})",
                "\t/usr/local/go/src/runtime/panic.go:770 +0x132",
                "example.com/shop/parse.Fields(...)",
                "\t/home/dev/shop/parse/parse.go:12",
                "example.com/shop/parse.TestParse(0xc0000a2820)",
                "\t/home/dev/shop/parse/parse_test.go:9 +0x1d",
                "exit status 2",
                "FAIL\texample.com/shop/parse\t0.005s",
            ]),
            vec![
                (
                    "/usr/local/go/src/testing/testing.go",
                    1631,
                    None,
                    N,
                    Go,
                    "index out of range",
                ),
                (
                    "/usr/local/go/src/runtime/panic.go",
                    770,
                    None,
                    N,
                    Go,
                    "index out of range",
                ),
                (
                    "/home/dev/shop/parse/parse.go",
                    12,
                    None,
                    E,
                    Go,
                    "panic: runtime error: index out of range [3]",
                ),
                (
                    "/home/dev/shop/parse/parse_test.go",
                    9,
                    None,
                    E,
                    Go,
                    "index out of range",
                ),
            ],
        ),
        (
            "a compile error inside go test",
            log(&[
                "# example.com/shop/cart [example.com/shop/cart.test]",
                "cart/cart_test.go:8:2: undefined: newCart",
                "FAIL\texample.com/shop/cart [build failed]",
            ]),
            vec![("cart/cart_test.go", 8, Some(2), E, Go, "undefined: newCart")],
        ),
    ];
    for (name, text, want) in cases {
        check(name, &text, &want);
    }
}

#[test]
fn other_compilers_with_a_severity_word() {
    check(
        "gcc and mypy",
        &log(&[
            "src/main.c:12:5: error: implicit declaration of function 'foo' [-Wimplicit-function-declaration]",
            "src/main.c:3:10: note: include '<stdio.h>'",
            "app/models.py:31: error: Incompatible return value type (got \"str\", expected \"int\")  [return-value]",
        ]),
        &[
            ("src/main.c", 12, Some(5), E, Other, "implicit declaration"),
            ("src/main.c", 3, Some(10), N, Other, "include"),
            (
                "app/models.py",
                31,
                None,
                E,
                Other,
                "Incompatible return value",
            ),
        ],
    );
}

#[test]
fn ordinary_log_lines_are_not_locations() {
    let parsed = parse_log(&log(&[
        "2024/05/01 12:00:00 main.go:12: listening on :8080",
        "INFO 2024-05-01T12:00:00Z request id=42 took 12:30 ms",
        "   Compiling serde v1.0.197",
        "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 4.21s",
        "See http://localhost:3000/a.js:1:2 for details",
        "tests/test_calc.py::test_add PASSED",
        "✓ renders (12 ms)",
    ]));
    assert!(parsed.locations.is_empty(), "{:#?}", parsed.locations);
}

#[test]
fn mixed_log_is_deduplicated_and_ranked_errors_first() {
    let text = log(&[
        "warning: unused variable: `y`",
        " --> src/lib.rs:10:9",
        "",
        "warning: unused variable: `y`",
        " --> src/lib.rs:10:9",
        "",
        "src/index.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.",
        "./main.go:3:2: \"os\" imported and not used",
        "main.go:3:2: \"os\" imported and not used",
        "tests/test_x.py:12: AssertionError",
    ]);
    let parsed = parse_log(&text);
    let order: Vec<String> = parsed.locations.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        order,
        [
            "src/lib.rs:10:9",
            "src/index.ts:3:7",
            "main.go:3:2",
            "tests/test_x.py:12"
        ],
        "deduplicated, in order of appearance"
    );
    let ranked: Vec<String> = parsed.ranked().iter().map(|l| l.to_string()).collect();
    assert_eq!(
        ranked,
        [
            "src/index.ts:3:7",
            "main.go:3:2",
            "tests/test_x.py:12",
            "src/lib.rs:10:9"
        ],
        "errors first, then warnings, each in order of appearance"
    );
    assert_eq!(parsed.lines, 10);
}

#[test]
fn a_place_seen_as_note_then_error_becomes_an_error() {
    let parsed = parse_log(&log(&[
        "note: defined here",
        " --> src/a.rs:1:1",
        "",
        "error[E0599]: no method named `run` found",
        " --> src/a.rs:1:1",
    ]));
    assert_eq!(parsed.locations.len(), 1);
    let l = &parsed.locations[0];
    assert_eq!(l.severity, Severity::Error);
    assert_eq!(l.message, "no method named `run` found");
    assert_eq!(l.code.as_deref(), Some("E0599"));
}

#[test]
fn the_cap_keeps_errors_over_warnings_and_counts_what_it_drops() {
    let mut lines = Vec::new();
    for i in 1..=3 {
        lines.push("warning: unused".to_string());
        lines.push(format!(" --> src/w.rs:{i}:1"));
        lines.push(String::new());
    }
    for i in 1..=10 {
        lines.push(format!("src/e.ts({i},1): error TS1005: ';' expected."));
    }
    let parsed = parse_log_with(
        &lines.join("\n"),
        LogLimits {
            max_locations: 5,
            ..LogLimits::default()
        },
    );
    let kept: Vec<String> = parsed.locations.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        kept,
        [
            "src/e.ts:1:1",
            "src/e.ts:2:1",
            "src/e.ts:3:1",
            "src/e.ts:4:1",
            "src/e.ts:5:1"
        ]
    );
    assert_eq!(
        parsed.omitted, 8,
        "3 warnings displaced and 5 errors dropped"
    );

    // Warnings after the cap are dropped, never displace anything.
    let mut lines: Vec<String> = (1..=3)
        .map(|i| format!("src/e.ts({i},1): error TS1005: ';' expected."))
        .collect();
    lines.push("src/w.rs:1:1: warning: unused".into());
    let parsed = parse_log_with(
        &lines.join("\n"),
        LogLimits {
            max_locations: 3,
            ..LogLimits::default()
        },
    );
    assert!(
        parsed
            .locations
            .iter()
            .all(|l| l.severity == Severity::Error)
    );
    assert_eq!(parsed.omitted, 1);
}

#[test]
fn long_lines_are_looked_at_only_in_their_head_and_messages_are_capped() {
    let huge = "x".repeat(2_000_000);
    let far = format!("{} src/far.rs:1:1: error: hidden", "y".repeat(5000));
    let long_msg = format!("src/a.ts(1,1): error TS1005: {}", "é".repeat(1000));
    let text = log(&[&huge, &far, &long_msg, "src/b.ts(2,2): error TS1005: ok"]);
    let parsed = parse_log(&text);
    let files: Vec<&str> = parsed.locations.iter().map(|l| l.file.as_str()).collect();
    assert_eq!(files, ["src/a.ts", "src/b.ts"]);
    let msg = &parsed.locations[0].message;
    assert_eq!(msg.chars().count(), 401, "400 characters and an ellipsis");
    assert!(msg.ends_with('…'));
}

#[test]
fn carriage_returns_and_osc_hyperlinks_are_handled() {
    let text = "Compiling 10%\rCompiling 50%\rsrc/main.rs:2:3: error: bad\r\n\
                \x1b]8;;file:///w/src/x.rs\x1b\\src/x.rs\x1b]8;;\x1b\\:4:5: warning: linked\n";
    let parsed = parse_log(text);
    let got: Vec<String> = parsed.locations.iter().map(|l| l.to_string()).collect();
    assert_eq!(got, ["src/main.rs:2:3", "src/x.rs:4:5"]);
}

#[test]
fn a_large_log_stays_within_the_cap() {
    // ~3 MB of mixed output with 60 000 distinct locations.
    let mut text = String::new();
    for i in 0..20_000u32 {
        text.push_str(&format!(
            "error[E0308]: mismatched types\n --> src/m{}.rs:{}:5\n  |\n\nsrc/t.ts({},1): error TS1005: ';' expected.\n    at f (src/j.js:{}:1)\nplain noise line number {i}\n",
            i % 50,
            i + 1,
            i + 1,
            i + 1
        ));
    }
    let parsed = parse_log(&text);
    assert_eq!(parsed.locations.len(), 200);
    assert_eq!(parsed.omitted, 60_000 - 200);
    assert_eq!(parsed.lines, 20_000 * 7 + 1);
}

#[test]
fn streaming_gives_the_same_result_as_a_whole_string() {
    let text = log(&[
        "error[E0308]: mismatched types",
        " --> src/main.rs:4:18",
        "",
        "tests/test_calc.py:8: in test_add",
        "E   assert 4 == 5",
    ]);
    let mut p = LogParser::new(LogLimits::default());
    for line in text.split_inclusive('\n') {
        p.push_line(line);
    }
    assert_eq!(p.finish(), parse_log(&text));
}

#[test]
fn locations_serialize_with_their_wire_names() {
    let parsed = parse_log("src/index.ts(3,7): error TS2322: Type 'string'.");
    let v = serde_json::to_value(&parsed.locations[0]).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"file": "src/index.ts", "line": 3, "column": 7, "severity": "error",
                           "message": "Type 'string'.", "code": "TS2322", "toolchain": "tsc"})
    );
}

#[test]
fn resolve_file_maps_log_paths_onto_project_files() {
    let root = "/home/dev/shop";
    let files = [
        "main.go",
        "cart/cart.go",
        "cart/cart_test.go",
        "parse/parse_test.go",
        "web/src/a.ts",
        "shared/util.ts",
        "x/util.go",
        "y/util.go",
    ];
    let m = |f: &str| resolve_file(f, root, &files);
    assert_eq!(m("cart/cart.go"), FileMatch::Exact("cart/cart.go".into()));
    assert_eq!(m("./main.go"), FileMatch::Exact("main.go".into()));
    assert_eq!(
        m("/home/dev/shop/parse/parse_test.go"),
        FileMatch::Exact("parse/parse_test.go".into())
    );
    assert_eq!(
        m("/home/dev/shop/gen/main.go"),
        FileMatch::NotFound,
        "under the root but not a project file: no guessing"
    );
    assert_eq!(
        m("/home/dev/shopping/main.go"),
        FileMatch::Suffix("main.go".into()),
        "a sibling directory is not under the root"
    );
    assert_eq!(
        m("cart_test.go"),
        FileMatch::Suffix("cart/cart_test.go".into()),
        "go test prints paths relative to the package"
    );
    assert_eq!(
        m("src/a.ts"),
        FileMatch::Suffix("web/src/a.ts".into()),
        "a tool run in a workspace member"
    );
    assert_eq!(
        m("../shared/util.ts"),
        FileMatch::Suffix("shared/util.ts".into())
    );
    assert_eq!(
        m("/builds/ci/shop/cart/cart.go"),
        FileMatch::Suffix("cart/cart.go".into()),
        "a log from another machine"
    );
    assert_eq!(
        m("C:\\ci\\shop\\web\\src\\a.ts"),
        FileMatch::Suffix("web/src/a.ts".into())
    );
    assert_eq!(
        m("util.go"),
        FileMatch::Ambiguous(vec!["x/util.go".into(), "y/util.go".into()])
    );
    assert_eq!(m("/usr/local/go/src/runtime/panic.go"), FileMatch::NotFound);
    assert_eq!(m("../../etc/passwd"), FileMatch::NotFound);
    assert_eq!(m(".."), FileMatch::NotFound);
    assert_eq!(
        resolve_file("C:\\proj\\web\\src\\a.ts", "C:\\proj", &files),
        FileMatch::Exact("web/src/a.ts".into())
    );
}

// --- Output captured from the tools themselves (cargo 1.9x, tsc 5, eslint 9, jest 30,
// pytest 9, Python 3.11, Node 20), paths rewritten to a neutral project directory.

fn summary(lines: &[&str]) -> Vec<String> {
    parse_log(&lines.join("\n"))
        .locations
        .iter()
        .map(|l| format!("{l} {:?} {:?}", l.severity, l.toolchain))
        .collect()
}

fn message_at(lines: &[&str], place: &str) -> String {
    parse_log(&lines.join("\n"))
        .locations
        .into_iter()
        .find(|l| l.to_string() == place)
        .unwrap_or_else(|| panic!("no location {place}"))
        .message
}

#[test]
fn captured_cargo_test_with_a_backtrace() {
    let r = "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library";
    assert_eq!(
        summary(CARGO_TEST),
        vec![
            "src/main.rs:2:9 Warning Rust".to_string(),
            "src/main.rs:8:17 Error Rust".into(),
            format!("{r}/std/src/panicking.rs:689:5 Note Rust"),
            format!("{r}/core/src/panicking.rs:80:14 Note Rust"),
            format!("{r}/core/src/panicking.rs:439:17 Note Rust"),
            format!("{r}/core/src/panicking.rs:394:5 Note Rust"),
            "src/main.rs:8:14 Error Rust".into(),
            format!("{r}/core/src/ops/function.rs:250:5 Note Rust"),
            "src/main.rs:10:48 Error Rust".into(),
            format!("{r}/core/src/panicking.rs:150:5 Note Rust"),
            format!("{r}/core/src/option.rs:2236:5 Note Rust"),
            format!("{r}/core/src/option.rs:1016:21 Note Rust"),
            "src/main.rs:10:17 Error Rust".into(),
        ]
    );
    assert_eq!(
        message_at(CARGO_TEST, "src/main.rs:8:14"),
        "panicked: assertion `left == right` failed"
    );
    assert_eq!(
        message_at(CARGO_TEST, "src/main.rs:10:48"),
        "panicked: called `Option::unwrap()` on a `None` value"
    );
}

#[test]
fn captured_coloured_cargo_build_and_tsc_pretty() {
    assert_eq!(
        summary(CARGO_COLOR),
        [
            "src/main.rs:3:18 Error Rust",
            "src/main.rs:5:5 Error Rust",
            "src/math.rs:1:8 Note Rust"
        ]
    );
    assert_eq!(
        message_at(CARGO_COLOR, "src/math.rs:1:8"),
        "function defined here"
    );
    assert_eq!(
        summary(TSC_PRETTY),
        ["src/index.ts:1:7 Error Tsc", "src/index.ts:3:26 Error Tsc"]
    );
}

#[test]
fn captured_eslint_merges_two_rules_on_one_place() {
    assert_eq!(
        summary(ESLINT_STYLISH),
        [
            "/home/dev/project/src app/App.js:1:7 Error Eslint",
            "/home/dev/project/src app/App.js:3:3 Error Eslint",
            "/home/dev/project/src app/App.js:4:10 Error Eslint",
            "/home/dev/project/src/bad.js:2:8 Error Eslint",
        ]
    );
    assert_eq!(
        message_at(ESLINT_STYLISH, "/home/dev/project/src app/App.js:3:3"),
        "'console' is not defined; Unexpected console statement"
    );
}

#[test]
fn captured_jest_run() {
    assert_eq!(
        summary(JEST),
        [
            "src/sum.test.js:7:13 Note Jest",
            "src/sum.test.js:4:23 Error Jest",
            "src/sum.js:2:46 Error Jest",
            "src/sum.test.js:8:12 Error Jest",
            "/home/dev/project/src/broken.test.js:2:7 Error Jest",
            "node_modules/@babel/parser/src/parse-error.ts:96:45 Note Jest",
            "node_modules/@babel/parser/src/tokenizer/index.ts:1563:19 Note Jest",
            "node_modules/@babel/parser/src/tokenizer/index.ts:1603:16 Note Jest",
        ]
    );
    assert_eq!(
        message_at(JEST, "src/sum.js:2:46"),
        "sum › reads a profile: TypeError: Cannot read properties of undefined (reading 'name')"
    );
}

#[test]
fn captured_python_tracebacks() {
    assert_eq!(
        summary(PYTEST_COLLECT),
        [
            "/usr/lib/python3.11/importlib/__init__.py:126 Note Pytest",
            "tests/test_calc.py:1 Error Pytest"
        ]
    );
    assert_eq!(
        message_at(PYTEST_COLLECT, "tests/test_calc.py:1"),
        "ModuleNotFoundError: No module named 'calc' (in <module>)"
    );
    assert_eq!(
        summary(PYTEST_NATIVE),
        [
            "/home/dev/project/.venv/lib/python3.11/site-packages/_pytest/runner.py:361 Note Pytest",
            "/home/dev/project/.venv/lib/python3.11/site-packages/_pytest/runner.py:250 Note Pytest",
            "/home/dev/project/tests/test_calc.py:3 Error Pytest",
            "/home/dev/project/tests/test_calc.py:5 Error Pytest",
            "/home/dev/project/calc/ops.py:5 Error Pytest",
        ]
    );
    assert_eq!(
        message_at(PYTEST_NATIVE, "/home/dev/project/calc/ops.py:5"),
        "ZeroDivisionError: division by zero (in divide)"
    );
    assert_eq!(
        summary(PY_TRACE),
        [
            "/home/dev/project/py app/main.py:4 Error Pytest",
            "/home/dev/project/py app/main.py:3 Error Pytest",
            "/usr/lib/python3.11/json/__init__.py:346 Note Pytest",
            "/usr/lib/python3.11/json/decoder.py:337 Note Pytest",
            "/usr/lib/python3.11/json/decoder.py:355 Note Pytest",
        ]
    );
    assert_eq!(
        summary(NODE_TRACE),
        [
            "/home/dev/project/crash.js:1:22 Error Jest",
            "/home/dev/project/crash.js:2:1 Error Jest"
        ]
    );
    assert_eq!(
        message_at(NODE_TRACE, "/home/dev/project/crash.js:2:1"),
        "TypeError: boom here"
    );
}

const CARGO_TEST: &[&str] = &[
    "   Compiling rs v0.1.0 (/home/dev/project)",
    "warning: unused variable: `y`",
    " --> src/main.rs:2:9",
    "  |",
    "2 |     let y = 5;",
    "  |         ^ help: if this is intentional, prefix it with an underscore: `_y`",
    "  |",
    "  = note: `#[warn(unused_variables)]` (part of `#[warn(unused)]`) on by default",
    "",
    "warning: `rs` (bin \"rs\" test) generated 1 warning (run `cargo fix --bin \"rs\" -p rs --tests` to apply 1 suggestion)",
    "    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.20s",
    "     Running unittests src/main.rs (target/debug/deps/rs-0123456789abcdef)",
    "",
    "running 2 tests",
    "test tests::adds ... FAILED",
    "test tests::unwraps ... FAILED",
    "",
    "failures:",
    "",
    "---- tests::adds stdout ----",
    "",
    "thread 'tests::adds' (26451) panicked at src/main.rs:8:17:",
    "assertion `left == right` failed",
    "  left: 4",
    " right: 5",
    "stack backtrace:",
    "   0: __rustc::rust_begin_unwind",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5",
    "   1: core::panicking::panic_fmt",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:80:14",
    "   2: core::panicking::assert_failed_inner",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:439:17",
    "   3: core::panicking::assert_failed::<i32, i32>",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:394:5",
    "   4: rs::tests::adds",
    "             at ./src/main.rs:8:17",
    "   5: rs::tests::adds::{{closure}}",
    "             at ./src/main.rs:8:14",
    "   6: core::ops::function::FnOnce::call_once",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/ops/function.rs:250:5",
    "   7: <fn() -> core::result::Result<(), alloc::string::String> as core::ops::function::FnOnce<()>>::call_once",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/ops/function.rs:250:5",
    "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
    "",
    "---- tests::unwraps stdout ----",
    "",
    "thread 'tests::unwraps' (26452) panicked at src/main.rs:10:48:",
    "called `Option::unwrap()` on a `None` value",
    "stack backtrace:",
    "   0: __rustc::rust_begin_unwind",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5",
    "   1: core::panicking::panic_fmt",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:80:14",
    "   2: core::panicking::panic",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:150:5",
    "   3: core::option::unwrap_failed",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/option.rs:2236:5",
    "   4: core::option::Option<T>::unwrap",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/option.rs:1016:21",
    "   5: rs::tests::unwraps",
    "             at ./src/main.rs:10:48",
    "   6: rs::tests::unwraps::{{closure}}",
    "             at ./src/main.rs:10:17",
    "   7: core::ops::function::FnOnce::call_once",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/ops/function.rs:250:5",
    "   8: <fn() -> core::result::Result<(), alloc::string::String> as core::ops::function::FnOnce<()>>::call_once",
    "             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/ops/function.rs:250:5",
    "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
    "",
    "",
    "failures:",
    "    tests::adds",
    "    tests::unwraps",
    "",
    "test result: FAILED. 0 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.18s",
    "",
    "error: test failed, to rerun pass `--bin rs`",
];

const CARGO_COLOR: &[&str] = &[
    "\x1b[1m\x1b[92m   Compiling\x1b[0m rs v0.1.0 (/home/dev/project)",
    "\x1b[1m\x1b[91merror[E0308]\x1b[0m\x1b[1m: mismatched types\x1b[0m",
    " \x1b[1m\x1b[94m--> \x1b[0msrc/main.rs:3:18",
    "  \x1b[1m\x1b[94m|\x1b[0m",
    "\x1b[1m\x1b[94m3\x1b[0m \x1b[1m\x1b[94m|\x1b[0m     let x: i32 = \"hello\";",
    "  \x1b[1m\x1b[94m|\x1b[0m            \x1b[1m\x1b[94m---\x1b[0m   \x1b[1m\x1b[91m^^^^^^^\x1b[0m \x1b[1m\x1b[91mexpected `i32`, found `&str`\x1b[0m",
    "  \x1b[1m\x1b[94m|\x1b[0m            \x1b[1m\x1b[94m|\x1b[0m",
    "  \x1b[1m\x1b[94m|\x1b[0m            \x1b[1m\x1b[94mexpected due to this\x1b[0m",
    "",
    "\x1b[1m\x1b[91merror[E0061]\x1b[0m\x1b[1m: this function takes 2 arguments but 1 argument was supplied\x1b[0m",
    " \x1b[1m\x1b[94m--> \x1b[0msrc/main.rs:5:5",
    "  \x1b[1m\x1b[94m|\x1b[0m",
    "\x1b[1m\x1b[94m5\x1b[0m \x1b[1m\x1b[94m|\x1b[0m     math::add(1);",
    "  \x1b[1m\x1b[94m|\x1b[0m     \x1b[1m\x1b[91m^^^^^^^^^\x1b[0m\x1b[1m\x1b[94m---\x1b[0m \x1b[1m\x1b[94margument #2 of type `i32` is missing\x1b[0m",
    "  \x1b[1m\x1b[94m|\x1b[0m",
    "\x1b[1m\x1b[92mnote\x1b[0m: function defined here",
    " \x1b[1m\x1b[94m--> \x1b[0msrc/math.rs:1:8",
    "  \x1b[1m\x1b[94m|\x1b[0m",
    "\x1b[1m\x1b[94m1\x1b[0m \x1b[1m\x1b[94m|\x1b[0m pub fn add(a: i32, b: i32) -> i32 {",
    "  \x1b[1m\x1b[94m|\x1b[0m        \x1b[1m\x1b[92m^^^\x1b[0m         \x1b[1m\x1b[94m------\x1b[0m",
    "\x1b[1m\x1b[96mhelp\x1b[0m: provide the argument",
    "  \x1b[1m\x1b[94m|\x1b[0m",
    "\x1b[1m\x1b[94m5\x1b[0m \x1b[1m\x1b[94m| \x1b[0m    math::add(1\x1b[92m, /* i32 */\x1b[0m);",
    "  \x1b[1m\x1b[94m|\x1b[0m                \x1b[92m+++++++++++\x1b[0m",
    "",
    "\x1b[1mSome errors have detailed explanations: E0061, E0308.\x1b[0m",
    "\x1b[1mFor more information about an error, try `rustc --explain E0061`.\x1b[0m",
    "\x1b[1m\x1b[91merror\x1b[0m: could not compile `rs` (bin \"rs\") due to 2 previous errors",
];

const TSC_PRETTY: &[&str] = &[
    "\x1b[96msrc/index.ts\x1b[0m:\x1b[93m1\x1b[0m:\x1b[93m7\x1b[0m - \x1b[91merror\x1b[0m\x1b[90m TS2322: \x1b[0mType 'string' is not assignable to type 'number'.",
    "",
    "\x1b[7m1\x1b[0m const count: number = \"three\";",
    "\x1b[7m \x1b[0m \x1b[91m      ~~~~~\x1b[0m",
    "",
    "\x1b[96msrc/index.ts\x1b[0m:\x1b[93m3\x1b[0m:\x1b[93m26\x1b[0m - \x1b[91merror\x1b[0m\x1b[90m TS2561: \x1b[0mObject literal may only specify known properties, but 'nme' does not exist in type 'User'. Did you mean to write 'name'?",
    "",
    "\x1b[7m3\x1b[0m const u: User = { id: 1, nme: \"x\" };",
    "\x1b[7m \x1b[0m \x1b[91m                         ~~~\x1b[0m",
    "",
    "",
    "Found 2 errors in the same file, starting at: src/index.ts\x1b[90m:1\x1b[0m",
];

const ESLINT_STYLISH: &[&str] = &[
    "",
    "/home/dev/project/src app/App.js",
    "  1:7   error    'unused' is assigned a value but never used  no-unused-vars",
    "  3:3   error    'console' is not defined                     no-undef",
    "  3:3   warning  Unexpected console statement                 no-console",
    "  4:10  error    'undefinedThing' is not defined              no-undef",
    "",
    "/home/dev/project/src/bad.js",
    "  2:8  error  Parsing error: Unexpected token ,",
    "",
    "✖ 5 problems (4 errors, 1 warning)",
];

const JEST: &[&str] = &[
    "FAIL src/sum.test.js",
    "  ● Console",
    "",
    "    console.log",
    "      loading profile",
    "",
    "      at Object.log (src/sum.test.js:7:13)",
    "",
    "  ● sum › adds 1 + 2 to equal 4",
    "",
    "    expect(received).toBe(expected) // Object.is equality",
    "",
    "    Expected: 4",
    "    Received: 3",
    "",
    "      2 | describe('sum', () => {",
    "      3 |   test('adds 1 + 2 to equal 4', () => {",
    "    > 4 |     expect(sum(1, 2)).toBe(4);",
    "        |                       ^",
    "      5 |   });",
    "      6 |   test('reads a profile', () => {",
    "      7 |     console.log('loading profile');",
    "",
    "      at Object.toBe (src/sum.test.js:4:23)",
    "",
    "  ● sum › reads a profile",
    "",
    "    TypeError: Cannot read properties of undefined (reading 'name')",
    "",
    "      1 | function sum(a, b) { return a + b; }",
    "    > 2 | function profile(user) { return user.profile.name; }",
    "        |                                              ^",
    "      3 | module.exports = { sum, profile };",
    "      4 |",
    "",
    "      at name (src/sum.js:2:46)",
    "      at Object.profile (src/sum.test.js:8:12)",
    "",
    "FAIL src/broken.test.js",
    "  ● Test suite failed to run",
    "",
    "    Jest encountered an unexpected token",
    "",
    "    Jest failed to parse a file. This happens e.g. when your code or its dependencies use non-standard JavaScript syntax, or when Jest is not configured to support such syntax.",
    "",
    "    Out of the box Jest supports Babel, which will be used to transform your files into valid JS based on your Babel configuration.",
    "",
    "    By default \"node_modules\" folder is ignored by transformers.",
    "",
    "    Here's what you can do:",
    "     • If you are trying to use TypeScript, see https://jestjs.io/docs/getting-started#using-typescript",
    "     • To have some of your \"node_modules\" files transformed, you can specify a custom \"transformIgnorePatterns\" in your config.",
    "     • If you need a custom transformation, specify a \"transform\" option in your config.",
    "     • If you simply want to mock your non-JS modules (e.g. binary assets) you can stub them out with the \"moduleNameMapper\" config option.",
    "",
    "    You'll find more details and examples of these config options in the docs:",
    "    https://jestjs.io/docs/configuration",
    "    For information about custom transformations, see:",
    "    https://jestjs.io/docs/code-transformation",
    "",
    "    Details:",
    "",
    "    SyntaxError: /home/dev/project/src/broken.test.js: Unexpected token (2:7)",
    "",
    "      1 | const a = {",
    "    > 2 |   b: 1,,",
    "        |        ^",
    "      3 | };",
    "      4 |",
    "",
    "      at constructor (node_modules/@babel/parser/src/parse-error.ts:96:45)",
    "      at Parser.toParseError [as raise] (node_modules/@babel/parser/src/tokenizer/index.ts:1563:19)",
    "      at Parser.raise [as unexpected] (node_modules/@babel/parser/src/tokenizer/index.ts:1603:16)",
    "          at parser.next (<anonymous>)",
    "          at normalizeFile.next (<anonymous>)",
    "          at run.next (<anonymous>)",
    "          at transform.next (<anonymous>)",
    "",
    "Test Suites: 2 failed, 2 total",
    "Tests:       2 failed, 2 total",
    "Snapshots:   0 total",
    "Time:        0.689 s",
    "Ran all test suites matching src.",
];

const PYTEST_COLLECT: &[&str] = &[
    "============================= test session starts ==============================",
    "platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0",
    "rootdir: /home/dev/project",
    "collected 0 items / 1 error",
    "",
    "==================================== ERRORS ====================================",
    "_____________________ ERROR collecting tests/test_calc.py ______________________",
    "ImportError while importing test module '/home/dev/project/tests/test_calc.py'.",
    "Hint: make sure your test modules/packages have valid Python names.",
    "Traceback:",
    "/usr/lib/python3.11/importlib/__init__.py:126: in import_module",
    "    return _bootstrap._gcd_import(name[level:], package, level)",
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    "tests/test_calc.py:1: in <module>",
    "    from calc.ops import add, divide, now",
    "E   ModuleNotFoundError: No module named 'calc'",
    "=========================== short test summary info ============================",
    "ERROR tests/test_calc.py",
    "!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!",
    "=============================== 1 error in 0.22s ===============================",
];

const PYTEST_NATIVE: &[&str] = &[
    "============================= test session starts ==============================",
    "platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0",
    "rootdir: /home/dev/project",
    "collected 3 items",
    "",
    "tests/test_calc.py FF.                                                   [100%]",
    "",
    "=================================== FAILURES ===================================",
    "___________________________________ test_add ___________________________________",
    "Traceback (most recent call last):",
    "  File \"/home/dev/project/.venv/lib/python3.11/site-packages/_pytest/runner.py\", line 361, in from_call",
    "    result: TResult | None = func()",
    "                             ^^^^^^",
    "  File \"/home/dev/project/.venv/lib/python3.11/site-packages/_pytest/runner.py\", line 250, in <lambda>",
    "    lambda: runtest_hook(item=item, **kwds),",
    "            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    "  File \"/home/dev/project/tests/test_calc.py\", line 3, in test_add",
    "    assert add(2, 2) == 5",
    "AssertionError: assert 4 == 5",
    " +  where 4 = add(2, 2)",
    "_________________________________ test_divide __________________________________",
    "Traceback (most recent call last):",
    "  File \"/home/dev/project/.venv/lib/python3.11/site-packages/_pytest/runner.py\", line 361, in from_call",
    "    result: TResult | None = func()",
    "                             ^^^^^^",
    "  File \"/home/dev/project/.venv/lib/python3.11/site-packages/_pytest/runner.py\", line 250, in <lambda>",
    "    lambda: runtest_hook(item=item, **kwds),",
    "            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    "  File \"/home/dev/project/tests/test_calc.py\", line 5, in test_divide",
    "    assert divide(1, 0) == 0",
    "           ^^^^^^^^^^^^",
    "  File \"/home/dev/project/calc/ops.py\", line 5, in divide",
    "    return a / b",
    "           ~~^~~",
    "ZeroDivisionError: division by zero",
    "=========================== short test summary info ============================",
    "FAILED tests/test_calc.py::test_add - assert 4 == 5",
    "FAILED tests/test_calc.py::test_divide - ZeroDivisionError: division by zero",
    "========================= 2 failed, 1 passed in 0.02s ==========================",
];

const PY_TRACE: &[&str] = &[
    "Traceback (most recent call last):",
    "  File \"/home/dev/project/py app/main.py\", line 4, in <module>",
    "    main()",
    "  File \"/home/dev/project/py app/main.py\", line 3, in main",
    "    return json.loads(\"\")",
    "           ^^^^^^^^^^^^^^",
    "  File \"/usr/lib/python3.11/json/__init__.py\", line 346, in loads",
    "    return _default_decoder.decode(s)",
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^",
    "  File \"/usr/lib/python3.11/json/decoder.py\", line 337, in decode",
    "    obj, end = self.raw_decode(s, idx=_w(s, 0).end())",
    "               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    "  File \"/usr/lib/python3.11/json/decoder.py\", line 355, in raw_decode",
    "    raise JSONDecodeError(\"Expecting value\", s, err.value) from None",
    "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
];

const NODE_TRACE: &[&str] = &[
    "/home/dev/project/crash.js:1",
    "function f() { throw new TypeError(\"boom here\"); }",
    "               ^",
    "",
    "TypeError: boom here",
    "    at f (/home/dev/project/crash.js:1:22)",
    "    at Object.<anonymous> (/home/dev/project/crash.js:2:1)",
    "    at Module._compile (node:internal/modules/cjs/loader:1521:14)",
    "    at Module._extensions..js (node:internal/modules/cjs/loader:1623:10)",
    "    at Module.load (node:internal/modules/cjs/loader:1266:32)",
    "    at Module._load (node:internal/modules/cjs/loader:1091:12)",
    "    at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:164:12)",
    "    at node:internal/main/run_main_module:28:49",
    "",
    "Node.js v20.20.2",
];

const GO_OUTPUT: &[&str] = &[
    "# example.com/shop",
    "./main.go:5:2: imported and not used: \"os\"",
    "# example.com/shop",
    "vet: ./main.go:5:2: \"os\" imported but not used",
    "# example.com/shop",
    "./main.go:9:2: fmt.Printf format %d has arg name of wrong type string",
    "--- FAIL: TestTotal (0.00s)",
    "    cart_test.go:7: Total() = 35, want 30",
    "--- FAIL: TestDiscount (0.00s)",
    "    --- FAIL: TestDiscount/negative (0.00s)",
    "        cart_test.go:13: Discount(-1) did not return an error",
    "--- FAIL: TestAt (0.00s)",
    "panic: runtime error: index out of range [3] with length 3 [recovered]",
    "\tpanic: runtime error: index out of range [3] with length 3",
    "",
    "goroutine 21 [running]:",
    "testing.tRunner.func1.2({0x518a00, 0xc0000ce0a8})",
    "\t/usr/lib/go-1.19/src/testing/testing.go:1396 +0x24e",
    "testing.tRunner.func1()",
    "\t/usr/lib/go-1.19/src/testing/testing.go:1399 +0x39f",
    "panic({0x518a00, 0xc0000ce0a8})",
    "\t/usr/lib/go-1.19/src/runtime/panic.go:884 +0x212",
    "example.com/shop/cart.At(...)",
    "\t/home/dev/shop/cart/cart.go:11",
    "example.com/shop/cart.TestAt(0xc0000989c0?)",
    "\t/home/dev/shop/cart/cart_test.go:18 +0x1b",
    "testing.tRunner(0xc000098ea0, 0x52f338)",
    "\t/usr/lib/go-1.19/src/testing/testing.go:1446 +0x10b",
    "created by testing.(*T).Run",
    "\t/usr/lib/go-1.19/src/testing/testing.go:1493 +0x35f",
    "FAIL\texample.com/shop/cart\t0.005s",
    "FAIL",
    "# example.com/shop/cart [example.com/shop/cart.test]",
    "cart/cart.go:12:28: undefined: Totl",
    "FAIL\texample.com/shop/cart [build failed]",
    "FAIL",
];

#[test]
fn captured_go_build_vet_and_test() {
    assert_eq!(
        summary(GO_OUTPUT),
        [
            "main.go:5:2 Error Go",
            "main.go:9:2 Error Go",
            "cart_test.go:7 Error Go",
            "cart_test.go:13 Error Go",
            "/usr/lib/go-1.19/src/testing/testing.go:1396 Note Go",
            "/usr/lib/go-1.19/src/testing/testing.go:1399 Note Go",
            "/usr/lib/go-1.19/src/runtime/panic.go:884 Note Go",
            "/home/dev/shop/cart/cart.go:11 Error Go",
            "/home/dev/shop/cart/cart_test.go:18 Error Go",
            "/usr/lib/go-1.19/src/testing/testing.go:1446 Note Go",
            "/usr/lib/go-1.19/src/testing/testing.go:1493 Note Go",
            "cart/cart.go:12:28 Error Go",
        ]
    );
    assert_eq!(
        message_at(GO_OUTPUT, "main.go:5:2"),
        "imported and not used: \"os\"; \"os\" imported but not used"
    );
    assert_eq!(
        message_at(GO_OUTPUT, "/home/dev/shop/cart/cart.go:11"),
        "panic: runtime error: index out of range [3] with length 3"
    );
    assert_eq!(
        message_at(GO_OUTPUT, "cart/cart.go:12:28"),
        "undefined: Totl"
    );
}
