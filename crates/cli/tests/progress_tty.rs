//! A person's view, under a real pseudo-terminal: the progress line ticks on its own while a
//! slow node runs (the elapsed time advances between events), and none of it reaches stdout.

#![cfg(target_os = "linux")]

mod support;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use support::Project;

/// A pseudo-terminal pair: (controller, terminal end).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two new descriptors into the given integers; the null pointers
    // ask for no name and default terminal settings.
    let rc = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    }
}

#[test]
fn the_progress_line_ticks_on_a_terminal() {
    let p = Project::new();
    p.write(
        "workflows/slow.yaml",
        "name: slow\nchannels:\n  a: {}\nnodes:\n  wait: {kind: builtin, name: sleep, with: {ms: 1500}, writes: a}\nedges:\n  - {from: START, to: wait}\n",
    );
    let (controller, terminal) = openpty();
    let mut child = p
        .spawn(&["run", "slow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(terminal))
        .spawn()
        .unwrap();
    // Read the terminal while the child draws (a full terminal buffer would block it); once
    // the child has exited, the closed terminal end reads as an error and the reader stops.
    let mut reader = std::fs::File::from(controller);
    let drawn = std::thread::spawn(move || {
        let mut screen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            screen.extend_from_slice(&buf[..n]);
        }
        screen
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let screen = drawn.join().unwrap();
    let screen = String::from_utf8_lossy(&screen);
    let times: Vec<f64> = screen
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 's'))
        .filter_map(|w| w.strip_suffix('s')?.parse().ok())
        .collect();
    let latest = times.iter().cloned().fold(0.0, f64::max);
    assert!(
        times.len() >= 5 && latest >= 1.0,
        "the elapsed time advanced while the node ran: {times:?}\n{screen:?}"
    );
    assert!(screen.contains("running wait"), "{screen:?}");
    assert!(stdout.contains("completed"), "{stdout}");
    assert!(
        !stdout.contains('\r') && !stdout.contains("running wait"),
        "stdout stays clean"
    );
}
