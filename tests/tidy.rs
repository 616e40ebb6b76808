//! House rules that check themselves (no services needed; `make unit` runs this too):
//! every Rust source file opens with a `//!` doc saying what it owns, no test is ignored,
//! every Lambda's and the CLI's `main.rs` stays thin (at most 40 lines), zone keys are spelled
//! only by the lake contract (`sluice_core::lake`), and README's config reference matches
//! the config structs.

use std::path::{Path, PathBuf};

use sluice_local::workspace_root;

/// Directories that hold no source of ours.
const SKIP: &[&str] = &[
    "target",
    ".git",
    ".venv",
    "node_modules",
    "cdk.out",
    "corpus",
];
const MAX_MAIN_LINES: usize = 40;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if !SKIP.contains(&name.as_str()) {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn workspace_sources() -> Vec<(String, String)> {
    let root = workspace_root();
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    assert!(files.len() > 50, "found only {} sources", files.len());
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap_or(&p)
                .to_string_lossy()
                .to_string();
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
            (rel, text)
        })
        .collect()
}

#[test]
fn every_source_file_says_what_it_owns() {
    let missing: Vec<String> = workspace_sources()
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(rel, _)| rel)
        .collect();
    assert!(missing.is_empty(), "no `//!` module doc: {missing:?}");
}

#[test]
fn no_test_is_ignored() {
    let attr = concat!("#[", "ignore");
    let found: Vec<String> = workspace_sources()
        .into_iter()
        .filter(|(_, text)| text.contains(attr))
        .map(|(rel, _)| rel)
        .collect();
    assert!(found.is_empty(), "ignored tests in {found:?}");
}

#[test]
fn every_main_rs_is_thin() {
    let long: Vec<String> = workspace_sources()
        .into_iter()
        .filter(|(rel, _)| rel.ends_with("main.rs"))
        .filter(|(_, text)| text.lines().count() > MAX_MAIN_LINES)
        .map(|(rel, text)| format!("{rel}: {} lines", text.lines().count()))
        .collect();
    assert!(
        long.is_empty(),
        "main.rs over {MAX_MAIN_LINES} lines: {long:?}"
    );
}

/// The TOML example in README.md's "Pipeline config" section.
fn readme_config_example() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README");
    let section = readme
        .split("## Pipeline config")
        .nth(1)
        .expect("a Pipeline config section");
    let block = section
        .split("```toml")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block in it");
    block.to_string()
}

/// Field names of the config structs users write (`shared/src/config/`), as TOML spells them
/// (serde `rename`s applied).
fn config_struct_fields() -> Vec<String> {
    let text: String = ["shared/src/config/mod.rs", "shared/src/config/raw.rs"]
        .iter()
        .map(|f| std::fs::read_to_string(workspace_root().join(f)).expect("config source"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut fields = Vec::new();
    let mut inside = false;
    let mut rename: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("pub(super) struct Raw")
            || t.starts_with("pub struct CatalogConfig")
            || t.starts_with("pub struct WarehouseConfig")
        {
            inside = true;
            continue;
        }
        if inside && t == "}" {
            inside = false;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(r) = t.split("rename = \"").nth(1) {
            rename = r.split('"').next().map(str::to_string);
            continue;
        }
        if t.starts_with("//") || t.starts_with("#[") || t.is_empty() {
            continue;
        }
        let name = t
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .split(':')
            .next()
            .unwrap_or("");
        fields.push(rename.take().unwrap_or_else(|| name.to_string()));
    }
    fields
}

#[test]
fn the_readme_config_reference_matches_the_config_structs() {
    let example = readme_config_example();
    // Every field the README shows exists (the structs refuse unknown fields)...
    sluice_core::config::PipelineConfig::from_toml(&example)
        .unwrap_or_else(|e| panic!("README's config example is refused: {e}"));
    // ...and every field the structs accept is shown.
    let fields = config_struct_fields();
    for f in [
        "dataset",
        "routing_field",
        "partition_projection",
        "schema",
        "type",
        "pii",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} not found in {fields:?}");
    }
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| {
            !example.contains(&format!("{f} ="))
                && !example.contains(&format!("[{f}]"))
                && !example.contains(&format!("[[{f}]]"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "config fields missing from README's example: {missing:?}"
    );
}

/// The module that owns the lake contract: the only one that may spell zone keys.
const LAKE_CONTRACT: &str = "shared/src/lake/";

#[test]
fn zone_keys_are_spelled_only_by_the_lake_contract() {
    let needles = [
        "\".parquet\"",
        ".json.gz\"",
        "\"dt=",
        "/dt=",
        "\"hr=",
        "/hr=",
    ];
    let mut found = Vec::new();
    for (rel, text) in workspace_sources() {
        let production = [
            "functions/",
            "cli/src/",
            "shared/src/",
            "local/src/",
            "bench/src/",
        ]
        .iter()
        .any(|p| rel.starts_with(p));
        if !production || rel.starts_with(LAKE_CONTRACT) {
            continue;
        }
        // Code only: up to the unit-test module, without comments.
        for (n, line) in text
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .enumerate()
        {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if let Some(needle) = needles.iter().find(|s| code.contains(*s)) {
                found.push(format!("{rel}:{}: {needle}", n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "zone keys spelled outside {LAKE_CONTRACT}: {found:?}"
    );
}
