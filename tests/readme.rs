//! The README's configuration examples, run: a user copies them, so each
//! must be accepted by the program it is written for.

mod common;

use std::path::Path;
use std::process::Command;

use common::{readme, tools};

/// A fresh directory under the target directory, for files the test writes.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn every_targets_file_in_the_readme_is_accepted() {
    let dir = scratch("readme-targets");
    let files: Vec<String> = readme::code_blocks("yaml")
        .into_iter()
        .filter(|b| b.lines().any(|l| l.starts_with("targets:")))
        .collect();
    // The annotated example and the two shards.
    assert!(files.len() >= 3, "found {} targets files", files.len());
    for (i, file) in files.iter().enumerate() {
        let path = dir.join(format!("targets-{i}.yml"));
        std::fs::write(&path, file).unwrap();
        let targets = imagebuilder_exporter::targets::load(&path)
            .unwrap_or_else(|e| panic!("README targets file {i} refused: {e}\n{file}"));
        let listed = file
            .lines()
            .filter(|l| l.trim_start().starts_with("- "))
            .count();
        assert_eq!(
            targets.len(),
            listed,
            "every target of file {i} read:\n{file}"
        );
    }
}

#[test]
fn every_prometheus_configuration_in_the_readme_is_valid() {
    let Some(promtool) = tools::require("promtool") else {
        return;
    };
    let dir = scratch("readme-prometheus");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/imagebuilder.rules.yml");
    let configs: Vec<String> = readme::code_blocks("yaml")
        .into_iter()
        .filter(|b| b.lines().any(|l| l.starts_with("scrape_configs:")))
        .collect();
    // The full prometheus.yml and the federation job.
    assert!(
        configs.len() >= 2,
        "found {} Prometheus configurations",
        configs.len()
    );
    for (i, config) in configs.iter().enumerate() {
        // The rules file where the README says to put it is, here, the repo's.
        let mut config = config.replace(
            "/etc/prometheus/rules/imagebuilder.rules.yml",
            &rules.display().to_string(),
        );
        // Certificates and password files are the user's: promtool wants
        // them to exist, so stand-ins are made here (absolute paths moved in).
        for line in config.clone().lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if !key.trim().ends_with("_file") {
                continue;
            }
            let value = value.split('#').next().unwrap_or("").trim();
            let name = Path::new(value).file_name().expect("a file name");
            std::fs::write(dir.join(name), "").unwrap();
            if value.starts_with('/') {
                config = config.replace(value, &dir.join(name).display().to_string());
            }
        }
        let path = dir.join(format!("prometheus-{i}.yml"));
        std::fs::write(&path, &config).unwrap();
        let (ok, text) = tools::report(
            &Command::new(&promtool)
                .args(["check", "config"])
                .arg(&path)
                .output()
                .expect("promtool runs"),
        );
        assert!(ok, "README configuration {i}: {text}\n{config}");
        if config.contains("rule_files:") {
            assert!(
                text.contains("rules found"),
                "the rules file was read: {text}"
            );
        }
    }
}
