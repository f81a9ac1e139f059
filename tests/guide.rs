//! docs/mapping-guide.md, run as written (issue 17.5): in a folder holding
//! only the guide's saved response, every `sh` command is run in order
//! (with the exit status its `# exits N` comment names, else 0), every
//! `text` block must appear in the output of the command before it, and
//! every `yaml` block headed `# file: NAME` is written to NAME.

use std::path::Path;
use std::process::Command;

const GUIDE: &str = include_str!("../docs/mapping-guide.md");

#[test]
fn the_mapping_guide_runs_as_written() {
    let work = tempfile::tempdir().unwrap();
    std::fs::copy(
        "docs/guide/acme-offers.json",
        work.path().join("acme-offers.json"),
    )
    .unwrap();
    let mut last_output = String::new();
    let mut last_command = String::new();
    let mut commands = 0;
    let mut checked_outputs = 0;
    let mut lines = GUIDE.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let block: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        match info.trim() {
            "sh" => {
                for command in block.iter().filter(|l| l.starts_with("offersync ")) {
                    (last_output, last_command) = run(work.path(), command);
                    commands += 1;
                }
            }
            "text" => {
                for expected in block.iter().map(|l| l.trim_end()).filter(|l| !l.is_empty()) {
                    assert!(
                        last_output.contains(expected),
                        "the guide shows {expected:?} after `{last_command}`, which printed:\n{last_output}"
                    );
                }
                checked_outputs += 1;
            }
            "yaml" => {
                if let Some(name) = block.first().and_then(|l| l.strip_prefix("# file: ")) {
                    std::fs::write(work.path().join(name.trim()), block[1..].join("\n") + "\n")
                        .unwrap();
                }
            }
            _ => {}
        }
    }
    assert!(commands >= 6, "the guide runs {commands} commands");
    assert!(
        checked_outputs >= 6,
        "the guide shows {checked_outputs} outputs"
    );
}

/// Runs one guide command in `work`: its stdout and stderr together, after
/// checking its exit status.
fn run(work: &Path, command: &str) -> (String, String) {
    let (command_text, expected) = match command.split_once("# exits ") {
        Some((c, code)) => (c.trim(), code.trim().parse::<i32>().unwrap()),
        None => (command.trim(), 0),
    };
    let args: Vec<&str> = command_text.split_whitespace().skip(1).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_offersync"))
        .current_dir(work)
        .args(&args)
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env_remove("ACME_API_KEY")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(expected),
        "`{command_text}` printed:\n{text}"
    );
    (text, command_text.to_string())
}
