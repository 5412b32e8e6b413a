//! The README's tour, as a newcomer follows it: a throwaway crate made of exactly the snippets the
//! README marks `<!-- tour: PATH -->`, with the published crates it names patched to this checkout,
//! built and run. It must print the greeting.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// The `(path, contents)` of each snippet the README marks for the tour.
fn snippets(readme: &str) -> Result<Vec<(String, String)>> {
    let mut snippets = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line.trim().strip_prefix("<!-- tour:").and_then(|rest| rest.strip_suffix("-->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        ensure!(fence.starts_with("```"), "the tour marker for {path} is not followed by a code block");
        let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
        snippets.push((path.trim().to_owned(), body.join("\n") + "\n"));
    }
    ensure!(snippets.len() >= 4, "the README marks only {} tour snippets", snippets.len());
    Ok(snippets)
}

/// The README's manifest exactly as shown, as its own workspace, with the published crates it names
/// patched to this checkout (`[patch.crates-io]`), so the dependency lines are the ones a newcomer
/// copies.
fn local_manifest(manifest: &str, root: &Path) -> Result<String> {
    for line in ["probe-rpc = \"0.1\"", "probe-build = \"0.1\""] {
        ensure!(manifest.lines().any(|l| l.trim() == line), "the tour's Cargo.toml lacks `{line}`");
    }
    let path = |krate: &str| format!("{{ path = {:?} }}", root.join(krate));
    Ok(format!(
        "{manifest}\n[patch.crates-io]\nprobe-rpc = {}\nprobe-build = {}\n\n[workspace]\n",
        path("probe"),
        path("probe-build")
    ))
}

#[test]
fn readme_tour_builds_and_runs() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("the tests crate has a parent")?;
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("readme-tour");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    for (path, body) in snippets(&readme)? {
        let file = dir.join(&path);
        std::fs::create_dir_all(file.parent().context("a snippet path has a parent")?)?;
        let body = if path == "Cargo.toml" { local_manifest(&body, root)? } else { body };
        std::fs::write(&file, body)?;
    }
    // The workspace's lock file, so the tour builds offline with the versions tested here.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["run", "--quiet", "--offline"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme-tour-target"))
        .output()
        .context("cannot run cargo")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("the tour crate failed ({}):\n{stdout}\n{stderr}", output.status);
    }
    ensure!(
        stdout.trim() == "hello, probe",
        "the tour printed {stdout:?}, not `hello, probe`; stderr:\n{stderr}"
    );
    Ok(())
}
