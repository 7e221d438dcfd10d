//! The Makefile and the Dockerfile install Debian packages from one list,
//! `debian-packages.txt`. No Docker engine runs here, so this test reads the Dockerfile and
//! runs the selections it and the Makefile make from the list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// (stage, package) rows of the list.
fn list() -> Vec<(String, String)> {
    read("debian-packages.txt")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap().to_string(), f.next().unwrap().to_string())
        })
        .collect()
}

fn packages_of(stages: &[&str]) -> BTreeSet<String> {
    list()
        .into_iter()
        .filter(|(s, _)| stages.contains(&s.as_str()))
        .map(|(_, p)| p)
        .collect()
}

/// Dockerfile instructions with line continuations joined.
fn dockerfile_instructions() -> Vec<String> {
    let text = read("Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let (body, continued) = match line.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        current.push_str(body);
        current.push(' ');
        if !continued {
            if !current.trim().is_empty() {
                out.push(current.trim().to_string());
            }
            current.clear();
        }
    }
    out
}

/// The packages one `apt-get install` in the Dockerfile selects: its `$(awk ...)` substitution
/// run on the real list. Panics when the command names a package of its own.
fn dockerfile_selection(run: &str) -> BTreeSet<String> {
    let install = run
        .split("apt-get install")
        .nth(1)
        .expect("apt-get install");
    let start = install
        .find("$(")
        .expect("packages must come from $(awk ... debian-packages.txt)");
    let end = closing_paren(install, start + 1);
    let substitution = &install[start + 2..end];
    let before = &install[..start];
    assert!(
        !before.contains("&&"),
        "the packages must be the install's own arguments"
    );
    let after = install[end + 1..].split("&&").next().unwrap();
    let rest = format!("{before}{after}");
    for token in rest.split_whitespace() {
        assert!(
            token.starts_with('-'),
            "the Dockerfile names package {token:?} outside the list"
        );
    }
    assert!(
        substitution.contains("/tmp/debian-packages.txt"),
        "{substitution}"
    );
    let script = substitution.replace(
        "/tmp/debian-packages.txt",
        &root().join("debian-packages.txt").display().to_string(),
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The index of the `)` that closes the `(` at `open`.
fn closing_paren(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced $( in {text}")
}

#[test]
fn dockerfile_installs_from_the_list() {
    let instructions = dockerfile_instructions();
    let stages: Vec<&String> = instructions
        .iter()
        .filter(|i| i.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "multi-stage: build then runtime");
    assert!(
        stages[0].contains("bookworm") && stages[1].contains("bookworm"),
        "{stages:?}"
    );
    let installs: Vec<&String> = instructions
        .iter()
        .filter(|i| i.starts_with("RUN ") && i.contains("apt-get install"))
        .collect();
    assert_eq!(installs.len(), 2, "one install per stage");
    assert_eq!(
        dockerfile_selection(installs[0]),
        packages_of(&["build", "runtime"])
    );
    assert_eq!(dockerfile_selection(installs[1]), packages_of(&["runtime"]));
    let copies = instructions
        .iter()
        .filter(|i| i.starts_with("COPY debian-packages.txt"))
        .count();
    assert_eq!(copies, 2, "each stage copies the list in");
    // The runtime stage carries no -dev package and runs as a non-root user.
    assert!(packages_of(&["runtime"])
        .iter()
        .all(|p| !p.ends_with("-dev")));
    let runtime_start = instructions.iter().position(|i| i == stages[1]).unwrap();
    assert!(instructions[runtime_start..]
        .iter()
        .any(|i| i.starts_with("USER ") && !i.contains("root")));
}

#[test]
fn makefile_installs_from_the_list() {
    let makefile = read("Makefile");
    for line in makefile.lines().filter(|l| l.contains("apt-get install")) {
        assert!(
            line.contains("\"$${missing[@]}\""),
            "the Makefile installs something not from the list: {line}"
        );
    }
    for (stages, expected) in [
        ("build runtime", packages_of(&["build", "runtime"])),
        (
            "build runtime test",
            packages_of(&["build", "runtime", "test"]),
        ),
    ] {
        let out = Command::new("make")
            .current_dir(root())
            .args(["--no-print-directory", "-n", "install-packages"])
            .arg(format!("STAGES={stages}"))
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let entries = text
            .split("for entry in ")
            .nth(1)
            .unwrap()
            .split("; do")
            .next()
            .unwrap();
        let selected: BTreeSet<String> = entries
            .split_whitespace()
            .map(|e| e.split(':').next().unwrap().to_string())
            .collect();
        assert_eq!(selected, expected, "stages {stages}");
    }
}

#[test]
fn the_list_has_what_the_product_needs() {
    let all = packages_of(&["build", "runtime", "test", "bench"]);
    for p in [
        "libgstreamer1.0-dev",
        "libgstreamer-plugins-base1.0-dev",
        "libgstreamer-plugins-bad1.0-dev",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-nice",
        "gstreamer1.0-libav",
        "libgstrtspserver-1.0-dev",
        "mosquitto",
        "chromium",
    ] {
        assert!(all.contains(p), "debian-packages.txt lacks {p}");
    }
}

#[test]
fn dockerfile_ships_the_plugins_where_its_config_looks() {
    let config = poolgate::Config::parse(&read("config/docker.toml")).unwrap();
    let dir = config
        .plugins
        .dir
        .expect("config/docker.toml sets plugins.dir");
    let instructions = dockerfile_instructions();
    let copy = format!("COPY --from=build /out/plugins {}", dir.display());
    assert!(
        instructions.contains(&copy),
        "the runtime stage must `{copy}`"
    );
    let build = instructions
        .iter()
        .find(|i| i.starts_with("RUN cargo build"))
        .expect("a cargo build");
    for needle in [
        "--workspace",
        "--exclude test-panic",
        "--exclude test-bad-version",
        "cp target/release/libpoolgate_*.so /out/plugins/",
        "poolgate plugins --dir /out/plugins",
    ] {
        assert!(
            build.contains(needle),
            "the build lacks {needle:?}: {build}"
        );
    }
    assert!(
        !build.contains("--bins"),
        "--bins would leave out the plugin libraries: {build}"
    );
    // The test plugins' crate names are what the build excludes.
    for (crate_dir, name) in [
        ("plugins/test-panic", "test-panic"),
        ("plugins/test-bad-version", "test-bad-version"),
    ] {
        let manifest = read(&format!("{crate_dir}/Cargo.toml"));
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{crate_dir} is no longer named {name}"
        );
    }
}
