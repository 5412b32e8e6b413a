//! The real-world IDL corpus in ../shared/idl-corpus: probe must agree with Apache Thrift 0.17's
//! verdict on every file (MANIFEST.tsv). Files the reference rejects only in its generators (a
//! language's reserved word) or for `uuid` (a base type since Thrift 0.19) are listed apart, with
//! what probe does with them.

use std::path::{Path, PathBuf};

struct Entry {
    local_path: String,
    accepted: bool,
    category: String,
    include_roots: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("PROBE_IDL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/idl-corpus"))
}

fn manifest(dir: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap_or_else(|e| {
        panic!("cannot read {}/MANIFEST.tsv ({e}); the corpus lives in ../shared beside the project root, or set PROBE_IDL_CORPUS", dir.display())
    });
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name: &str| {
        header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("MANIFEST.tsv lacks column {name}"))
    };
    let (path_col, ok_col, cat_col, roots_col) =
        (col("local_path"), col("ref_py_ok"), col("ref_category"), col("include_roots"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            let cell = |i: usize| cells.get(i).copied().unwrap_or("").trim_matches('"').to_owned();
            Entry {
                local_path: cell(path_col),
                accepted: cell(ok_col) == "true",
                category: cell(cat_col),
                include_roots: cell(roots_col)
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            }
        })
        .collect()
}

fn check(dir: &Path, entry: &Entry) -> Result<(), String> {
    let path = dir.join(&entry.local_path);
    let repo = dir.join(entry.local_path.split('/').next().unwrap_or_default());
    let mut builder = probe_build::configure();
    for root in &entry.include_roots {
        builder = builder.include_dir(repo.join(root));
    }
    builder.check(&[path]).map(|_| ()).map_err(|e| e.to_string())
}

/// Whether a rendered error starts with `path:line:col: error:`.
fn is_located(error: &str) -> bool {
    let Some(first) = error.lines().next() else { return false };
    let mut parts = first.rsplitn(2, ": error: ");
    let (Some(_), Some(location)) = (parts.next(), parts.next()) else { return false };
    let mut nums = location.rsplitn(3, ':');
    let col = nums.next().and_then(|c| c.parse::<u32>().ok());
    let line = nums.next().and_then(|l| l.parse::<u32>().ok());
    col.is_some() && line.is_some()
}

/// Files the reference accepts and probe rejects, each with the reason.
///
/// Impala's IDL includes `ErrorCodes.thrift` (generated during Impala's own build) and
/// `hive_metastore.thrift` (from Hive); neither is in Impala's tree, so these files' include chains
/// reach a file that does not exist. Apache Thrift 0.17 only warns about a missing include and, run
/// without `-r` as for the MANIFEST, does not check the types of included files it is not asked to
/// generate, so it accepts them; probe checks every included file (as `thrift -r` does, which rejects
/// them too) and reports the type from the missing file where it is used.
const JUSTIFIED: &[(&str, &str)] = &[
    ("apache__impala/common/thrift/DataSinks.thrift", "missing ErrorCodes.thrift"),
    ("apache__impala/common/thrift/Descriptors.thrift", "missing hive_metastore.thrift"),
    ("apache__impala/common/thrift/ExecStats.thrift", "missing ErrorCodes.thrift"),
    ("apache__impala/common/thrift/ExternalDataSource.thrift", "missing ErrorCodes.thrift"),
    ("apache__impala/common/thrift/Frontend.thrift", "missing ErrorCodes.thrift"),
    ("apache__impala/common/thrift/ImpalaService.thrift", "missing ErrorCodes.thrift"),
    ("apache__impala/common/thrift/PlanNodes.thrift", "missing hive_metastore.thrift"),
    ("apache__impala/common/thrift/Planner.thrift", "missing ErrorCodes.thrift"),
    ("apache__impala/common/thrift/Query.thrift", "missing hive_metastore.thrift"),
    ("apache__impala/common/thrift/Results.thrift", "missing hive_metastore.thrift"),
    ("apache__impala/common/thrift/RuntimeProfile.thrift", "missing ErrorCodes.thrift"),
];

/// Whether probe's rejection of a file the reference accepts is the justified one.
fn justified(entry: &Entry, error: &str) -> Option<&'static str> {
    let (_, why) = JUSTIFIED.iter().find(|(path, _)| *path == entry.local_path)?;
    let missing = why.trim_start_matches("missing ").trim_end_matches(".thrift");
    error.contains(&format!("the included file `{missing}.thrift` was not found")).then_some(why)
}

#[test]
fn corpus_agrees_with_apache_thrift() {
    let dir = corpus_dir();
    let entries = manifest(&dir);
    assert!(entries.len() > 250, "only {} corpus entries found in {}", entries.len(), dir.display());
    let (mut accepted_agree, mut rejected_agree) = (0, 0);
    let mut disagree = Vec::new();
    let mut apart = Vec::new();
    for entry in &entries {
        let result = check(&dir, entry);
        let apart_category = entry.category.contains("uuid") || entry.category.starts_with("generator-level");
        if apart_category && !entry.accepted {
            let what = match &result {
                Ok(()) => "probe accepts it".to_owned(),
                Err(e) => format!("probe rejects it: {}", e.lines().next().unwrap_or_default()),
            };
            apart.push(format!("{} [{}]: {what}", entry.local_path, entry.category));
            continue;
        }
        match (entry.accepted, result) {
            (true, Ok(())) => accepted_agree += 1,
            (false, Err(e)) if is_located(&e) => rejected_agree += 1,
            (false, Err(e)) => {
                disagree.push(format!("{}: rejected without a location: {e}", entry.local_path))
            }
            (true, Err(e)) if justified(entry, &e).is_some() => {
                apart.push(format!(
                    "{} [accepted by the reference]: probe rejects it: {}",
                    entry.local_path,
                    justified(entry, &e).unwrap_or_default()
                ));
            }
            (true, Err(e)) => {
                disagree.push(format!("{}: reference accepts, probe rejects:\n{e}", entry.local_path))
            }
            (false, Ok(())) => disagree
                .push(format!("{}: reference rejects ({}), probe accepts", entry.local_path, entry.category)),
        }
    }
    println!(
        "listed apart: files rejected by the reference only for a generator's reserved word or `uuid`, and the justified exceptions:"
    );
    for line in &apart {
        println!("  {line}");
    }
    for line in &disagree {
        println!("DISAGREE {line}\n");
    }
    println!(
        "idl-corpus: {accepted_agree} accepted-agree, {rejected_agree} rejected-agree, {} disagree",
        disagree.len()
    );
    assert!(disagree.is_empty(), "{} corpus files disagree with Apache Thrift 0.17", disagree.len());

    let accepted: Vec<&Entry> = entries.iter().filter(|e| check(&dir, e).is_ok()).collect();
    compile_generated(&dir, &accepted);
}

/// Generates code for every accepted file (grouped by repository and include roots, so shared
/// includes are generated once per group) and compiles it all in one crate with `cargo check`.
fn compile_generated(dir: &Path, accepted: &[&Entry]) {
    let mut groups: std::collections::BTreeMap<(String, Vec<String>), Vec<&Entry>> = Default::default();
    for e in accepted {
        let repo = e.local_path.split('/').next().unwrap_or_default().to_owned();
        groups.entry((repo, e.include_roots.clone())).or_default().push(e);
    }
    let krate = Path::new(env!("CARGO_TARGET_TMPDIR")).join("idl-corpus-crate");
    let _ = std::fs::remove_dir_all(krate.join("src"));
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let mut lib = String::from("#![deny(warnings)]\n");
    let (mut files, mut bytes) = (0, 0);
    for (n, ((repo, roots), group)) in groups.iter().enumerate() {
        let mut builder = probe_build::configure();
        for root in roots {
            builder = builder.include_dir(dir.join(repo).join(root));
        }
        let paths: Vec<PathBuf> = group.iter().map(|e| dir.join(&e.local_path)).collect();
        let generated =
            builder.generate(&paths).unwrap_or_else(|e| panic!("generating {repo} {roots:?} failed:\n{e}"));
        let module_dir = krate.join(format!("src/g{n:03}"));
        std::fs::create_dir_all(&module_dir).unwrap();
        for file in &generated {
            let code = &file.code;
            if file.name == probe_build::ROOT_FILE {
                std::fs::write(module_dir.join("mod.rs"), code).unwrap();
            } else {
                files += 1;
                bytes += code.len();
                std::fs::write(module_dir.join(&file.name), code).unwrap();
            }
        }
        lib.push_str(&format!("/// {repo} {roots:?}\npub mod g{n:03};\n"));
    }
    std::fs::write(krate.join("src/lib.rs"), lib).unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = format!(
        "[package]\nname = \"idl-corpus-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nprobe = {{ package = \"probe-rpc\", path = {:?} }}\nbytes = \"1\"\n\n[workspace]\n",
        workspace.join("probe").canonicalize().unwrap()
    );
    std::fs::write(krate.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(workspace.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["check", "--quiet", "--offline", "--message-format=short"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("idl-corpus-target"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).take(40).collect();
    println!(
        "idl-corpus: generated {files} Rust files ({} KiB) for {} accepted IDL files in {} groups; cargo check: {}",
        bytes / 1024,
        accepted.len(),
        groups.len(),
        if output.status.success() { "ok" } else { "FAILED" }
    );
    assert!(
        output.status.success(),
        "the generated corpus code does not compile ({}):\n{}",
        krate.display(),
        errors.join("\n")
    );
}
